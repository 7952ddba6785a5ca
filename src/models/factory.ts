// One place that turns "an architecture name or a config.json, and a weights spec" into a ready model, for the CLI
// (every --weights goes through resolveWeights) and for users who do not want to pick the class themselves.
// A weights spec is one of:
//   a file       a torch.save checkpoint (.pth/.pt/.bin) or safetensors, told apart by content
//   a folder     a resnet-ts model folder (config.json with "library": "resnet-ts", model.safetensors; see
//                model-folder.ts: it says the model, its labels and its preprocessing), or a Hugging Face model
//                folder (config.json + weights; see pretrained.ts)
//   hf:org/name  a Hugging Face repo id (hf:org/name@revision), through the Hugging Face cache ($HF_HOME, offline mode)
//   a URL        http(s)://.../<name>.pth through the torch.hub cache; the sha256 prefix is checked when the file
//                name carries one (<name>-<hex>.pth, torchvision's convention)
//   a name       a torchvision registry entry: DEFAULT or IMAGENET1K_V2 (resolved against arch), or a full name such
//                as ResNet50_Weights.IMAGENET1K_V2 (which fixes the arch); downloaded into the torch.hub cache with
//                its hash checked. $RESNET_TORCHVISION_BASE_URL replaces https://download.pytorch.org/models (a mirror).
// Torchvision-keyed weights for an HF model and HF-keyed weights for a torchvision builder are converted with
// convert.ts (an HF config that torchvision cannot express is an error that says why). Weights from an HF folder or
// repo load with transformers' semantics (prefixes, "newly initialized" warnings); all others load strictly.
// createModel is synchronous and takes local files and folders; loadModel takes every spec.

import { basename } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import { hashPrefixFromFileName, loadStateDictFromUrl } from '../io/hub.js';
import { skipInit } from '../nn/init.js';
import { getModel, listModels } from './resnet.js';
import { ResNetConfig, ResNetForImageClassification } from './hf.js';
import { type Weights, getModelWeights, getWeight } from './weights.js';
import { hfToTorchvision, torchvisionArchForHF, torchvisionToHF } from './convert.js';
import { type HubOptions, configWithOverrides, loadHFStateDict, locatePretrained, locatePretrainedDir, readPretrainedStateDict } from './pretrained.js';
import { readCheckpointFile, readStateDictFile } from './checkpoint.js';
import { type KeyFamily, guessArchitecture, keyFamily } from './arch-guess.js';
import { type ModelSpec, buildSpecModel, specFromCheckpoint } from './model-spec.js';
import { isModelFolder, readModelFolder } from './model-folder.js';

export interface ResolveOptions extends HubOptions {
  /** The torchvision builder short registry names (DEFAULT, IMAGENET1K_V2) belong to. */
  arch?: string;
}

export interface CreateModelOptions extends ResolveOptions {
  /** A torchvision builder name (resnet18 ... wide_resnet101_2). */
  arch?: string;
  /** A Hugging Face config.json (gives a ResNetForImageClassification). */
  config?: string;
  /** A weights spec (see the top of this file); createModel takes local files and folders only. */
  weights?: string;
  numClasses?: number;
  seed?: number;
  /** Where loading warnings go (default process.emitWarning). */
  warn?: (message: string) => void;
}

export interface ResolvedWeights {
  kind: 'file' | 'model-folder' | 'hf-folder' | 'hf-hub' | 'url' | 'registry';
  /** What messages name: the path, folder, repo id, URL or registry name. */
  source: string;
  stateDict: Map<string, Tensor>;
  family: KeyFamily;
  /** The config.json of an HF folder or repo. */
  config: ResNetConfig | null;
  /** The registry entry (its categories and transforms). */
  weights: Weights | null;
  /** The torchvision builder a registry entry belongs to. */
  arch: string | null;
  /** Files holding a checkpoint dict: the key the state dict came from (model_state_dict, ...). */
  stateDictKey: string | null;
  /** A resnet-ts model folder or `resnet train` checkpoint: the model it holds (which the model is built from). */
  spec: ModelSpec | null;
  /** A resnet-ts model folder or `resnet train` checkpoint: its class names. */
  labels: string[] | null;
  /** A model folder or train checkpoint: its inference transform (TransformSpec JSON, checked by infer/preprocess.ts). */
  preprocess: unknown[] | null;
}

type SpecKind = ResolvedWeights['kind'] | 'missing';

const REGISTRY_NAME = /^(\w+_Weights\.)?[A-Z][A-Z0-9_]*$/;

function specKind(spec: string): SpecKind {
  if (typeof spec !== 'string' || spec === '') throw new TypeError(`Expected a weights spec (file, folder, hf:org/name, URL or registry name) but received ${JSON.stringify(spec)} of type ${typeof spec}`);
  if (spec.startsWith('hf:')) return 'hf-hub';
  if (/^https?:\/\//i.test(spec)) return 'url';
  if (existsSync(spec)) return statSync(spec).isDirectory() ? (isModelFolder(spec) ? 'model-folder' : 'hf-folder') : 'file';
  return REGISTRY_NAME.test(spec) ? 'registry' : 'missing';
}

function resolved(kind: ResolvedWeights['kind'], source: string, sd: Map<string, Tensor>, extra: Partial<ResolvedWeights> = {}): ResolvedWeights {
  return {
    kind, source, stateDict: sd, family: keyFamily(sd.keys()), config: null, weights: null, arch: null, stateDictKey: null, spec: null, labels: null, preprocess: null, ...extra,
  };
}

/** A local file or folder; null for specs that need a download. */
function resolveLocal(spec: string, kind: SpecKind): ResolvedWeights | null {
  if (kind === 'missing') {
    throw new Error(`${spec}: no such file or folder (a weights spec is a .pth/.bin/.safetensors file, a Hugging Face model folder, hf:org/name, an http(s) URL, or a registry name such as DEFAULT or ResNet50_Weights.IMAGENET1K_V2)`);
  }
  if (kind === 'file') {
    const c = readCheckpointFile(spec);
    const top = c.object instanceof Map ? c.object : null;
    if (top?.has('model_spec')) return resolved('file', spec, c.stateDict, { stateDictKey: c.stateDictKey, ...trainCheckpointModel(top, spec) });
    return resolved('file', spec, c.stateDict, { stateDictKey: c.stateDictKey });
  }
  if (kind === 'model-folder') {
    const f = readModelFolder(spec);
    return resolved('model-folder', spec, f.stateDict, { spec: f.spec, labels: f.labels, preprocess: f.preprocess });
  }
  if (kind === 'hf-folder') {
    const files = locatePretrainedDir(spec);
    return resolved('hf-folder', spec, readPretrainedStateDict(files), { config: ResNetConfig.fromJSONFile(files.config) });
  }
  return null;
}

/**
 * What a `resnet train` checkpoint says about its model: model_spec (a dict of strings and ints), class_names, and
 * preprocess (the inference transform as JSON text; absent in checkpoints from before it was written).
 */
function trainCheckpointModel(top: Map<unknown, unknown>, path: string): Pick<ResolvedWeights, 'spec' | 'labels' | 'preprocess'> {
  const raw = top.get('model_spec');
  const spec = specFromCheckpoint(raw instanceof Map ? Object.fromEntries(raw) : raw, path);
  const names = top.get('class_names');
  const labels = Array.isArray(names) && names.length === spec.num_classes && names.every((n) => typeof n === 'string') ? names as string[] : null;
  const text = top.get('preprocess');
  let preprocess: unknown[] | null = null;
  if (typeof text === 'string') {
    try {
      preprocess = JSON.parse(text) as unknown[];
    } catch (e) {
      throw new Error(`${path}: preprocess is not JSON text (${(e as Error).message})`, { cause: e });
    }
    if (!Array.isArray(preprocess)) throw new TypeError(`${path}: expected preprocess to be a JSON list of transforms`);
  }
  return { spec, labels, preprocess };
}

/** The torchvision builder whose enum is `enumName`. */
function builderOf(enumName: string): string {
  const b = listModels().find((m) => getModelWeights(m).enumName === enumName);
  if (!b) throw new RangeError(`no builder uses ${enumName}`);
  return b;
}

/** A registry entry (or a Weights object): the entry, its builder, and the URL to fetch (the mirror's, if set). */
export function registryEntry(spec: string | Weights, arch?: string): { weights: Weights; arch: string; url: string } {
  let w: Weights;
  if (typeof spec === 'string' && !spec.includes('.') && !arch) {
    throw new RangeError(`the registry name ${spec} needs an architecture (--arch) or a full name such as ResNet50_Weights.${spec}`);
  }
  try {
    if (typeof spec !== 'string') w = arch ? getModelWeights(arch).verify(spec)! : spec;
    else w = arch ? getModelWeights(arch).verify(spec)! : getWeight(spec);
  } catch (e) {
    if (typeof spec !== 'string') throw e;
    throw new RangeError(`${spec}: no such file or folder, and not a registry name: ${(e as Error).message}`, { cause: e });
  }
  const file = basename(new URL(w.url).pathname);
  const base = process.env.RESNET_TORCHVISION_BASE_URL;
  return { weights: w, arch: arch ?? builderOf(w.enumName), url: base ? `${base.replace(/\/+$/, '')}/${file}` : w.url };
}

/** A weights spec that needs no download, read now; the others are an error that points at resolveWeights. */
export function resolveWeightsSync(spec: string): ResolvedWeights {
  const kind = specKind(spec);
  const r = resolveLocal(spec, kind);
  if (!r) throw new Error(`${spec}: a ${kind === 'hf-hub' ? 'Hugging Face repo' : kind === 'url' ? 'URL' : 'registry name'} needs a download; use loadModel or resolveWeights (asynchronous)`);
  return r;
}

/** Any weights spec (or a registry Weights object), downloaded into its cache when it is remote. */
export async function resolveWeights(spec: string | Weights, o: ResolveOptions = {}): Promise<ResolvedWeights> {
  if (typeof spec !== 'string') {
    const e = registryEntry(spec, o.arch);
    return resolved('registry', e.weights.fullName, await loadStateDictFromUrl(e.url, { progress: o.progress, checkHash: true, fileName: basename(new URL(e.weights.url).pathname) }), { weights: e.weights, arch: e.arch });
  }
  const kind = specKind(spec);
  const local = resolveLocal(spec, kind);
  if (local) return local;
  if (kind === 'hf-hub') {
    const files = await locatePretrained(spec, o);
    return resolved('hf-hub', files.source, readPretrainedStateDict(files), { config: ResNetConfig.fromJSONFile(files.config) });
  }
  if (kind === 'url') {
    const checkHash = hashPrefixFromFileName(basename(new URL(spec).pathname)) !== undefined;
    return resolved('url', spec, await loadStateDictFromUrl(spec, { progress: o.progress, checkHash }));
  }
  const e = registryEntry(spec, o.arch);
  const sd = await loadStateDictFromUrl(e.url, { progress: o.progress, checkHash: true, fileName: basename(new URL(e.weights.url).pathname) });
  return resolved('registry', e.weights.fullName, sd, { weights: e.weights, arch: e.arch });
}

/** Run `f`, prefixing any error with the weights' source (once). */
function naming<T>(source: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(source) ? msg : `${source}: ${msg}`, { cause: e });
  }
}

function buildTorchvision(arch: string, o: CreateModelOptions, w: ResolvedWeights | null): Module {
  if (!listModels().includes(arch)) throw new RangeError(`unknown architecture '${arch}'; known: ${listModels().join(', ')}`);
  let numClasses = o.numClasses;
  let sd = w?.stateDict;
  if (w?.weights) {
    const n = w.weights.meta.categories.length;
    if (numClasses !== undefined && numClasses !== n) throw new RangeError(`${w.source}: The parameter 'num_classes' expected value ${n} but got ${numClasses} instead.`);
    numClasses = n;
  }
  if (w && w.family === 'hf') {
    naming(w.source, () => {
      if (w.config) {
        const tv = torchvisionArchForHF(w.config);
        if (tv.arch !== arch) throw new RangeError(`these weights are a ${tv.arch ?? `ResNet with depths [${tv.layers.join(', ')}]`} (from config.json), not a ${arch}`);
        numClasses ??= tv.numClasses;
      }
      sd = hfToTorchvision(w.stateDict);
    });
  }
  // a strict load overwrites every parameter and buffer (or throws): drawing random initial values first would be
  // wasted time (most of the build, for a big model), so they are skipped when weights follow
  const build = () => getModel(arch, { numClasses, seed: o.seed ?? 0 });
  const model = sd ? skipInit(build) : build();
  if (sd) naming(w!.source, () => model.loadStateDict(sd!));
  return model;
}

function buildHF(config: ResNetConfig, o: CreateModelOptions, w: ResolvedWeights | null): Module {
  if (o.numClasses !== undefined) config = configWithOverrides(config, { numLabels: o.numClasses });
  // HF folders and repos load leniently (missing keys keep their initial values, as transformers does), so only
  // they need the random initial draw; any other weights load strictly and overwrite everything
  const lenient = w?.kind === 'hf-folder' || w?.kind === 'hf-hub';
  const build = () => new ResNetForImageClassification(config, { seed: o.seed ?? 0 });
  const model = w && !lenient ? skipInit(build) : build();
  if (!w) return model;
  const sd = w.family === 'torchvision' ? naming(w.source, () => torchvisionToHF(w.stateDict)) : w.stateDict;
  if (lenient) loadHFStateDict(model, sd, { source: w.source, architectures: w.config?.architectures, warn: o.warn });
  else naming(w.source, () => model.loadStateDict(sd));
  return model;
}

/** A model folder's model: built from its spec (no random init: the strict load overwrites it all). */
function buildFromSpec(spec: ModelSpec, o: CreateModelOptions, w: ResolvedWeights): Module {
  const what = spec.arch ?? 'model described by a transformers config';
  if (o.config) throw new RangeError(`${w.source}: these weights carry their model's description (a ${what}); leave out config`);
  if (o.arch && o.arch !== spec.arch) throw new RangeError(`${w.source}: these weights are a ${what}, not a ${o.arch}; leave out arch`);
  if (o.numClasses !== undefined && o.numClasses !== spec.num_classes) throw new RangeError(`${w.source}: the model has ${spec.num_classes} classes, not ${o.numClasses}`);
  const model = skipInit(() => buildSpecModel(spec));
  naming(w.source, () => model.loadStateDict(w.stateDict));
  return model;
}

/** The model for `o`, with `w` loaded into it (the architecture may come from the weights). */
export function buildModel(o: CreateModelOptions, w: ResolvedWeights | null): Module {
  if (w?.spec) return buildFromSpec(w.spec, o, w);
  if (o.arch && o.config) throw new RangeError('give exactly one of arch (a torchvision builder) or config (an HF config.json)');
  if (o.arch) return buildTorchvision(o.arch, o, w);
  if (o.config) return buildHF(ResNetConfig.fromJSONFile(o.config), o, w);
  if (w?.arch) return buildTorchvision(w.arch, o, w);
  if (w?.config) return buildHF(w.config, o, w);
  if (w?.family === 'torchvision') {
    const g = guessArchitecture(w.stateDict);
    if (g?.family === 'torchvision' && g.arch) return buildTorchvision(g.arch, { ...o, numClasses: o.numClasses ?? g.numClasses ?? undefined }, w);
    throw new RangeError(`${w.source}: torchvision weights that fit no builder (${g?.family === 'torchvision' ? `${g.block} blocks [${g.layers.join(', ')}], groups ${g.groups}, width ${g.widthPerGroup}` : 'unrecognised shapes'}); give arch`);
  }
  if (w) throw new RangeError(`${w.source}: the weights do not say which model they are for; give arch (a torchvision builder) or config (an HF config.json)`);
  throw new RangeError('give exactly one of arch (a torchvision builder) or config (an HF config.json)');
}

/** A model from local files only (synchronous): arch or config, and weights from a file or an HF folder. */
export function createModel(o: CreateModelOptions): Module {
  return buildModel(o, o.weights ? resolveWeightsSync(o.weights) : null);
}

/** A model from any weights spec: registry names, URLs and hf: repo ids are downloaded into their caches. */
export async function loadModel(o: CreateModelOptions): Promise<Module> {
  return buildModel(o, o.weights ? await resolveWeights(o.weights, o) : null);
}

/** The state dict in a weights file: safetensors or a torch.save checkpoint, told apart by content. */
export function readWeightsFile(path: string): Map<string, Tensor> {
  return readStateDictFile(path);
}
