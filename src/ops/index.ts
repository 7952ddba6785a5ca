// The ops: every computation above the tensor goes through here (and only here reaches a backend).
import './methods.js';
import './grad.js'; // registers the backward rules with the tape (tensor/autograd.ts)
export * from './elementwise.js';
export * from './reduce.js';
export * from './conv.js';
export * from './norm.js';
export * from './pool.js';
export * from './linear.js';
export * from './activation.js';
export * from './loss.js';
