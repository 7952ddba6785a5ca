// resnet inspect: what a weights file or a Hugging Face model folder holds, without building a model: the format,
// a checkpoint dict's other entries (epoch, optimizer_state_dict, ... summarised), every tensor with its shape,
// stored dtype and element count, totals, safetensors' __metadata__, config.json's fields for folders, and the
// architecture the keys and shapes fit. --json prints the same as one JSON object.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { isPyTuple } from '../io/pickle.js';
import { type CheckpointFile, isParameterKey, readCheckpointFile, storedItemSize } from '../models/checkpoint.js';
import { locatePretrainedDir, readPretrainedStateDict } from '../models/pretrained.js';
import { ResNetConfig } from '../models/hf-config.js';
import { torchvisionArchForHF } from '../models/convert.js';
import { type HFGuess, type TorchvisionGuess, guessArchitecture } from '../models/arch-guess.js';
import { type Command, UsageError, parse } from './args.js';

const usage = `Usage: resnet inspect FILE|DIR [--json]

Lists what a checkpoint holds: its format, the other entries of a checkpoint dict (epoch, optimizer_state_dict, ...),
every tensor (key, shape, stored dtype, elements), totals, safetensors metadata, an HF folder's config.json, and the
architecture the weights fit. FILE is a .pth/.pt/.bin or .safetensors file (told apart by content), DIR a Hugging
Face model folder (config.json and model.safetensors / pytorch_model.bin, or their shards).`;

/** A JSON-friendly summary of a non-tensor value of a checkpoint dict (containers to three levels). */
export type Summary =
  | { type: 'number' | 'string' | 'boolean' | 'None'; value: number | string | boolean | null }
  | { type: 'tensor'; shape: number[]; dtype: string }
  | { type: 'state_dict'; tensors: number }
  | { type: 'dict'; size: number; items?: Record<string, Summary> }
  | { type: 'list' | 'tuple'; length: number; items?: Summary[] }
  | { type: 'other'; value: string };

export function summarize(v: unknown, depth = 0): Summary {
  if (v === null || v === undefined) return { type: 'None', value: null };
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return { type: typeof v as 'number' | 'string' | 'boolean', value: v };
  if (typeof v === 'bigint') return { type: 'number', value: Number(v) };
  if (v instanceof Tensor) return { type: 'tensor', shape: [...v.shape], dtype: v.dtype };
  if (Array.isArray(v)) {
    const list = { type: isPyTuple(v) ? 'tuple' as const : 'list' as const, length: v.length };
    return depth < 3 && v.length <= 8 ? { ...list, items: v.map((x) => summarize(x, depth + 1)) } : list;
  }
  if (v instanceof Map) {
    if (v.size > 0 && [...v.values()].every((x) => x instanceof Tensor)) return { type: 'state_dict', tensors: v.size };
    const d = { type: 'dict' as const, size: v.size };
    return depth < 3 && v.size <= 16 ? { ...d, items: Object.fromEntries([...v].map(([k, x]) => [String(k), summarize(x, depth + 1)])) } : d;
  }
  return { type: 'other', value: Object.prototype.toString.call(v) };
}

function show(s: Summary): string {
  switch (s.type) {
    case 'None': return 'None';
    case 'string': return JSON.stringify(s.value);
    case 'number': case 'boolean': return String(s.value);
    case 'tensor': return `tensor [${s.shape.join(', ')}] ${s.dtype}`;
    case 'state_dict': return `state dict of ${s.tensors} tensors`;
    case 'dict': return `dict of ${s.size}${s.items ? `: {${Object.entries(s.items).map(([k, x]) => `${k}: ${show(x)}`).join(', ')}}` : ''}`;
    case 'list': case 'tuple': return `${s.type} of ${s.length}${s.items ? ` [${s.items.map(show).join(', ')}]` : ''}`;
    default: return s.value;
  }
}

interface TensorRow { key: string; shape: number[]; dtype: string; numel: number }

export interface InspectReport {
  path: string;
  kind: 'safetensors' | 'pth' | 'hf-folder';
  /** torch.save's container (zip or legacy), null otherwise. */
  container: 'zip' | 'legacy' | null;
  /** Bytes on disk (the weight files and config.json for a folder). */
  size: number;
  /** A checkpoint dict's entries (the state dict's own entry summarised as a state dict); null for bare state dicts. */
  topLevel: Record<string, Summary> | null;
  stateDictKey: string | null;
  strippedModulePrefix: boolean;
  metadata: Record<string, string> | null;
  /** HF folders: config.json as written, the weight files (shards in order) and the index. */
  config: Record<string, unknown> | null;
  files: string[] | null;
  index: string | null;
  tensors: TensorRow[];
  totals: { tensors: number; numel: number; params: number; bytes: number };
  /** What the keys and shapes fit; for folders also what config.json says. */
  architecture: TorchvisionGuess | HFGuess | null;
  torchvisionEquivalent: { arch: string | null; numClasses: number } | { error: string } | null;
}

function rows(sd: Map<string, Tensor>, dtypes: Map<string, string>): { tensors: TensorRow[]; totals: InspectReport['totals'] } {
  const tensors = [...sd].map(([key, t]) => ({ key, shape: [...t.shape], dtype: dtypes.get(key) ?? t.dtype, numel: t.numel }));
  const totals = { tensors: tensors.length, numel: 0, params: 0, bytes: 0 };
  for (const r of tensors) {
    totals.numel += r.numel;
    if (isParameterKey(r.key)) totals.params += r.numel;
    totals.bytes += r.numel * storedItemSize(r.dtype);
  }
  return { tensors, totals };
}

function inspectFile(path: string): InspectReport {
  const c = readCheckpointFile(path);
  const top = c.object instanceof Map && c.stateDictKey !== null ? Object.fromEntries([...c.object].map(([k, v]) => [String(k), summarize(v)])) : null;
  return {
    path, kind: c.format, container: c.container, size: c.size, topLevel: top, stateDictKey: c.stateDictKey,
    strippedModulePrefix: c.strippedModulePrefix, metadata: c.metadata, config: null, files: null, index: null,
    ...rows(c.stateDict, c.dtypes), architecture: guessArchitecture(c.stateDict), torchvisionEquivalent: null,
  };
}

function inspectFolder(dir: string): InspectReport {
  const f = locatePretrainedDir(dir);
  const dtypes = new Map<string, string>();
  let metadata: Record<string, string> | null = null;
  let size = statSync(f.config).size + (f.index ? statSync(f.index).size : 0);
  const sd = readPretrainedStateDict(f, (c: CheckpointFile) => {
    for (const [k, d] of c.dtypes) dtypes.set(k, d);
    metadata ??= c.metadata;
    size += c.size;
  });
  const config = JSON.parse(readFileSync(f.config, 'utf8')) as Record<string, unknown>;
  let equivalent: InspectReport['torchvisionEquivalent'];
  try {
    const tv = torchvisionArchForHF(ResNetConfig.fromJSONFile(f.config));
    equivalent = { arch: tv.arch, numClasses: tv.numClasses };
  } catch (e) {
    equivalent = { error: (e as Error).message };
  }
  return {
    path: dir, kind: 'hf-folder', container: null, size, topLevel: null, stateDictKey: null, strippedModulePrefix: false, metadata,
    config, files: f.files.map((p) => basename(p)), index: f.index && basename(f.index),
    ...rows(sd, dtypes), architecture: guessArchitecture(sd), torchvisionEquivalent: equivalent,
  };
}

export function inspect(path: string): InspectReport {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  return statSync(path).isDirectory() ? inspectFolder(path) : inspectFile(path);
}

const mb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const num = (n: number) => n.toLocaleString('en-US');

function describeArch(r: InspectReport): string[] {
  const out: string[] = [];
  const a = r.architecture;
  if (a?.family === 'torchvision') {
    const shape = `${a.block} blocks [${a.layers.join(', ')}]${a.groups !== 1 || a.widthPerGroup !== 64 ? `, groups ${a.groups}, width_per_group ${a.widthPerGroup}` : ''}`;
    out.push(`architecture: torchvision ${a.arch ?? `ResNet (no builder: ${shape})`}, ${a.numClasses === null ? 'no fc' : `num_classes ${a.numClasses}`}`);
  } else if (a?.family === 'hf') {
    const c = a.config;
    out.push(`architecture: transformers ${a.className} keys: ${c.layer_type}, depths [${c.depths.join(', ')}], hidden_sizes [${c.hidden_sizes.join(', ')}], embedding_size ${c.embedding_size}, num_channels ${c.num_channels}${c.num_labels === null ? '' : `, num_labels ${c.num_labels}`}` +
      (a.torchvision ? ` (the shape of torchvision's ${a.torchvision})` : ''));
  } else {
    out.push('architecture: the keys fit neither torchvision\'s nor transformers\' ResNet');
  }
  const e = r.torchvisionEquivalent;
  if (e) out.push('error' in e ? `torchvision equivalent: none (${e.error})` : `torchvision equivalent: ${e.arch ?? 'a ResNet no builder makes'}, num_classes ${e.numClasses}`);
  return out;
}

function text(r: InspectReport): string {
  const lines: string[] = [];
  const kind = r.kind === 'hf-folder' ? 'Hugging Face model folder' : r.kind === 'pth' ? `torch.save checkpoint (${r.container})` : 'safetensors file';
  lines.push(`${r.path}: ${kind}, ${mb(r.size)}`);
  if (r.kind === 'hf-folder') {
    lines.push(`weights: ${r.index ? `${r.index} -> ${r.files!.length} shards: ${r.files!.join(', ')}` : r.files![0]}`);
    const c = r.config!;
    const fields = ['architectures', 'model_type', 'layer_type', 'depths', 'hidden_sizes', 'embedding_size', 'num_channels', 'hidden_act',
      'downsample_in_first_stage', 'downsample_in_bottleneck', 'out_features', 'torch_dtype', 'transformers_version'];
    lines.push('config.json:');
    for (const k of fields) if (k in c) lines.push(`  ${k.padEnd(26)} ${JSON.stringify(c[k])}`);
    const labels = c.id2label && typeof c.id2label === 'object' ? Object.values(c.id2label as object) : null;
    if (labels) lines.push(`  ${'id2label'.padEnd(26)} ${labels.length} labels: ${labels.slice(0, 10).join(', ')}${labels.length > 10 ? ', ...' : ''}`);
  }
  if (r.metadata) {
    lines.push('metadata:');
    for (const [k, m] of Object.entries(r.metadata)) lines.push(`  ${k}: ${m.length > 120 ? `${JSON.stringify(m.slice(0, 117))}... (${m.length} characters)` : JSON.stringify(m)}`);
  }
  if (r.topLevel) {
    const w = Math.max(...Object.keys(r.topLevel).map((k) => k.length));
    lines.push(`checkpoint dict with ${Object.keys(r.topLevel).length} keys:`);
    for (const [k, s] of Object.entries(r.topLevel)) lines.push(`  ${k.padEnd(w)}  ${show(s)}${k === r.stateDictKey ? '  (the state dict, below)' : ''}`);
  }
  lines.push(`tensors${r.stateDictKey ? ` (${r.stateDictKey})` : ''}${r.strippedModulePrefix ? ', DataParallel "module." prefix removed' : ''}:`);
  const kw = Math.max(3, ...r.tensors.map((t) => t.key.length));
  const sw = Math.max(5, ...r.tensors.map((t) => `[${t.shape.join(', ')}]`.length));
  lines.push(`  ${'key'.padEnd(kw)}  ${'shape'.padEnd(sw)}  ${'dtype'.padEnd(8)}  numel`);
  for (const t of r.tensors) lines.push(`  ${t.key.padEnd(kw)}  ${`[${t.shape.join(', ')}]`.padEnd(sw)}  ${t.dtype.padEnd(8)}  ${t.numel}`);
  const tt = r.totals;
  lines.push(`total: ${num(tt.tensors)} tensors, ${num(tt.params)} parameters, ${num(tt.numel)} elements with buffers, ${mb(tt.bytes)} of tensor data`);
  lines.push(...describeArch(r));
  return lines.join('\n');
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { json: { type: 'boolean' } }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one FILE or DIR, got ${positionals.length}`, usage);
  const r = inspect(positionals[0]);
  console.log(v.json ? JSON.stringify(r, null, 1) : text(r));
  return 0;
}

export const inspectCommand: Command = { name: 'inspect', summary: 'what a checkpoint file or HF model folder holds (keys, shapes, dtypes, metadata)', usage, run };
