// Images in, answers out: the inference loop of seed 004 (open the image, convert to RGB, apply the inference
// transform, batch, eval mode with gradients off, softmax, top-k, class names), for many inputs at once.
//
//   const clf = await createClassifier({ arch: 'resnet50', weights: 'DEFAULT' });
//   const [r] = await clf.classify(['cat.jpg']);       // r.topk[0]: { label: 'tabby', index: 281, probability: 0.87 }
//   const e = await clf.embed(['a.jpg', 'b.jpg'], { normalize: true });   // pooled features for similarity search
//   await clf.close();
//
// What the weights decide (each overridable): the preprocessing, the registry entry's torchvision preset for a
// registry name, the folder's (or hub repo's) preprocessor_config.json for Hugging Face weights (also one beside
// `config`), a resnet-ts model folder's own transforms (models/model-folder.ts), else ImageNet's V1 preset; the
// labels, the entry's categories, the model folder's labels or config.json's id2label, else "class N". Inputs are
// paths, encoded bytes or decoded RgbImages; each gets its own result, and an input that cannot be read or decoded
// gets an error naming it while the others are answered. Batches of batchSize are decoded in a
// worker thread (decode.ts), the next batch while this one computes; results come in input order.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { DownloadError, hfHubDownload } from '../io/hub.js';
import type { ReadImageOptions } from '../data/image.js';
import { ConvNextImageProcessor } from '../data/hf-processor.js';
import { ResNet } from '../models/resnet.js';
import { ResNetForImageClassification, ResNetModel } from '../models/hf.js';
import type { Weights } from '../models/weights.js';
import { type ResolvedWeights, buildModel, resolveWeights } from '../models/factory.js';
import { type HubOptions, pretrainedSource } from '../models/pretrained.js';
import { type Preprocess, type PreprocessFn, type PreprocessSpec, DEFAULT_PREPROCESS, describePreprocess, makePreprocessFn, toSpec } from './preprocess.js';
import type { TransformSpec } from '../data/augment.js';
import { Decoder, type InferInput, type Item, type Prepared, inputName } from './decode.js';

export const PREPROCESSOR_CONFIG = 'preprocessor_config.json';

export interface ClassifierOptions extends HubOptions {
  /** A torchvision builder (resnet18 ... wide_resnet101_2). */
  arch?: string;
  /** A Hugging Face config.json (a ResNetForImageClassification). */
  config?: string;
  /** A model built already (then arch, config and weights must be absent). */
  model?: Module;
  /** A weights spec as models/factory.ts takes it (registry name, .pth/.safetensors file, HF folder, hf:org/name, URL). */
  weights?: string | Weights;
  /** The head's size when neither the weights nor the config say it (default: fc's rows in a torchvision file). */
  numClasses?: number;
  /** Seed of the random initial weights of whatever the weights do not cover (default 0). */
  seed?: number;
  /** Images per forward pass (default 8). */
  batchSize?: number;
  /** How many classes each result lists (default 5). */
  topk?: number;
  /** Override the preprocessing chosen from the weights. */
  preprocess?: Preprocess;
  /** Class names, index -> name (default from the weights, else "class N"). */
  labels?: readonly string[];
  /** Worker threads that decode and preprocess (default 1; 0: the calling thread). */
  workers?: number;
  /** How images are decoded (maxPixels, orientation, failOn, depth16; see data/image.ts). */
  read?: Omit<ReadImageOptions, 'name'>;
  /** Where warnings go (default process.emitWarning). */
  warn?: (message: string) => void;
}

export interface TopK {
  label: string;
  /** The class index (the logit's position). */
  index: number;
  probability: number;
}

export interface ClassifyResult {
  /** The path, or "<bytes i>" / "<image i>" for input i given as bytes or pixels. */
  input: string;
  /** Most probable first; empty when error is set. */
  topk: TopK[];
  /** Why this input has no answer; the message names the input. */
  error?: string;
}

export interface EmbedResult {
  input: string;
  /** The pooled features (D), or null when error is set. */
  embedding: Float32Array | null;
  error?: string;
}

export interface EmbedOptions {
  /** Divide each vector by its L2 norm (torch.nn.functional.normalize, eps 1e-12). */
  normalize?: boolean;
}

function posInt(v: number | undefined, dflt: number, what: string, min = 1): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`Expected an integer >= ${min} for ${what} but received ${String(v)} of type ${typeof v}`);
  return n;
}

/** The head's size of a model when it can be known without running it, else null. */
function numClassesOf(model: Module): number | null {
  if (model instanceof ResNet && model.fc instanceof Linear) return model.fc.outFeatures;
  if (model instanceof ResNetForImageClassification) return model.config.numLabels;
  return null;
}

/** Softmax of one row in double precision, then the k largest (ties: the lower index first). */
export function topkOfLogits(row: Float32Array, k: number, labels: readonly string[] | null): TopK[] {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > m) m = row[i];
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m);
  const picked: number[] = [];
  for (let j = 0; j < Math.min(k, row.length); j++) {
    let best = -1;
    for (let i = 0; i < row.length; i++) if (!picked.includes(i) && (best < 0 || row[i] > row[best])) best = i;
    picked.push(best);
  }
  return picked.map((i) => ({ label: labels?.[i] ?? `class ${i}`, index: i, probability: Math.exp(row[i] - m) / s }));
}

function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.max(Math.sqrt(s), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] = v[i] / n;
  return v;
}

export class Classifier {
  readonly model: Module;
  readonly batchSize: number;
  readonly topk: number;
  /** Class names by index, or null ("class N"). */
  readonly labels: readonly string[] | null;
  /** The preprocessing in use, as data (or a function the caller gave). */
  readonly preprocess: PreprocessSpec | PreprocessFn;
  /** What the weights were (path, folder, repo id, registry name), or null. */
  readonly weightsSource: string | null;
  readonly #decoder: Decoder;

  constructor(model: Module, o: { batchSize: number; topk: number; labels: readonly string[] | null; preprocess: PreprocessSpec | PreprocessFn; weightsSource?: string | null; workers: number; read: ReadImageOptions }) {
    this.model = model.eval();
    this.batchSize = o.batchSize;
    this.topk = o.topk;
    this.labels = o.labels;
    this.preprocess = o.preprocess;
    this.weightsSource = o.weightsSource ?? null;
    this.#decoder = new Decoder(o.preprocess, o.read, o.workers);
    const n = numClassesOf(model);
    if (this.labels && n !== null && this.labels.length !== n) throw new RangeError(`Expected ${n} labels (the model has ${n} classes) but received ${this.labels.length}`);
  }

  /** One line: the preprocessing in use. */
  describePreprocess(): string {
    return describePreprocess(this.preprocess);
  }

  /** Top-k classes of every input, in input order. */
  async classify(inputs: InferInput | readonly InferInput[], o: { topk?: number } = {}): Promise<ClassifyResult[]> {
    const out: ClassifyResult[] = [];
    for await (const r of this.classifyStream(inputs, o)) out.push(r);
    return out;
  }

  /** classify, one result at a time as each batch finishes (for progress and streaming output). */
  async *classifyStream(inputs: InferInput | readonly InferInput[], o: { topk?: number } = {}): AsyncGenerator<ClassifyResult> {
    const k = posInt(o.topk, this.topk, 'topk');
    for await (const { item, error, row } of this.#run(inputs, (x) => this.#logits(x))) {
      yield error !== undefined ? { input: item.name, topk: [], error } : { input: item.name, topk: topkOfLogits(row!, k, this.labels) };
    }
  }

  /** Pooled features of every input (torchvision: avgpool's output flattened, before fc; HF: pooler_output). */
  async embed(inputs: InferInput | readonly InferInput[], o: EmbedOptions = {}): Promise<EmbedResult[]> {
    const out: EmbedResult[] = [];
    for await (const r of this.embedStream(inputs, o)) out.push(r);
    return out;
  }

  async *embedStream(inputs: InferInput | readonly InferInput[], o: EmbedOptions = {}): AsyncGenerator<EmbedResult> {
    this.#pooled(null); // the model-kind check, before any file is read
    for await (const { item, error, row } of this.#run(inputs, (x) => this.#pooled(x)!)) {
      yield error !== undefined ? { input: item.name, embedding: null, error } : { input: item.name, embedding: o.normalize ? l2normalize(row!) : row! };
    }
  }

  /** Stop the decoding worker threads. */
  close(): Promise<void> {
    return this.#decoder.close();
  }

  #logits(x: Tensor): Tensor {
    const out = this.model.forward(x) as Tensor | { logits?: Tensor };
    const logits = out instanceof Tensor ? out : out?.logits;
    if (!(logits instanceof Tensor) || logits.ndim !== 2) throw new TypeError(`${this.model.constructor.name}.forward did not return (N, classes) logits`);
    if (this.labels && logits.shape[1] !== this.labels.length) throw new RangeError(`the model gives ${logits.shape[1]} classes but there are ${this.labels.length} labels`);
    return logits;
  }

  /** (N, D) pooled features; with x null, only checks that the model has them. */
  #pooled(x: Tensor | null): Tensor | null {
    const m = this.model;
    if (m instanceof ResNet) return x && m.avgpool.forward(m.features(x)).flatten(1);
    if (m instanceof ResNetForImageClassification) return x && m.resnet.forward(x).poolerOutput.flatten(1);
    if (m instanceof ResNetModel) return x && m.forward(x).poolerOutput.flatten(1);
    throw new TypeError(`embed needs a torchvision ResNet, a ResNetModel or a ResNetForImageClassification, not a ${m.constructor.name}`);
  }

  /**
   * The loop: batches prepared ahead (the next one decodes while this one computes), each batch's good items
   * stacked into (N, 3, H, W) and run with gradients off; yields every item with its output row or its error.
   */
  async *#run(inputs: InferInput | readonly InferInput[], compute: (x: Tensor) => Tensor): AsyncGenerator<{ item: Item; error?: string; row?: Float32Array }> {
    const list = Array.isArray(inputs) ? (inputs as readonly InferInput[]) : [inputs as InferInput];
    this.model.eval(); // again: the caller may have switched the model to training since
    const items = list.map((input, i) => ({ input, name: inputName(input, i) }));
    const batches: Item[][] = [];
    for (let i = 0; i < items.length; i += this.batchSize) batches.push(items.slice(i, i + this.batchSize));
    const depth = Math.max(this.#decoder.workers, 1) + 1; // batches in flight, the one computing included
    const pending: Promise<Prepared[]>[] = [];
    let next = 0;
    const fill = () => {
      while (next < batches.length && pending.length < depth) {
        const p = this.#decoder.prepare(batches[next++]);
        p.catch(() => {}); // awaited below; this keeps an abandoned iteration from an unhandled rejection
        pending.push(p);
      }
    };
    fill();
    for (const batch of batches) {
      const prepared = await pending.shift()!;
      fill();
      const errors = new Map<number, string>();
      const ready: [number, Float32Array, number[]][] = [];
      prepared.forEach((p, i) => (p.ok ? ready.push([i, p.data, p.shape]) : errors.set(i, p.error)));
      const rows = new Map<number, Float32Array>();
      const shape = ready[0]?.[2];
      const same = ready.filter(([i, , s]) => {
        if (s.join() === shape.join()) return true;
        errors.set(i, `${batch[i].name}: preprocessed to [${s}] but the batch is [${shape}]; the preprocessing must give one size`);
        return false;
      });
      if (same.length) {
        const per = shape.reduce((a, b) => a * b, 1);
        const x = new Float32Array(same.length * per);
        same.forEach(([, data], j) => x.set(data, j * per));
        const y = noGrad(() => compute(new Tensor(x, [same.length, ...shape])));
        const flat = y.contiguousData() as Float32Array, d = y.shape[1];
        same.forEach(([i], j) => rows.set(i, flat.slice(j * d, (j + 1) * d)));
      }
      for (let i = 0; i < batch.length; i++) {
        yield rows.has(i) ? { item: batch[i], row: rows.get(i) } : { item: batch[i], error: errors.get(i)! };
      }
    }
  }
}

/** The preprocessing the weights call for (see the file header), and where it came from. */
async function choosePreprocess(o: ClassifierOptions, r: ResolvedWeights | null, warn: (m: string) => void): Promise<PreprocessSpec> {
  if (r?.weights) return { kind: 'torchvision', options: { ...r.weights.transforms } };
  if (r?.preprocess) {
    const spec = { kind: 'transforms' as const, transforms: r.preprocess as TransformSpec[] };
    try {
      makePreprocessFn(spec);
    } catch (e) {
      throw new Error(`${r.source}: its preprocess: ${(e as Error).message}`, { cause: e });
    }
    return spec;
  }
  if (r?.spec) warn(`${r.source} does not say its preprocessing (a checkpoint from before resnet train wrote it); preprocessing with ImageNet's V1 preset (resize 256, crop 224)`);
  const fromFile = async (path: string) => ({ kind: 'convnext' as const, config: (await ConvNextImageProcessor.fromFile(path)).toJSON() });
  if (r && (r.kind === 'hf-folder' || r.kind === 'hf-hub')) {
    let path: string | null = join(r.source, PREPROCESSOR_CONFIG);
    if (r.kind === 'hf-hub') {
      const s = pretrainedSource(typeof o.weights === 'string' ? o.weights : r.source) as { repoId: string; revision?: string };
      try {
        path = await hfHubDownload(s.repoId, PREPROCESSOR_CONFIG, { revision: o.revision ?? s.revision, cacheDir: o.cacheDir, endpoint: o.endpoint, offline: o.offline, token: o.token, progress: o.progress });
      } catch (e) {
        if (!(e instanceof DownloadError) || (e.status !== undefined && e.status !== 404)) throw e;
        path = null;
      }
    }
    if (path && existsSync(path)) return fromFile(path);
    warn(`${r.source} has no ${PREPROCESSOR_CONFIG}; preprocessing with ImageNet's V1 preset (resize 256, crop 224)`);
    return DEFAULT_PREPROCESS;
  }
  if (o.config && existsSync(join(dirname(o.config), PREPROCESSOR_CONFIG))) return fromFile(join(dirname(o.config), PREPROCESSOR_CONFIG));
  return DEFAULT_PREPROCESS;
}

/** Class names from the weights: a registry entry's categories, a model folder's labels, the HF config's id2label; else null. */
function labelsOf(model: Module, r: ResolvedWeights | null): string[] | null {
  if (r?.weights) return [...r.weights.meta.categories];
  if (r?.labels) return [...r.labels];
  if (model instanceof ResNetForImageClassification || model instanceof ResNetModel) {
    const id2label = model.config.id2label;
    const n = model.config.numLabels;
    if (n > 0) return Array.from({ length: n }, (_, i) => id2label[String(i)] ?? `class ${i}`);
  }
  return null;
}

/** A Classifier from an architecture or config and weights (downloaded into their caches if remote), or a model. */
export async function createClassifier(o: ClassifierOptions = {}): Promise<Classifier> {
  const batchSize = posInt(o.batchSize, 8, 'batchSize');
  const topk = posInt(o.topk, 5, 'topk');
  const workers = posInt(o.workers, 1, 'workers', 0);
  const warn = o.warn ?? ((m: string) => process.emitWarning(m));
  let model: Module;
  let r: ResolvedWeights | null = null;
  if (o.model !== undefined) {
    if (!(o.model instanceof Module)) throw new TypeError(`Expected a Module for model but received ${String(o.model)}`);
    if (o.arch || o.config || o.weights) throw new RangeError('give either model, or arch/config and weights, not both');
    model = o.model;
  } else {
    r = o.weights ? await resolveWeights(o.weights, { ...o, arch: o.arch }) : null;
    let numClasses = o.numClasses;
    const fc = r?.family === 'torchvision' && !r.weights ? r.stateDict.get('fc.weight') : undefined;
    if (numClasses === undefined && o.arch && fc?.ndim === 2) numClasses = fc.shape[0]; // a fine-tuned head
    model = buildModel({ arch: o.arch, config: o.config, numClasses, seed: o.seed, warn }, r); // skips the random init a strict load would overwrite
  }
  const preprocess = o.preprocess !== undefined ? toSpec(o.preprocess) : await choosePreprocess(o, r, warn);
  const labels = o.labels !== undefined ? [...o.labels] : labelsOf(model, r);
  return new Classifier(model, { batchSize, topk, labels, preprocess, weightsSource: r?.source ?? null, workers, read: { ...o.read } });
}
