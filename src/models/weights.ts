// torchvision's pretrained-weights registry for the ResNet family (torchvision/models/_api.py: Weights, WeightsEnum,
// get_weight, get_model_weights): one enum per builder (`ResNet50_Weights.IMAGENET1K_V2`, `.DEFAULT`), each member
// carrying its url, meta (ImageNet-1K accuracy, parameter count, GFLOPS, categories, ...) and its inference transform
// as data. The facts live in weights-data.ts, generated from torchvision by scripts/make_registry.py.
// This file does not build models (resnet.ts does) and does not download (io/hub.ts does).

import { basename } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { hashPrefixFromFileName, loadStateDictFromUrl } from '../io/hub.js';
import { HF_RESNET, IMAGENET_CATEGORIES, WEIGHTS_DATA } from './weights-data.js';

export { HF_RESNET, IMAGENET_CATEGORIES, TORCHVISION_VERSION } from './weights-data.js';

/** torchvision's ImageClassification preset: resize the short side, center-crop, scale to [0,1], normalize. */
export interface ImageClassificationTransforms {
  readonly resizeSize: number;
  readonly cropSize: number;
  readonly interpolation: 'nearest' | 'bilinear' | 'bicubic';
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly antialias: boolean;
}

/** torchvision's meta dict, keys as torchvision spells them. */
export interface WeightsMeta {
  readonly min_size: readonly [number, number];
  readonly categories: readonly string[];
  readonly num_params: number;
  readonly recipe: string;
  readonly _metrics: { readonly 'ImageNet-1K': { readonly 'acc@1': number; readonly 'acc@5': number } };
  /** GFLOPS (multiply-adds, 224x224). */
  readonly _ops: number;
  /** Checkpoint size in MB; absent when torchvision 0.14 (which does not record it) made the table. */
  readonly _file_size?: number;
  readonly _docs: string;
}

export interface WeightsInit {
  enumName: string;
  name: string;
  url: string;
  transforms: ImageClassificationTransforms;
  meta: WeightsMeta;
}

export interface GetStateDictOptions {
  /** Progress bar on a TTY while downloading (default true). */
  progress?: boolean;
  /** Check the sha256 prefix in the file name, on download and on every cached load (default false, as torch). */
  checkHash?: boolean;
}

/** One set of pretrained weights: a member of a WeightsEnum (torchvision's Weights dataclass plus the enum's name). */
export class Weights {
  readonly enumName: string;
  readonly name: string;
  readonly url: string;
  /** The sha256 prefix in the file name (torch.hub's check_hash convention), or null. */
  readonly hashPrefix: string | null;
  readonly transforms: ImageClassificationTransforms;
  readonly meta: WeightsMeta;

  constructor(init: WeightsInit) {
    this.enumName = init.enumName;
    this.name = init.name;
    this.url = init.url;
    this.hashPrefix = hashPrefixFromFileName(basename(new URL(init.url).pathname)) ?? null;
    this.transforms = init.transforms;
    this.meta = init.meta;
    Object.freeze(this);
  }

  /** 'ResNet50_Weights.IMAGENET1K_V2', as torchvision's repr and str. */
  get fullName(): string {
    return `${this.enumName}.${this.name}`;
  }

  toString(): string {
    return this.fullName;
  }

  /** The state dict, from the torch.hub cache ($TORCH_HOME/hub/checkpoints) or downloaded there. */
  getStateDict(o: GetStateDictOptions = {}): Promise<Map<string, Tensor>> {
    return loadStateDictFromUrl(this.url, { progress: o.progress ?? true, checkHash: o.checkHash ?? false });
  }
}

type Data = typeof WEIGHTS_DATA;
export type WeightsEnumName = keyof Data;
/** The member names of one enum, DEFAULT included. */
export type WeightsName<E extends WeightsEnumName> = (keyof Data[E]['members'] & string) | 'DEFAULT';

const typeName = (v: unknown): string => (v === null ? 'null' : ((v as object).constructor?.name ?? typeof v));

/**
 * torchvision's WeightsEnum: members are own enumerable properties (`IMAGENET1K_V1`, ..., and `DEFAULT`, the same
 * object as the member it aliases). Iterate with members() (no aliases, as Python's Enum iteration).
 */
export class WeightsEnum {
  readonly #name: string;
  readonly #byName = new Map<string, Weights>();

  constructor(enumName: string, members: readonly Weights[], aliases: Readonly<Record<string, string>> = {}) {
    this.#name = enumName;
    for (const w of members) {
      if (w.enumName !== enumName) throw new RangeError(`${w.fullName} cannot be a member of ${enumName}`);
      this.#byName.set(w.name, w);
    }
    for (const [alias, target] of Object.entries(aliases)) this.#byName.set(alias, this.fromStr(target));
    for (const [k, w] of this.#byName) Object.defineProperty(this, k, { value: w, enumerable: true });
    Object.freeze(this);
  }

  /** The enum's class name, e.g. 'ResNet50_Weights' (Python's __name__). */
  get enumName(): string {
    return this.#name;
  }

  /** The members in definition order, without aliases. */
  members(): Weights[] {
    return [...new Set(this.#byName.values())];
  }

  /** Every name, aliases included (Python's __members__ keys). */
  names(): string[] {
    return [...this.#byName.keys()];
  }

  /** torchvision's StrEnum.from_str. */
  fromStr(member: string): Weights {
    const w = this.#byName.get(member);
    if (!w) throw new RangeError(`Unknown value '${member}' for ${this.#name}.`);
    return w;
  }

  /**
   * torchvision's WeightsEnum.verify: null/undefined stay null; a string is a member name ('IMAGENET1K_V2',
   * 'DEFAULT') or a full name ('ResNet50_Weights.IMAGENET1K_V2'); a Weights must belong to this enum (by its
   * enumName, so a Weights built outside the table, e.g. for a local mirror, is accepted too).
   */
  verify(obj: unknown): Weights | null {
    if (obj === null || obj === undefined) return null;
    if (typeof obj === 'string') return this.fromStr(obj.split(`${this.#name}.`).join(''));
    if (!(obj instanceof Weights) || obj.enumName !== this.#name) {
      const got = obj instanceof Weights ? obj.enumName : typeName(obj);
      throw new TypeError(`Invalid Weight class provided; expected ${this.#name} but received ${got}.`);
    }
    return obj;
  }

  toString(): string {
    return `<enum '${this.#name}'>`;
  }
}

/** An enum of the table, typed with its member names. */
export type ResNetWeightsEnum<E extends WeightsEnumName> = WeightsEnum & { readonly [K in WeightsName<E>]: Weights };

const ENUMS = new Map<string, WeightsEnum>();
const BY_BUILDER = new Map<string, WeightsEnum>();
/** The member the deprecated `pretrained: true` means, per builder (IMAGENET1K_V1 for all ten). */
const LEGACY = new Map<string, Weights>();

function makeEnum<E extends WeightsEnumName>(enumName: E): ResNetWeightsEnum<E> {
  const d = WEIGHTS_DATA[enumName];
  const members = Object.entries(d.members).map(([name, m]) => new Weights({
    enumName,
    name,
    url: m.url,
    transforms: Object.freeze({ ...m.transforms, mean: Object.freeze([...m.transforms.mean]), std: Object.freeze([...m.transforms.std]) }),
    meta: Object.freeze({ ...m.meta, min_size: [m.meta.min_size[0], m.meta.min_size[1]] as const, categories: IMAGENET_CATEGORIES }),
  }));
  const e = new WeightsEnum(enumName, members, { DEFAULT: d.default });
  ENUMS.set(enumName, e);
  BY_BUILDER.set(d.builder, e);
  LEGACY.set(d.builder, e.fromStr(d.pretrained));
  return e as ResNetWeightsEnum<E>;
}

export const ResNet18_Weights = makeEnum('ResNet18_Weights');
export const ResNet34_Weights = makeEnum('ResNet34_Weights');
export const ResNet50_Weights = makeEnum('ResNet50_Weights');
export const ResNet101_Weights = makeEnum('ResNet101_Weights');
export const ResNet152_Weights = makeEnum('ResNet152_Weights');
export const ResNeXt50_32X4D_Weights = makeEnum('ResNeXt50_32X4D_Weights');
export const ResNeXt101_32X8D_Weights = makeEnum('ResNeXt101_32X8D_Weights');
export const ResNeXt101_64X4D_Weights = makeEnum('ResNeXt101_64X4D_Weights');
export const Wide_ResNet50_2_Weights = makeEnum('Wide_ResNet50_2_Weights');
export const Wide_ResNet101_2_Weights = makeEnum('Wide_ResNet101_2_Weights');

/** WeightsEnum.verify as a function: `verifyWeights(ResNet50_Weights, 'DEFAULT')`. */
export function verifyWeights(enumObj: WeightsEnum, value: unknown): Weights | null {
  return enumObj.verify(value);
}

/** Every weights enum, in torchvision's order. */
export function listWeightsEnums(): WeightsEnum[] {
  return [...ENUMS.values()];
}

/** torchvision's get_weight: 'ResNet50_Weights.IMAGENET1K_V2' -> the member. */
export function getWeight(name: string): Weights {
  const parts = String(name).split('.');
  if (parts.length !== 2) throw new RangeError(`Invalid weight name provided: '${name}'.`);
  const e = ENUMS.get(parts[0]);
  if (!e) throw new RangeError(`The weight enum '${parts[0]}' for the specific method couldn't be retrieved.`);
  return e.fromStr(parts[1]);
}

/** torchvision's get_model_weights: the enum of a builder, by registered name (any case) or by the builder itself. */
export function getModelWeights(name: string | ((...args: never[]) => unknown)): WeightsEnum {
  if (typeof name === 'string') {
    const e = BY_BUILDER.get(name.toLowerCase());
    if (!e) throw new RangeError(`Unknown model ${name.toLowerCase()}`);
    return e;
  }
  const e = typeof name === 'function' ? BY_BUILDER.get(name.name) : undefined;
  if (!e) throw new RangeError("The WeightsEnum class for the specific method couldn't be retrieved. Make sure the typing info is correct.");
  return e;
}

/** The weights the deprecated `pretrained: true` stands for (handle_legacy_interface's default). */
export function legacyPretrainedWeights(builder: string): Weights {
  const w = LEGACY.get(builder);
  if (!w) throw new RangeError(`No weights available for model ${builder}`);
  return w;
}

/** The Hugging Face repo ids of the family with the torchvision builder of the same depth (null: none). */
export function hfRepos(): { repo: string; torchvision: string | null }[] {
  return HF_RESNET.map((h) => ({ repo: h.repo, torchvision: h.torchvision }));
}
