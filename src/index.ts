// resnet-ts public API.
//
//   import { resnet50, fromArray, backendInfo } from 'resnet-ts';
//   const model = resnet50({ seed: 0 }).eval();
//   const logits = noGrad(() => model.forward(x));  // x: float32 (N, 3, H, W); noGrad as torch.no_grad()
//
// Layers, bottom up: tensor (Tensor, creation, random), backend (selection and info), ops (functional math),
// nn (Module, layers, init, fusion), io (safetensors, npy), models (torchvision and Hugging Face families),
// data (readImage, transforms, the ImageClassification preset, HF's ConvNextImageProcessor; datasets, DataLoader,
// augmentation), optim (SGD, AdamW, LR schedules), train (fit, evaluate, fine-tuning helpers, checkpoints).

export { Tensor } from './tensor/tensor.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled, type BackwardOptions } from './tensor/autograd.js';
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
export {
  createModel, loadModel, resolveWeights, resolveWeightsSync, readWeightsFile, type CreateModelOptions, type ResolvedWeights, type ResolveOptions,
} from './models/factory.js';
export * from './models/pretrained.js';
export { readCheckpointFile, type CheckpointFile } from './models/checkpoint.js';
export { guessArchitecture, keyFamily, type TorchvisionGuess, type HFGuess } from './models/arch-guess.js';
export { createFeatureExtractor, getGraphNodeNames, FeatureExtractor, type FeatureExtractorOptions, type GraphNode } from './models/features.js';
export {
  summary, formatSummary, formatShape, formatMacs, type Summary, type SummaryRow, type SummaryOptions, type OutputShape, type FormatOptions,
} from './models/summary.js';
export * from './data/index.js';
export * as optim from './optim/index.js';
export { SGD, AdamW, StepLR, MultiStepLR, LinearLR, CosineAnnealingLR, OneCycleLR, SequentialLR } from './optim/index.js';
export { Subset, type Dataset, type Sample, type SampleContext, type WorkerRecipe } from './data/dataset.js';
export { DataLoader, type DataLoaderOptions, type Batch } from './data/loader.js';
export { FashionMNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, type FashionMNISTOptions } from './data/fashion-mnist.js';
export { ImageFolder, IMG_EXTENSIONS, type ImageFolderOptions } from './data/image-folder.js';
export * as augment from './data/augment.js';
export { RandomResizedCrop, RandomCrop, RandomHorizontalFlip, buildTransform, type TransformSpec } from './data/augment.js';
export * from './infer/index.js';
export * as train from './train/index.js';
export { fit, evaluate, replaceHead, freezeBackbone, paramGroups, saveCheckpoint, loadCheckpoint, type TrainCheckpoint, type FitOptions, type EvalResult } from './train/index.js';
