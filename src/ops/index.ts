// The ops: every computation above the tensor goes through here (and only here reaches a backend).
import './methods.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './conv.js';
export * from './norm.js';
export * from './pool.js';
export * from './linear.js';
export * from './activation.js';
export * from './loss.js';
