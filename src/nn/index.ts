export * from './module.js';
export * from './layers.js';
export * from './activation.js';
export * from './fused.js';
export * as init from './init.js';
