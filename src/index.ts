// resnet-ts public API.
//
//   import { resnet50, fromArray, backendInfo } from 'resnet-ts';
//   const model = resnet50({ seed: 0 }).eval();
//   const logits = model.forward(x);            // x: float32 (N, 3, H, W)
//
// Layers, bottom up: tensor (Tensor, creation, random), backend (selection and info), ops (functional math),
// nn (Module, layers, init, fusion), io (safetensors, npy), models (torchvision and Hugging Face families).

export { Tensor } from './tensor/tensor.js';
export type { DType } from './tensor/dtype.js';
export * from './tensor/creation.js';
export { Generator, manualSeed, defaultGenerator } from './tensor/random.js';
export { backendInfo, setBackend, withBackend, setNumThreads, getNumThreads, type BackendInfo } from './backend/select.js';
export type { BackendName } from './backend/backend.js';
export * as F from './ops/index.js';
export * as nn from './nn/index.js';
export * from './io/index.js';
export * from './models/resnet.js';
export * from './models/hf.js';
export * from './models/convert.js';
export { createModel, type CreateModelOptions } from './models/factory.js';
