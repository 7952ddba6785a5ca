// transformers' from_pretrained / save_pretrained for the ResNet classes (modeling_utils.py), without transformers:
//
//   folder/  config.json
//            model.safetensors                     or  pytorch_model.bin                    (one file), or
//            model.safetensors.index.json + model-0000i-of-0000n.safetensors               (sharded), or
//            pytorch_model.bin.index.json + pytorch_model-0000i-of-0000n.bin
//
// Weights are looked for in that order (safetensors first, as transformers when safetensors is installed). An index
// is {"metadata": {"total_size": N}, "weight_map": {key: shard file}}; shard names must be plain file names in the
// same folder (no "..", no absolute path, no separator), every key must be in the shard the index names, and no key
// may be in two shards. A repo id (`org/name`, `hf:org/name`, `org/name@revision`) is fetched through io/hub.ts's
// hfHubDownload (huggingface_hub's cache, offline mode); an existing directory is read as it is.
//
// Loading follows _load_pretrained_model: a base checkpoint (embedder.*, encoder.*) loads into a head model under
// its `resnet.` prefix and a head checkpoint (resnet.*, classifier.*) into ResNetModel / ResNetBackbone without it;
// keys the checkpoint lacks stay as initialised and are reported ("newly initialized", a warning), keys the model
// lacks are reported as unused (a warning only when the checkpoint was saved from this class, as transformers), and
// a shape mismatch is an error unless ignoreMismatchedSizes. save_pretrained writes config.json as transformers does
// (architectures, torch_dtype "float32") and the weights, sharded by size as shard_checkpoint does; every file is
// written into a staging folder first and renamed into place, so no partial file is ever visible.
// This file takes the model class as an argument (it does not import hf.ts, which calls it).

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import type { Generator } from '../tensor/random.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { itemSize } from '../tensor/dtype.js';
import { type Module, StateDictError } from '../nn/module.js';
import { writeSafetensorsSync } from '../io/safetensors.js';
import { writePthSync } from '../io/pth-write.js';
import { DownloadError, hfHubDownload } from '../io/hub.js';
import { TensorFileError, writeFileAtomicSync } from '../io/tensor-bytes.js';
import { ResNetConfig } from './hf-config.js';
import { type CheckpointFile, type WeightsFormat, readCheckpointFile } from './checkpoint.js';

export const CONFIG_NAME = 'config.json';
export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';
export const WEIGHTS_NAME = 'pytorch_model.bin';
export const WEIGHTS_INDEX_NAME = 'pytorch_model.bin.index.json';
const SHARD_RE = /^(model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)$/;

export interface HubOptions {
  /** Branch, tag or commit of a repo id (default "main"; `org/name@rev` also works). */
  revision?: string;
  cacheDir?: string;
  /** Default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Cache only (default $HF_HUB_OFFLINE). */
  offline?: boolean;
  token?: string;
  progress?: boolean;
}

export interface LocateOptions extends HubOptions {
  /** true: safetensors files only; false: pytorch_model.bin files only; default: safetensors first. */
  useSafetensors?: boolean;
}

/** Where a pretrained model's files are, once found (downloaded for a repo id). */
export interface PretrainedFiles {
  /** What was asked for: the folder, or the repo id (with @revision when not main). */
  source: string;
  /** The folder holding the files (a snapshot folder of the cache for a repo id). */
  dir: string;
  config: string;
  format: WeightsFormat;
  /** The index file when sharded, else null. */
  index: string | null;
  /** The weight file, or the shards (sorted, as transformers loads them). */
  files: string[];
  /** The index's weight_map (key -> shard file name), null when not sharded. */
  weightMap: Map<string, string> | null;
}

const CANDIDATES: readonly [string, WeightsFormat, boolean][] = [
  [SAFE_WEIGHTS_NAME, 'safetensors', false], [SAFE_WEIGHTS_INDEX_NAME, 'safetensors', true],
  [WEIGHTS_NAME, 'pth', false], [WEIGHTS_INDEX_NAME, 'pth', true],
];

function candidates(useSafetensors: boolean | undefined): (typeof CANDIDATES)[number][] {
  return CANDIDATES.filter(([, f]) => useSafetensors === undefined || (f === 'safetensors') === useSafetensors);
}

/** A folder, or a repo id with its revision. */
export function pretrainedSource(src: string): { dir: string } | { repoId: string; revision?: string } {
  if (typeof src !== 'string' || src === '') throw new TypeError(`Expected a model folder or a Hugging Face repo id for pretrainedModelNameOrPath but received ${JSON.stringify(src)} of type ${typeof src}`);
  const hub = (id: string) => {
    const at = id.indexOf('@');
    return at < 0 ? { repoId: id } : { repoId: id.slice(0, at), revision: id.slice(at + 1) };
  };
  if (src.startsWith('hf:')) return hub(src.slice(3));
  if (existsSync(src)) {
    if (statSync(src).isDirectory()) return { dir: src };
    throw new Error(`${src} is a file; a pretrained model is a folder (config.json and its weights) or a Hugging Face repo id such as microsoft/resnet-50`);
  }
  if (/^\w[\w.-]*(\/\w[\w.-]*)?(@[\w./-]+)?$/.test(src)) return hub(src);
  throw new Error(`${src}: no such folder, and not a Hugging Face repo id (org/name)`);
}

/** A shard file name from an index: a plain name in the same folder, or an error naming the index and the key. */
function checkShardName(name: unknown, index: string, key: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || isAbsolute(name) || /^[A-Za-z]:/.test(name)) {
    throw new TensorFileError(index, `the weight_map names the shard ${JSON.stringify(name)}; shard file names must be plain file names inside the model folder (no "..", no absolute path, no "/" or "\\")`, key);
  }
  return name;
}

/** An index file's weight_map, every shard name checked. */
export function readShardIndex(path: string): Map<string, string> {
  let d: unknown;
  try {
    d = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new TensorFileError(path, `expected a JSON shard index: ${(e as Error).message}`);
  }
  const map = (d as { weight_map?: unknown } | null)?.weight_map;
  if (typeof d !== 'object' || d === null || typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new TensorFileError(path, 'expected a shard index {"metadata": {...}, "weight_map": {"<key>": "<shard file>", ...}} but there is no weight_map object');
  }
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(map)) out.set(k, checkShardName(v, path, k));
  if (!out.size) throw new TensorFileError(path, 'the weight_map is empty');
  return out;
}

function shardsOf(weightMap: Map<string, string>): string[] {
  return [...new Set(weightMap.values())].sort();
}

/** The files of a model folder on disk. */
export function locatePretrainedDir(dir: string, o: { useSafetensors?: boolean } = {}): PretrainedFiles {
  const config = join(dir, CONFIG_NAME);
  if (!existsSync(config)) throw new Error(`${dir}: no ${CONFIG_NAME} (a pretrained model folder holds ${CONFIG_NAME} and its weights)`);
  for (const [name, format, sharded] of candidates(o.useSafetensors)) {
    const p = join(dir, name);
    if (!existsSync(p)) continue;
    if (!sharded) return { source: dir, dir, config, format, index: null, files: [p], weightMap: null };
    const weightMap = readShardIndex(p);
    const files = shardsOf(weightMap).map((s) => {
      const f = join(dir, s);
      if (!existsSync(f)) throw new TensorFileError(p, `the weight_map names the shard ${s} but ${f} does not exist`);
      return f;
    });
    return { source: dir, dir, config, format, index: p, files, weightMap };
  }
  throw new Error(`${dir}: no file named ${candidates(o.useSafetensors).map(([n]) => n).join(', ')} (the weights of a pretrained model folder)`);
}

const isTrue = (v: string | undefined) => v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());

/** The files of a hub repo, downloaded into (or found in) the Hugging Face cache. */
async function locatePretrainedHub(repoId: string, o: LocateOptions): Promise<PretrainedFiles> {
  const offline = o.offline ?? (isTrue(process.env.HF_HUB_OFFLINE) || isTrue(process.env.TRANSFORMERS_OFFLINE));
  const hubOpts = { revision: o.revision, cacheDir: o.cacheDir, endpoint: o.endpoint, offline, token: o.token, progress: o.progress };
  const source = o.revision && o.revision !== 'main' ? `${repoId}@${o.revision}` : repoId;
  const get = (name: string) => hfHubDownload(repoId, name, hubOpts);
  // a file the repo does not have (404) or, offline, that the cache does not have
  const absent = (e: unknown) => e instanceof DownloadError && (e.status === 404 || (offline && e.status === undefined));
  let config: string;
  try {
    config = await get(CONFIG_NAME);
  } catch (e) {
    if (e instanceof DownloadError && e.status === 404 && /EntryNotFound/.test(e.message)) throw new Error(`${source} has no ${CONFIG_NAME}: it is not a transformers model repo (${e.message})`, { cause: e });
    throw e;
  }
  for (const [name, format, sharded] of candidates(o.useSafetensors)) {
    let p: string;
    try {
      p = await get(name);
    } catch (e) {
      if (absent(e)) continue;
      throw e;
    }
    const dir = p.slice(0, -name.length - 1);
    if (!sharded) return { source, dir, config, format, index: null, files: [p], weightMap: null };
    const weightMap = readShardIndex(p);
    const files: string[] = [];
    for (const s of shardsOf(weightMap)) {
      try {
        files.push(await get(s));
      } catch (e) {
        throw new TensorFileError(p, `the weight_map names the shard ${s}, which cannot be had from ${source}: ${(e as Error).message}`);
      }
    }
    return { source, dir, config, format, index: p, files, weightMap };
  }
  throw new Error(`${source} has ${CONFIG_NAME} but none of ${candidates(o.useSafetensors).map(([n]) => n).join(', ')}${offline ? ' in the cache (offline mode)' : ''}`);
}

/** Find a pretrained model's files: a folder as it is, a repo id through the Hugging Face cache. */
export async function locatePretrained(src: string, o: LocateOptions = {}): Promise<PretrainedFiles> {
  const s = pretrainedSource(src);
  if ('dir' in s) return locatePretrainedDir(s.dir, o);
  return locatePretrainedHub(s.repoId, { ...o, revision: o.revision ?? s.revision });
}

/** The state dict of a located model: its one file, or every shard checked against the index. `onFile` sees each file read. */
export function readPretrainedStateDict(f: PretrainedFiles, onFile?: (c: CheckpointFile) => void): Map<string, Tensor> {
  const read = (path: string) => {
    const c = readCheckpointFile(path);
    onFile?.(c);
    const fmt = c.metadata?.format;
    if (fmt !== undefined && fmt !== 'pt') throw new TensorFileError(path, `the safetensors metadata says format "${fmt}"; only PyTorch ("pt") weights can be loaded`);
    return c.stateDict;
  };
  if (f.index === null) return read(f.files[0]);
  const out = new Map<string, Tensor>();
  const from = new Map<string, string>();
  for (const shard of f.files) {
    for (const [k, t] of read(shard)) {
      const prev = from.get(k);
      if (prev !== undefined) throw new TensorFileError(f.index, `the key is in two shards, ${prev} and ${basename(shard)}`, k);
      from.set(k, basename(shard));
      out.set(k, t);
    }
  }
  for (const [k, s] of f.weightMap!) {
    if (from.get(k) !== s) throw new TensorFileError(f.index, `the weight_map puts the key in ${s} but ${s} does not hold it${from.has(k) ? ` (${from.get(k)} does)` : ''}`, k);
  }
  return out;
}

// ---- loading into a model -------------------------------------------------------------------------------------

export interface LoadingInfo {
  missingKeys: string[];
  unexpectedKeys: string[];
  mismatchedKeys: { key: string; checkpoint: number[]; model: number[] }[];
}

export interface LoadHFOptions {
  /** Named in messages (the folder or repo id). */
  source: string;
  /** The base model's attribute in head models (transformers' base_model_prefix, "resnet"). */
  prefix?: string;
  /** The classes the checkpoint was saved from (config.architectures): unused keys warn only for those. */
  architectures?: readonly string[] | null;
  /** Leave keys whose shape differs as initialised (reported) instead of failing. */
  ignoreMismatchedSizes?: boolean;
  warn?: (message: string) => void;
}

/** Load a transformers-keyed state dict into `model` with transformers' prefix handling and reports. */
export function loadHFStateDict(model: Module, sd: Map<string, Tensor>, o: LoadHFOptions): LoadingInfo {
  const prefix = `${o.prefix ?? 'resnet'}.`;
  const own = model.stateDict();
  const cls = model.constructor.name;
  const hasPrefix = [...sd.keys()].some((k) => k.startsWith(prefix));
  const expectsPrefix = [...own.keys()].some((k) => k.startsWith(prefix));
  const rename = new Map<string, string>(); // model key -> checkpoint key
  for (const k of sd.keys()) {
    if (!hasPrefix && expectsPrefix) rename.set(prefix + k, k); // base checkpoint into a head model
    else if (hasPrefix && !expectsPrefix && k.startsWith(prefix)) rename.set(k.slice(prefix.length), k); // head into base
    else rename.set(k, k);
  }
  const info: LoadingInfo = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
  const load = new Map<string, Tensor>();
  for (const [mk, ck] of rename) {
    const mine = own.get(mk);
    const t = sd.get(ck)!;
    if (!mine) info.unexpectedKeys.push(ck);
    else if (!shapeEq(mine.shape, t.shape)) info.mismatchedKeys.push({ key: mk, checkpoint: [...t.shape], model: [...mine.shape] });
    else load.set(mk, t);
  }
  for (const k of own.keys()) if (!rename.has(k)) info.missingKeys.push(k);
  if (info.mismatchedKeys.length && !o.ignoreMismatchedSizes) {
    const msg = new StateDictError(cls, { missingKeys: [], unexpectedKeys: [], mismatchedKeys: info.mismatchedKeys.map((m) => ({ key: m.key, expected: m.model, got: m.checkpoint })) }).message;
    throw new Error(`${o.source}: ${msg}\n\tYou may consider adding \`ignoreMismatchedSizes: true\` to fromPretrained's options.`);
  }
  model.loadStateDict(load, { strict: false });
  const warn = o.warn ?? ((m: string) => process.emitWarning(m));
  if (info.unexpectedKeys.length && (o.architectures ?? []).includes(cls)) {
    warn(`Some weights of the model checkpoint at ${o.source} were not used when initializing ${cls}: ${pyList(info.unexpectedKeys)}`);
  }
  if (info.missingKeys.length) {
    warn(`Some weights of ${cls} were not initialized from the model checkpoint at ${o.source} and are newly initialized: ${pyList(info.missingKeys)}\nYou should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.`);
  }
  if (info.mismatchedKeys.length) {
    const lines = info.mismatchedKeys.map((m) => `- ${m.key}: found shape ${fmtShape(m.checkpoint)} in the checkpoint and ${fmtShape(m.model)} in the model instantiated`);
    warn(`Some weights of ${cls} were not initialized from the model checkpoint at ${o.source} and are newly initialized because the shapes did not match:\n${lines.join('\n')}\nYou should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.`);
  }
  return info;
}

const pyList = (keys: string[]) => `[${keys.map((k) => `'${k}'`).join(', ')}]`;

export interface FromPretrainedOptions extends LocateOptions {
  /** Use this config instead of the folder's config.json. */
  config?: ResNetConfig;
  /** Overrides of config fields, as transformers' from_pretrained(**kwargs). numLabels resets the labels. */
  numLabels?: number;
  id2label?: Record<string, string>;
  /** ResNetBackbone's outputs (either one; the other follows). */
  outFeatures?: string[];
  outIndices?: number[];
  ignoreMismatchedSizes?: boolean;
  /** Random stream for the weights the checkpoint does not have (a new head). */
  generator?: Generator;
  seed?: number;
  /** Where warnings go (default process.emitWarning). */
  warn?: (message: string) => void;
}

/** A ResNet class of hf.ts: built from a config, with `config` on its instances. */
export type PretrainedClass<T extends Module & { config: ResNetConfig }> = new (config: ResNetConfig, o?: { generator?: Generator; seed?: number }) => T;

/** config with from_pretrained's keyword overrides applied. */
export function configWithOverrides(c: ResNetConfig, o: Pick<FromPretrainedOptions, 'numLabels' | 'id2label' | 'outFeatures' | 'outIndices'>): ResNetConfig {
  if (o.numLabels === undefined && o.id2label === undefined && o.outFeatures === undefined && o.outIndices === undefined) return c;
  const d = c.toDict();
  if (o.id2label !== undefined) {
    d.id2label = o.id2label;
    d.label2id = Object.fromEntries(Object.entries(o.id2label).map(([i, l]) => [l, Number(i)]));
  } else if (o.numLabels !== undefined && o.numLabels !== c.numLabels) {
    d.num_labels = o.numLabels;
    delete d.id2label;
    delete d.label2id;
  }
  if (o.outFeatures !== undefined || o.outIndices !== undefined) {
    d.out_features = o.outFeatures ?? null;
    d.out_indices = o.outIndices ?? null;
  }
  return ResNetConfig.fromDict(d);
}

/** from_pretrained with its loading report and the files it read. */
export async function loadPretrained<T extends Module & { config: ResNetConfig }>(cls: PretrainedClass<T>, src: string, o: FromPretrainedOptions = {}):
  Promise<{ model: T; info: LoadingInfo; files: PretrainedFiles }> {
  const files = await locatePretrained(src, o);
  const fileConfig = ResNetConfig.fromJSONFile(files.config);
  const config = configWithOverrides(o.config ?? fileConfig, o);
  const model = new cls(config, { generator: o.generator, seed: o.seed });
  if (model.stateDict().size === 0) throw new TypeError(`${cls.name} has no weights to load; use ResNetModel, ResNetForImageClassification or ResNetBackbone`);
  const sd = readPretrainedStateDict(files);
  const info = loadHFStateDict(model, sd, { source: files.source, architectures: fileConfig.architectures, ignoreMismatchedSizes: o.ignoreMismatchedSizes, warn: o.warn });
  return { model, info, files };
}

/** transformers' PreTrainedModel.from_pretrained for one of hf.ts's classes. */
export async function fromPretrained<T extends Module & { config: ResNetConfig }>(cls: PretrainedClass<T>, src: string, o: FromPretrainedOptions = {}): Promise<T> {
  return (await loadPretrained(cls, src, o)).model;
}

// ---- saving ---------------------------------------------------------------------------------------------------

export interface SavePretrainedOptions {
  /** safetensors (default) or torch.save's pytorch_model.bin. */
  safeSerialization?: boolean;
  /** Largest shard: bytes, or a size such as "5GB", "200MB", "10MiB" (default "5GB", as transformers). */
  maxShardSize?: number | string;
}

/** transformers' convert_file_size_to_int (decimal GB/MB/KB, binary GiB/MiB/KiB). */
export function parseShardSize(v: number | string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$/.exec(v) : null;
  if (!m) throw new RangeError(`Expected a positive byte count or a size like "5GB" or "100MiB" for maxShardSize but received ${JSON.stringify(v)} of type ${typeof v}`);
  const unit: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };
  const n = Math.floor(Number(m[1]) * unit[m[2] ?? 'B']);
  if (n < 1) throw new RangeError(`maxShardSize ${JSON.stringify(v)} is less than one byte`);
  return n;
}

/** shard_checkpoint: greedy in key order, a new shard when the next tensor would overflow the current one. */
function shardStateDict(sd: Map<string, Tensor>, max: number): Map<string, Tensor>[] {
  const shards: Map<string, Tensor>[] = [new Map()];
  let size = 0;
  for (const [k, t] of sd) {
    const n = t.numel * itemSize(t.dtype);
    if (size + n > max && shards[shards.length - 1].size > 0) {
      shards.push(new Map());
      size = 0;
    }
    shards[shards.length - 1].set(k, t);
    size += n;
  }
  return shards;
}

/**
 * Write `sd` (transformers keys) and `config` as a model folder for `architecture` (the class name written to
 * config.architectures). Weight files of either format left from an earlier save are removed, so the folder loads
 * exactly what was written.
 */
export function saveStateDictPretrained(dir: string, sd: Map<string, Tensor>, config: ResNetConfig, architecture: string, o: SavePretrainedOptions = {}): string[] {
  const safe = o.safeSerialization ?? true;
  const max = parseShardSize(o.maxShardSize ?? '5GB');
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`cannot save a pretrained model to ${dir}: it is a file, not a folder`);
  mkdirSync(dir, { recursive: true });
  const cfg = ResNetConfig.fromDict({ ...config.toDict(), architectures: [architecture], torch_dtype: 'float32' });
  const weightsName = safe ? SAFE_WEIGHTS_NAME : WEIGHTS_NAME;
  const shards = shardStateDict(sd, max);
  const names = shards.length === 1 ? [weightsName] : shards.map((_, i) => weightsName.replace(/\.(safetensors|bin)$/, `-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.$1`));
  const stage = join(dir, `.save-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(stage);
  const written: string[] = [];
  try {
    shards.forEach((shard, i) => {
      const p = join(stage, names[i]);
      if (safe) writeSafetensorsSync(p, shard, { format: 'pt' });
      else writePthSync(p, shard);
      written.push(names[i]);
    });
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      let total = 0;
      shards.forEach((shard, i) => {
        for (const [k, t] of shard) {
          weightMap[k] = names[i];
          total += t.numel * itemSize(t.dtype);
        }
      });
      const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
      const index = safe ? SAFE_WEIGHTS_INDEX_NAME : WEIGHTS_INDEX_NAME;
      writeFileAtomicSync(join(stage, index), [Buffer.from(`${JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2)}\n`)]);
      written.push(index);
    }
    writeFileAtomicSync(join(stage, CONFIG_NAME), [Buffer.from(cfg.toJSONString())]);
    written.push(CONFIG_NAME);
    for (const name of written) renameSync(join(stage, name), join(dir, name)); // config.json last
    for (const name of readdirSync(dir)) {
      const weights = [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME].includes(name) || SHARD_RE.test(name);
      if (weights && !written.includes(name)) rmSync(join(dir, name), { force: true });
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return written.map((n) => join(dir, n));
}

/** transformers' save_pretrained for a model of hf.ts (its config and its state dict). */
export function savePretrained(model: Module & { config: ResNetConfig }, dir: string, o: SavePretrainedOptions = {}): string[] {
  return saveStateDictPretrained(dir, model.stateDict(), model.config, model.constructor.name, o);
}
