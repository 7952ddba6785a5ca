// transformers' ResNetConfig (models/resnet/configuration_resnet.py) with the parts of PretrainedConfig it relies on
// (num_labels / id2label / label2id, problem_type, architectures, output_hidden_states) and the backbone rules of
// utils/backbone_utils.py (stage_names; out_features and out_indices aligned to each other, with transformers'
// error messages). Fields are camelCase here; config.json keys stay snake_case.
//
// config.json is read and written as transformers writes it (PretrainedConfig.to_json_string with use_diff): every
// ResNet field, stage_names, out_features, out_indices and model_type, plus the PretrainedConfig fields that differ
// from their defaults; keys sorted (id2label numerically, as Python sorts its int keys), indent 2, non-ASCII escaped.
// Keys this class does not interpret (transformers_version, torch_dtype, _name_or_path, ...) are kept in `extra`
// and written back unchanged.
// Not here: `return_dict` is kept as an unknown key; forward() defaults to returnDict true so its type is static.

import { readFileSync, writeFileSync } from 'node:fs';
import { ACT2FN } from '../nn/activation.js';
import { describe } from '../ops/check.js';

export type LayerType = 'basic' | 'bottleneck';
export const LAYER_TYPES: readonly LayerType[] = ['basic', 'bottleneck'];
export const PROBLEM_TYPES = ['regression', 'single_label_classification', 'multi_label_classification'] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];

export interface ResNetConfigOptions {
  numChannels?: number;
  embeddingSize?: number;
  hiddenSizes?: readonly number[];
  depths?: readonly number[];
  layerType?: LayerType;
  hiddenAct?: string;
  downsampleInFirstStage?: boolean;
  downsampleInBottleneck?: boolean;
  /** Backbone outputs by name ('stem', 'stage1', ...); null: from outIndices, or the last stage. */
  outFeatures?: readonly string[] | null;
  /** Backbone outputs by index into stageNames (negative counts from the end); null: from outFeatures. */
  outIndices?: readonly number[] | null;
  /** Used only when id2label is not given: labels LABEL_0 ... LABEL_{n-1} (PretrainedConfig's default is 2). */
  numLabels?: number;
  id2label?: Readonly<Record<string | number, string>> | null;
  label2id?: Readonly<Record<string, number>> | null;
  problemType?: ProblemType | null;
  architectures?: readonly string[] | null;
  outputHiddenStates?: boolean;
  /** config.json keys this class does not interpret, written back unchanged. */
  extra?: Readonly<Record<string, unknown>>;
}

// config.json key -> option name, in transformers' __init__ order
const KEYS: readonly [string, keyof ResNetConfigOptions][] = [
  ['num_channels', 'numChannels'], ['embedding_size', 'embeddingSize'], ['hidden_sizes', 'hiddenSizes'], ['depths', 'depths'],
  ['layer_type', 'layerType'], ['hidden_act', 'hiddenAct'], ['downsample_in_first_stage', 'downsampleInFirstStage'],
  ['downsample_in_bottleneck', 'downsampleInBottleneck'], ['out_features', 'outFeatures'], ['out_indices', 'outIndices'],
  ['num_labels', 'numLabels'], ['id2label', 'id2label'], ['label2id', 'label2id'], ['problem_type', 'problemType'],
  ['architectures', 'architectures'], ['output_hidden_states', 'outputHiddenStates'],
];

/**
 * PretrainedConfig's other fields and their defaults (transformers 4.38): an unknown key holding its default is not
 * written back, as to_diff_dict drops it.
 */
const PRETRAINED_DEFAULTS: Readonly<Record<string, unknown>> = {
  return_dict: true, output_attentions: false, torchscript: false, torch_dtype: null, use_bfloat16: false,
  tf_legacy_loss: false, pruned_heads: {}, tie_word_embeddings: true, chunk_size_feed_forward: 0, is_encoder_decoder: false,
  is_decoder: false, cross_attention_hidden_size: null, add_cross_attention: false, tie_encoder_decoder: false,
  max_length: 20, min_length: 0, do_sample: false, early_stopping: false, num_beams: 1, num_beam_groups: 1,
  diversity_penalty: 0, temperature: 1, top_k: 50, top_p: 1, typical_p: 1, repetition_penalty: 1, length_penalty: 1,
  no_repeat_ngram_size: 0, encoder_no_repeat_ngram_size: 0, bad_words_ids: null, num_return_sequences: 1,
  output_scores: false, return_dict_in_generate: false, forced_bos_token_id: null, forced_eos_token_id: null,
  remove_invalid_values: false, exponential_decay_length_penalty: null, suppress_tokens: null, begin_suppress_tokens: null,
  finetuning_task: null, tokenizer_class: null, prefix: null, bos_token_id: null, pad_token_id: null, eos_token_id: null,
  sep_token_id: null, decoder_start_token_id: null, task_specific_params: null, _name_or_path: '',
};

export class ResNetConfig {
  static readonly modelType = 'resnet';
  readonly modelType = 'resnet';
  numChannels: number;
  embeddingSize: number;
  hiddenSizes: number[];
  depths: number[];
  layerType: LayerType;
  hiddenAct: string;
  downsampleInFirstStage: boolean;
  downsampleInBottleneck: boolean;
  /** ['stem', 'stage1', ..., 'stageN'], one per entry of depths. */
  readonly stageNames: string[];
  id2label: Record<string, string> = {};
  label2id: Record<string, number> | null = null;
  /** Set by ResNetForImageClassification on its first loss when null, as transformers does. */
  problemType: ProblemType | null;
  architectures: string[] | null;
  outputHiddenStates: boolean;
  readonly extra: Record<string, unknown>;
  #outFeatures: string[] = [];
  #outIndices: number[] = [];

  constructor(o: ResNetConfigOptions = {}) {
    if (typeof o !== 'object' || o === null) throw new TypeError(`Expected an options object for ResNetConfig but received ${describe(o)}`);
    // PretrainedConfig.__init__ first, as transformers
    const label2id = o.label2id ?? null;
    if (label2id !== null && !isPlainObject(label2id)) throw new TypeError('Argument label2id should be a dictionary.');
    if (o.id2label !== undefined && o.id2label !== null) {
      if (!isPlainObject(o.id2label)) throw new TypeError('Argument id2label should be a dictionary.');
      this.id2label = normaliseId2label(o.id2label);
      this.label2id = label2id === null ? null : { ...label2id };
      if (o.numLabels !== undefined && o.numLabels !== this.numLabels) {
        process.emitWarning(`You passed along \`num_labels=${o.numLabels}\` with an incompatible id to label map: ${pyRepr(this.id2label)}. The number of labels wil be overwritten to ${this.numLabels}.`);
      }
    } else {
      this.#setLabels(o.numLabels === undefined ? 2 : o.numLabels); // replaces label2id too, as transformers
    }
    this.problemType = o.problemType ?? null;
    if (this.problemType !== null && !PROBLEM_TYPES.includes(this.problemType)) {
      throw new RangeError(`The config parameter \`problem_type\` was not understood: received ${this.problemType} but only 'regression', 'single_label_classification' and 'multi_label_classification' are valid.`);
    }
    this.architectures = o.architectures === undefined || o.architectures === null ? null : stringList(o.architectures, 'architectures');
    this.outputHiddenStates = bool(o.outputHiddenStates ?? false, 'output_hidden_states');
    this.extra = { ...(o.extra ?? {}) };

    // then ResNetConfig.__init__
    const layerType = o.layerType === undefined ? 'bottleneck' : o.layerType;
    if (!LAYER_TYPES.includes(layerType)) throw new RangeError(`layer_type=${String(layerType)} is not one of ${LAYER_TYPES.join(',')}`);
    this.layerType = layerType;
    this.numChannels = positiveInt(o.numChannels === undefined ? 3 : o.numChannels, 'num_channels');
    this.embeddingSize = positiveInt(o.embeddingSize === undefined ? 64 : o.embeddingSize, 'embedding_size');
    this.hiddenSizes = positiveInts(o.hiddenSizes === undefined ? [256, 512, 1024, 2048] : o.hiddenSizes, 'hidden_sizes');
    this.depths = positiveInts(o.depths === undefined ? [3, 4, 6, 3] : o.depths, 'depths');
    if (this.depths.length !== this.hiddenSizes.length) {
      throw new RangeError(`depths and hidden_sizes must have one entry per stage, but depths has ${this.depths.length} and hidden_sizes has ${this.hiddenSizes.length}`);
    }
    const act = o.hiddenAct === undefined ? 'relu' : o.hiddenAct;
    if (typeof act !== 'string') throw new TypeError(`Expected an activation name for hidden_act but received ${describe(act)}`);
    if (!Object.prototype.hasOwnProperty.call(ACT2FN, act)) throw new RangeError(`hidden_act: function ${act} not found in ACT2FN mapping ${pyRepr(Object.keys(ACT2FN))}`);
    this.hiddenAct = act;
    this.downsampleInFirstStage = bool(o.downsampleInFirstStage ?? false, 'downsample_in_first_stage');
    this.downsampleInBottleneck = bool(o.downsampleInBottleneck ?? false, 'downsample_in_bottleneck');
    this.stageNames = ['stem', ...this.depths.map((_, i) => `stage${i + 1}`)];
    const a = getAlignedOutputFeaturesOutputIndices(o.outFeatures ?? null, o.outIndices ?? null, this.stageNames);
    this.#outFeatures = a.outFeatures;
    this.#outIndices = a.outIndices;
  }

  get numLabels(): number {
    return Object.keys(this.id2label).length;
  }

  /** PretrainedConfig's setter: a different count replaces id2label and label2id with LABEL_i. */
  set numLabels(n: number) {
    if (this.numLabels !== n) this.#setLabels(n);
  }

  #setLabels(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Expected an integer >= 0 for num_labels but received ${describe(n)}`);
    this.id2label = {};
    this.label2id = {};
    for (let i = 0; i < n; i++) {
      this.id2label[String(i)] = `LABEL_${i}`;
      this.label2id[`LABEL_${i}`] = i;
    }
  }

  get outFeatures(): string[] {
    return [...this.#outFeatures];
  }

  /** BackboneConfigMixin's setter: out_indices follow. */
  set outFeatures(v: readonly string[] | null) {
    ({ outFeatures: this.#outFeatures, outIndices: this.#outIndices } = getAlignedOutputFeaturesOutputIndices(v, null, this.stageNames));
  }

  get outIndices(): number[] {
    return [...this.#outIndices];
  }

  set outIndices(v: readonly number[] | null) {
    ({ outFeatures: this.#outFeatures, outIndices: this.#outIndices } = getAlignedOutputFeaturesOutputIndices(null, v, this.stageNames));
  }

  /** A config from config.json's dictionary (snake_case keys); undefined values count as absent. */
  static fromDict(d: Readonly<Record<string, unknown>>): ResNetConfig {
    if (!isPlainObject(d)) throw new TypeError(`Expected a config dictionary but received ${describe(d)}`);
    const o: Record<string, unknown> = {};
    const extra: Record<string, unknown> = {};
    const known = new Map(KEYS);
    for (const [k, v] of Object.entries(d)) {
      if (v === undefined || k === 'stage_names') continue; // stage_names is derived from depths, as in transformers
      if (k === 'model_type') {
        if (v !== ResNetConfig.modelType) process.emitWarning(`You are using a model of type ${String(v)} to instantiate a model of type resnet. This is not supported for all configurations of models and can yield errors.`);
        continue;
      }
      const name = known.get(k);
      if (name) o[name] = v;
      else extra[k] = v;
    }
    return new ResNetConfig({ ...(o as ResNetConfigOptions), extra });
  }

  static fromJSONString(text: string, source = '<string>'): ResNetConfig {
    let d: unknown;
    try {
      d = JSON.parse(text);
    } catch (e) {
      throw new SyntaxError(`${source}: expected a JSON config: ${(e as Error).message}`);
    }
    try {
      return ResNetConfig.fromDict(d as Record<string, unknown>);
    } catch (e) {
      const E = e instanceof TypeError ? TypeError : e instanceof RangeError ? RangeError : Error;
      throw new E(`${source}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Read a config.json (errors name the file). */
  static fromJSONFile(path: string): ResNetConfig {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read config file ${path}: ${(e as Error).message}`, { cause: e });
    }
    return ResNetConfig.fromJSONString(text, path);
  }

  /** The dictionary transformers writes to config.json (to_diff_dict; without transformers_version unless read). */
  toDict(): Record<string, unknown> {
    const d: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.extra)) {
      if (!(Object.prototype.hasOwnProperty.call(PRETRAINED_DEFAULTS, k) && JSON.stringify(v) === JSON.stringify(PRETRAINED_DEFAULTS[k]))) d[k] = v;
    }
    if (this.architectures !== null) d.architectures = [...this.architectures];
    d.depths = [...this.depths];
    d.downsample_in_bottleneck = this.downsampleInBottleneck;
    d.downsample_in_first_stage = this.downsampleInFirstStage;
    d.embedding_size = this.embeddingSize;
    d.hidden_act = this.hiddenAct;
    d.hidden_sizes = [...this.hiddenSizes];
    if (!sameRecord(this.id2label, { 0: 'LABEL_0', 1: 'LABEL_1' })) d.id2label = { ...this.id2label };
    if (this.label2id === null || !sameRecord(this.label2id, { LABEL_0: 0, LABEL_1: 1 })) d.label2id = this.label2id && { ...this.label2id };
    d.layer_type = this.layerType;
    d.model_type = this.modelType;
    d.num_channels = this.numChannels;
    d.out_features = this.outFeatures;
    d.out_indices = this.outIndices;
    if (this.outputHiddenStates) d.output_hidden_states = true;
    if (this.problemType !== null) d.problem_type = this.problemType;
    d.stage_names = [...this.stageNames];
    return d;
  }

  /** json.dumps(to_diff_dict(), indent=2, sort_keys=True) + "\n", byte for byte. */
  toJSONString(): string {
    return `${pyJson(this.toDict(), '', true)}\n`;
  }

  toJSONFile(path: string): void {
    writeFileSync(path, this.toJSONString());
  }
}

// ---- backbone_utils.py ------------------------------------------------------------------------------------------

/** transformers' verify_out_features_out_indices, messages included (arrays are Python lists). */
export function verifyOutFeaturesOutIndices(outFeatures: unknown, outIndices: unknown, stageNames: readonly string[]): void {
  if (outFeatures !== null) {
    if (!Array.isArray(outFeatures)) throw new TypeError(`out_features must be a list got <class '${pyType(outFeatures)}'>`);
    if (outFeatures.some((f) => !stageNames.includes(f))) {
      throw new RangeError(`out_features must be a subset of stage_names: ${pyRepr(stageNames)} got ${pyRepr(outFeatures)}`);
    }
    if (new Set(outFeatures).size !== outFeatures.length) throw new RangeError(`out_features must not contain any duplicates, got ${pyRepr(outFeatures)}`);
    const sorted = stageNames.filter((s) => outFeatures.includes(s));
    if (sorted.some((s, i) => s !== outFeatures[i])) {
      throw new RangeError(`out_features must be in the same order as stage_names, expected ${pyRepr(sorted)} got ${pyRepr(outFeatures)}`);
    }
  }
  if (outIndices !== null) {
    if (!Array.isArray(outIndices)) throw new TypeError(`out_indices must be a list or tuple, got <class '${pyType(outIndices)}'>`);
    if (!outIndices.every((i) => Number.isInteger(i))) throw new TypeError(`out_indices must be a list of integers, got ${pyRepr(outIndices)}`);
    const n = stageNames.length;
    const positive = (outIndices as number[]).map((i) => (i < 0 ? ((i % n) + n) % n : i)); // Python's idx % n
    if (positive.some((i) => i >= n)) throw new RangeError(`out_indices must be valid indices for stage_names ${pyRepr(stageNames)}, got ${pyRepr(outIndices)}`);
    if (new Set(positive).size !== positive.length) {
      // transformers compares its tuple with the given list, which always differ, so the suffix is always there
      throw new RangeError(`out_indices must not contain any duplicates, got ${pyRepr(outIndices)}(equivalent to ${pyTuple(positive)}))`);
    }
    if (positive.some((p, i) => i > 0 && p < positive[i - 1])) {
      const order = positive.map((p, i) => [p, outIndices[i] as number]).sort((a, b) => a[0] - b[0]);
      throw new RangeError(`out_indices must be in the same order as stage_names, expected ${pyTuple(order.map((e) => e[1]))} got ${pyRepr(outIndices)}`);
    }
  }
  if (outFeatures !== null && outIndices !== null) {
    const f = outFeatures as string[], ix = outIndices as number[];
    if (f.length !== ix.length) throw new RangeError('out_features and out_indices should have the same length if both are set');
    if (ix.some((i, k) => pyIndex(stageNames, i) !== f[k])) throw new RangeError('out_features and out_indices should correspond to the same stages if both are set');
  }
}

/** transformers' get_aligned_output_features_output_indices: verify, fill in the missing side, verify again. */
export function getAlignedOutputFeaturesOutputIndices(outFeatures: readonly string[] | null, outIndices: readonly number[] | null,
  stageNames: readonly string[]): { outFeatures: string[]; outIndices: number[] } {
  verifyOutFeaturesOutIndices(outFeatures, outIndices, stageNames);
  let f: string[], ix: number[];
  if (outFeatures === null && outIndices === null) {
    f = [stageNames[stageNames.length - 1]];
    ix = [stageNames.length - 1];
  } else if (outIndices === null) {
    f = [...outFeatures!];
    ix = f.map((s) => stageNames.indexOf(s));
  } else {
    ix = [...outIndices];
    f = outFeatures === null ? ix.map((i) => pyIndex(stageNames, i)) : [...outFeatures];
  }
  verifyOutFeaturesOutIndices(f, ix, stageNames);
  return { outFeatures: f, outIndices: ix };
}

function pyIndex(list: readonly string[], i: number): string {
  if (i < -list.length || i >= list.length) throw new RangeError(`out_indices: list index out of range (${i} for ${list.length} stage_names)`);
  return list[i < 0 ? i + list.length : i];
}

// ---- small Python-compatible helpers ----------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${describe(v)}`);
  return v;
}

function positiveInts(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1)) {
    throw new RangeError(`Expected a non-empty list of positive integers for ${name} but received ${describe(v)}`);
  }
  return [...v];
}

function stringList(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new TypeError(`Expected a list of strings for ${name} but received ${describe(v)}`);
  return [...v];
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`Expected true or false for ${name} but received ${describe(v)}`);
  return v;
}

/** id2label with its keys as Python's int(key) would read them, and string labels. */
function normaliseId2label(m: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (!/^\s*[+-]?\d+\s*$/.test(k)) throw new RangeError(`invalid literal for int() with base 10: ${pyRepr(k)} (id2label keys must be integers)`);
    if (typeof v !== 'string') throw new TypeError(`Expected a string label for id2label[${k}] but received ${describe(v)}`);
    out[String(Number(k))] = v;
  }
  return out;
}

function sameRecord(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function pyType(v: unknown): string {
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (v === null || v === undefined) return 'NoneType';
  return Array.isArray(v) ? 'list' : 'dict';
}

/** Python's repr() of a JSON value (lists as [..], strings quoted as Python quotes them). */
function pyRepr(v: unknown): string {
  if (typeof v === 'string') {
    if (v.includes("'") && !v.includes('"')) return `"${v.replace(/\\/g, '\\\\')}"`;
    return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  }
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'number') return pyNumber(v).replace('Infinity', 'inf').replace('NaN', 'nan');
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(v as object).map(([k, x]) => `${/^-?\d+$/.test(k) ? k : pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
}

function pyTuple(v: readonly unknown[]): string {
  return v.length === 1 ? `(${pyRepr(v[0])},)` : `(${v.map(pyRepr).join(', ')})`;
}

/** A number as Python's json writes it (repr: exponent form below 1e-4 and from 1e16, e.g. 1e-05). */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n);
  const [mant, e] = n.toExponential().split('e');
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function pyString(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** json.dumps(v, indent=2, sort_keys=True); at the top level id2label's keys sort as the ints they are in Python. */
function pyJson(v: unknown, indent: string, top = false, numericKeys = false): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return pyString(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => inner + pyJson(x, inner)).join(',\n')}\n${indent}]` : '[]';
  const keys = Object.keys(v as object);
  if (!keys.length) return '{}';
  keys.sort(numericKeys ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const obj = v as Record<string, unknown>;
  return `{\n${keys.map((k) => `${inner}${pyString(k)}: ${pyJson(obj[k], inner, false, top && k === 'id2label')}`).join(',\n')}\n${indent}}`;
}
