// The inference layer: models and data put together for users who have images and want answers.
//   classifier.ts  createClassifier -> classify (top-k labels) and embed (pooled features), batched, eval mode,
//                  gradients off, preprocessing and labels chosen from the weights
//   decode.ts      inputs -> preprocessed arrays in worker threads (decode-worker.ts), one error per bad input
//   preprocess.ts  the preprocessing as data (torchvision preset or HF ConvNext processor) or a function
//   files.ts       command-line style inputs (files, directories, globs) -> file lists
// Imports models, data, io, nn, tensor; nothing below imports it.

export {
  createClassifier, Classifier, topkOfLogits, PREPROCESSOR_CONFIG,
  type ClassifierOptions, type ClassifyResult, type EmbedResult, type EmbedOptions, type TopK,
} from './classifier.js';
export { type InferInput, inputName } from './decode.js';
export { DEFAULT_PREPROCESS, describePreprocess, makePreprocessFn, type Preprocess, type PreprocessFn, type PreprocessSpec } from './preprocess.js';
export { expandInputs, globRegExp, IMAGE_EXTENSIONS, InputError, type ExpandOptions, type Expanded } from './files.js';
