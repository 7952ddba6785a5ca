// A resnet-ts model folder: a trained model ready to use, as `resnet export` writes it from a `resnet train`
// checkpoint and as loadModel / createClassifier / `resnet predict --weights DIR` read it.
//
//   DIR/config.json         {"library": "resnet-ts", "format": 1, "model_spec": {...}, "labels": [...],
//                            "preprocess": [...], ...}  (UTF-8 JSON)
//   DIR/model.safetensors   the weights under torchvision's (or transformers') keys: F32, or F16 / BF16 storage
//   DIR/README.md           optional: how the model was made, and how to load it in PyTorch
//
// model_spec is models/model-spec.ts's (family, arch or hf_config, num_classes, in_channels, stem), so the model is
// rebuilt exactly (a Fashion-MNIST ResNet-18 has a 1-channel 3x3 stem that no torchvision builder makes by itself).
// labels are the class names, index order. preprocess is the inference transform as data/augment.ts's TransformSpec
// list (e.g. Resize, CenterCrop, Grayscale, Normalize); it is kept here as plain JSON and checked by whoever builds
// it (infer/preprocess.ts), since models/ does not import data/. Anything else in config.json (the training
// command, the accuracy) is information for people and is returned as `extra`.
// A folder whose config.json has no "library": "resnet-ts" is a Hugging Face folder (pretrained.ts), not this.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import { readSafetensorsSync, writeSafetensorsSync } from '../io/safetensors.js';
import { writeFileAtomicSync } from '../io/tensor-bytes.js';
import { type ModelSpec, specFromCheckpoint } from './model-spec.js';

export const MODEL_FOLDER_LIBRARY = 'resnet-ts';
export const MODEL_FOLDER_FORMAT = 1;
export const MODEL_FOLDER_WEIGHTS = 'model.safetensors';
const CONFIG = 'config.json';

export interface ModelFolder {
  dir: string;
  spec: ModelSpec;
  labels: string[] | null;
  /** The inference transform as JSON (a TransformSpec list), or null. */
  preprocess: unknown[] | null;
  stateDict: Map<string, Tensor>;
  /** The other fields of config.json. */
  extra: Record<string, unknown>;
}

export interface SaveModelFolderOptions {
  spec: ModelSpec;
  labels?: readonly string[] | null;
  preprocess?: readonly unknown[] | null;
  /** Storage of the float weights (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** More config.json fields (information: the training command, metrics). */
  extra?: Record<string, unknown>;
  /** README.md text (the model card), written when given. */
  readme?: string;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Read config.json of `dir` when it is a resnet-ts model folder; null for any other folder (e.g. a Hugging Face one). */
export function readModelFolderConfig(dir: string): Record<string, unknown> | null {
  const path = join(dir, CONFIG);
  if (!existsSync(path)) return null;
  let cfg: unknown;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null; // not ours to judge: the Hugging Face reader reports a broken config.json
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg) || (cfg as Record<string, unknown>).library !== MODEL_FOLDER_LIBRARY) return null;
  return cfg as Record<string, unknown>;
}

/** Whether `dir` is a resnet-ts model folder (config.json with "library": "resnet-ts"). */
export function isModelFolder(dir: string): boolean {
  return readModelFolderConfig(dir) !== null;
}

/** Read a model folder: its description, checked, and its weights (F16/BF16 widened to float32). */
export function readModelFolder(dir: string): ModelFolder {
  const cfg = readModelFolderConfig(dir);
  const where = join(dir, CONFIG);
  if (!cfg) throw new Error(`${dir}: not a resnet-ts model folder (expected ${CONFIG} with "library": "${MODEL_FOLDER_LIBRARY}")`);
  const { library: _l, format, model_spec, labels, preprocess, ...extra } = cfg;
  if (format !== MODEL_FOLDER_FORMAT) throw new Error(`${where}: format ${JSON.stringify(format)} is not one this version reads (${MODEL_FOLDER_FORMAT})`);
  const spec = specFromCheckpoint(model_spec, where);
  if (labels !== undefined && labels !== null) {
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new TypeError(`${where}: expected "labels" to be a list of strings`);
    if (labels.length !== spec.num_classes) throw new RangeError(`${where}: ${labels.length} labels for a model with ${spec.num_classes} classes`);
  }
  if (preprocess !== undefined && preprocess !== null && !Array.isArray(preprocess)) throw new TypeError(`${where}: expected "preprocess" to be a list of transforms`);
  const weights = join(dir, MODEL_FOLDER_WEIGHTS);
  if (!existsSync(weights)) throw new Error(`${dir}: no ${MODEL_FOLDER_WEIGHTS} (a resnet-ts model folder holds ${CONFIG} and ${MODEL_FOLDER_WEIGHTS})`);
  return {
    dir, spec, labels: (labels as string[] | undefined) ?? null, preprocess: (preprocess as unknown[] | undefined) ?? null,
    stateDict: readSafetensorsSync(weights).tensors, extra,
  };
}

/** Write `model` (built from opts.spec) as a model folder: weights, config.json and the README, each atomically. */
export function saveModelFolder(dir: string, model: Module, o: SaveModelFolderOptions): void {
  if (o.labels && o.labels.length !== o.spec.num_classes) throw new RangeError(`Expected ${o.spec.num_classes} labels (the model's classes) but received ${o.labels.length}`);
  mkdirSync(dir, { recursive: true });
  const sd = model.stateDict();
  writeSafetensorsSync(join(dir, MODEL_FOLDER_WEIGHTS), sd, { format: 'pt' }, { dtype: o.dtype ?? 'F32' });
  const core: Record<string, unknown> = {
    library: MODEL_FOLDER_LIBRARY, format: MODEL_FOLDER_FORMAT, model_spec: o.spec, labels: o.labels ? [...o.labels] : null,
    preprocess: o.preprocess ? [...o.preprocess] : null, torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[o.dtype ?? 'F32'],
  };
  const cfg = { ...core, ...Object.fromEntries(Object.entries(o.extra ?? {}).filter(([k]) => !(k in core))) };
  writeFileAtomicSync(join(dir, CONFIG), [utf8(`${JSON.stringify(cfg, null, 2)}\n`)]);
  if (o.readme !== undefined) writeFileAtomicSync(join(dir, 'README.md'), [utf8(o.readme)]);
}
