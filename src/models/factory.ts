// One place that turns "an architecture name or a config.json, optional weights file" into a ready model, for the
// CLI and for users who do not want to pick the class themselves.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { Module } from '../nn/module.js';
import { readSafetensorsSync } from '../io/safetensors.js';
import { extractStateDict, readPthSync } from '../io/pth.js';
import type { Tensor } from '../tensor/tensor.js';
import { getModel, listModels } from './resnet.js';
import { ResNetConfig, ResNetForImageClassification } from './hf.js';

export interface CreateModelOptions {
  /** A torchvision builder name (resnet18 ... wide_resnet101_2). */
  arch?: string;
  /** A Hugging Face config.json (gives a ResNetForImageClassification). */
  config?: string;
  /** A state dict as safetensors or a torch.save .pth/.bin checkpoint, told apart by content (torchvision keys
   * for arch, transformers keys for config). */
  weights?: string;
  numClasses?: number;
  seed?: number;
}

export function createModel(o: CreateModelOptions): Module {
  if (!!o.arch === !!o.config) throw new RangeError('give exactly one of arch (a torchvision builder) or config (an HF config.json)');
  let model: Module;
  if (o.arch) {
    if (!listModels().includes(o.arch)) throw new RangeError(`unknown architecture '${o.arch}'; known: ${listModels().join(', ')}`);
    model = getModel(o.arch, { numClasses: o.numClasses, seed: o.seed ?? 0 });
  } else {
    let dict: Record<string, unknown>;
    try {
      dict = JSON.parse(readFileSync(o.config!, 'utf8'));
    } catch (e) {
      throw new Error(`${o.config}: cannot read an HF config.json: ${(e as Error).message}`);
    }
    if (o.numClasses !== undefined) dict = { ...dict, num_labels: o.numClasses, id2label: undefined, label2id: undefined };
    model = new ResNetForImageClassification(ResNetConfig.fromDict(dict), { seed: o.seed ?? 0 });
  }
  if (o.weights) {
    const tensors = readWeightsFile(o.weights);
    try {
      model.loadStateDict(tensors);
    } catch (e) {
      throw new Error(`${o.weights}: ${(e as Error).message}`);
    }
  }
  return model;
}

/** The state dict in a weights file: safetensors (an 8-byte length then a JSON header) or a torch.save checkpoint. */
export function readWeightsFile(path: string): Map<string, Tensor> {
  const head = Buffer.alloc(9);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  if (n === 9 && head[8] === 0x7b) return readSafetensorsSync(path).tensors;
  return extractStateDict(readPthSync(path).object, path);
}
