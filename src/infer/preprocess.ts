// What turns one decoded image into a model input, as data that a worker thread can receive:
//   { kind: 'torchvision', options }  torchvision's ImageClassification preset (a registry entry's `transforms`)
//   { kind: 'convnext', config }      transformers' ConvNextImageProcessor (a preprocessor_config.json dict)
//   { kind: 'transforms', transforms } a deterministic data/augment.ts TransformSpec list (Resize, CenterCrop,
//                                     Grayscale, Pad, Normalize): a resnet-ts model folder's or training run's own
//                                     inference transform, e.g. a Fashion-MNIST model's grey 28x28 input
// or, for callers with their own pipeline, a function (RgbImage) => (3, H, W) float32 Tensor (run on the calling
// thread, since a function cannot be sent to a worker). DEFAULT_PREPROCESS is ImageNet's V1 preset (resize 256,
// crop 224), the one torchvision's IMAGENET1K_V1 weights and most fine-tuned checkpoints expect.
// This file imports data/ only, so the decode worker loads quickly; choosing a spec from the weights is classifier.ts's.

import type { Tensor } from '../tensor/tensor.js';
import type { RgbImage } from '../data/image.js';
import { ImageClassification, type ImageClassificationOptions } from '../data/transforms.js';
import { ConvNextImageProcessor, type ConvNextImageProcessorConfig } from '../data/hf-processor.js';
import { type TransformSpec, asPixels, buildTransform } from '../data/augment.js';
import { Generator } from '../tensor/random.js';

export type PreprocessSpec =
  | { kind: 'torchvision'; options: ImageClassificationOptions }
  | { kind: 'convnext'; config: ConvNextImageProcessorConfig }
  | { kind: 'transforms'; transforms: TransformSpec[] };

const RANDOM_STEPS = new Set(['RandomResizedCrop', 'RandomCrop', 'RandomHorizontalFlip']);

export type PreprocessFn = (img: RgbImage) => Tensor;

/** What createClassifier's `preprocess` accepts. */
export type Preprocess = PreprocessSpec | PreprocessFn | ImageClassification | ConvNextImageProcessor;

/** torchvision's ImageClassification(crop_size=224, resize_size=256): the IMAGENET1K_V1 weights' transform. */
export const DEFAULT_PREPROCESS: PreprocessSpec = Object.freeze({ kind: 'torchvision', options: Object.freeze({ cropSize: 224, resizeSize: 256 }) });

/** A spec (data) for anything but a plain function, which stays a function. */
export function toSpec(p: Preprocess): PreprocessSpec | PreprocessFn {
  if (typeof p === 'function') return p;
  if (p instanceof ImageClassification) {
    return { kind: 'torchvision', options: { cropSize: p.cropSize, resizeSize: p.resizeSize, mean: [...p.mean], std: [...p.std], interpolation: p.interpolation, antialias: p.antialias } };
  }
  if (p instanceof ConvNextImageProcessor) return { kind: 'convnext', config: p.toJSON() };
  if (p && typeof p === 'object' && (p.kind === 'torchvision' || p.kind === 'convnext' || p.kind === 'transforms')) {
    makePreprocessFn(p); // validates now, not in a worker later
    return p;
  }
  throw new TypeError(`Expected a function, an ImageClassification, a ConvNextImageProcessor or {kind: 'torchvision' | 'convnext' | 'transforms', ...} for preprocess but received ${JSON.stringify(p)}`);
}

/** The function a spec describes: RgbImage -> (C, H, W) float32 (C = 3, or 1 after a Grayscale(1) transform). */
export function makePreprocessFn(spec: PreprocessSpec | PreprocessFn): PreprocessFn {
  if (typeof spec === 'function') return spec;
  if (spec.kind === 'torchvision') {
    const t = new ImageClassification(spec.options);
    return (img) => t.forward(img);
  }
  if (spec.kind === 'transforms') {
    if (!Array.isArray(spec.transforms)) throw new TypeError(`Expected a list of transforms for preprocess.transforms but received ${JSON.stringify(spec.transforms)}`);
    const random = spec.transforms.find((t) => RANDOM_STEPS.has((t as { name?: string })?.name ?? ''));
    if (random) throw new RangeError(`preprocess.transforms: ${random.name} is a training augmentation; inference transforms must be deterministic`);
    const t = buildTransform(spec.transforms), rng = new Generator(0); // no step draws from it
    return (img) => t(asPixels(img), rng);
  }
  const p = new ConvNextImageProcessor(spec.config);
  return (img) => p.preprocessOne(img);
}

/** One line for messages and --help: what the preprocessing is. */
export function describePreprocess(spec: PreprocessSpec | PreprocessFn): string {
  if (typeof spec === 'function') return 'a custom preprocess function';
  if (spec.kind === 'torchvision') {
    const o = spec.options;
    return `torchvision ImageClassification (resize ${o.resizeSize ?? 256} ${o.interpolation ?? 'bilinear'}, crop ${o.cropSize})`;
  }
  if (spec.kind === 'transforms') return `transforms ${spec.transforms.map((t) => t.name).join(', ')}`;
  const p = new ConvNextImageProcessor(spec.config);
  return `ConvNextImageProcessor (shortest_edge ${p.shortestEdge}, crop_pct ${p.cropPct}, ${p.resample})`;
}
