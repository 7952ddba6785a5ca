// What one weights file holds, told apart by content (not by extension): safetensors (an 8-byte header length, then
// a JSON header starting with '{') or a torch.save checkpoint (a zip archive "PK..." or a legacy pickle 0x80...).
// Gives the state dict (from a plain state dict or a checkpoint dict such as the tutorial's
// {epoch, model_state_dict, optimizer_state_dict}; a DataParallel `module.` prefix removed), each tensor's dtype as
// stored, safetensors' __metadata__, and for torch.save files the whole unpickled object, so `resnet inspect` can
// show the rest. Parsing is io/'s (safetensors.ts, pth.ts); this file only puts the answers together.

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import { looksLikeSafetensors, readSafetensorsSync } from '../io/safetensors.js';
import { STATE_DICT_KEYS, extractStateDict, readPthSync } from '../io/pth.js';

export type WeightsFormat = 'safetensors' | 'pth';

export interface CheckpointFile {
  path: string;
  /** File size in bytes. */
  size: number;
  format: WeightsFormat;
  /** torch.save's container: the zip format (torch >= 1.6) or the legacy pickle stream. */
  container: 'zip' | 'legacy' | null;
  stateDict: Map<string, Tensor>;
  /** Each tensor's dtype as the file stores it, in torch's names (float32, float16, bfloat16, int64, ...). */
  dtypes: Map<string, string>;
  /** safetensors' __metadata__ (null when absent, and for torch.save files). */
  metadata: Record<string, string> | null;
  /** torch.save files: the unpickled object (a checkpoint dict, or the state dict itself). */
  object: unknown;
  /** The checkpoint-dict key the state dict came from ('model_state_dict', 'state_dict', ...), null if top level. */
  stateDictKey: string | null;
  /** Every key had DataParallel's `module.` prefix, which was removed. */
  strippedModulePrefix: boolean;
}

const SAFETENSORS_DTYPES: Readonly<Record<string, string>> = {
  F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** The format of a weights file from its first bytes; an error naming the file when it is neither. */
export function sniffWeightsFormat(path: string): WeightsFormat {
  const head = Buffer.alloc(9);
  let n: number;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, 9, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new Error(`cannot read weights file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (n === 9 && looksLikeSafetensors(head)) return 'safetensors';
  // anything else goes to the .pth reader, whose error says what it found (and names tar / TorchScript files)
  return 'pth';
}

/** Read a weights file of either format (whole, into memory). */
export function readCheckpointFile(path: string): CheckpointFile {
  const format = sniffWeightsFormat(path);
  const size = statSync(path).size;
  if (format === 'safetensors') {
    const f = readSafetensorsSync(path);
    const dtypes = new Map([...f.dtypes].map(([k, d]) => [k, SAFETENSORS_DTYPES[d] ?? d]));
    return { path, size, format, container: null, stateDict: f.tensors, dtypes, metadata: f.metadata, object: undefined, stateDictKey: null, strippedModulePrefix: false };
  }
  const p = readPthSync(path);
  const sd = extractStateDict(p.object, path);
  const first = sd.values().next().value as Tensor;
  let stateDictKey: string | null = null;
  const top = p.object instanceof Map ? p.object : null;
  if (top && ![...top.values()].includes(first)) {
    stateDictKey = STATE_DICT_KEYS.find((k) => {
      const v = top.get(k);
      return v instanceof Map && [...v.values()].includes(first);
    }) ?? null;
  }
  const dtypes = new Map([...sd].map(([k, t]) => [k, p.dtypes.get(t) ?? t.dtype]));
  const original = stateDictKey === null ? top : (top!.get(stateDictKey) as Map<unknown, unknown>);
  const strippedModulePrefix = !!original && !original.has([...sd.keys()][0]);
  return { path, size, format, container: p.format, stateDict: sd, dtypes, metadata: null, object: p.object, stateDictKey, strippedModulePrefix };
}

/** A file's state dict only (the tensors; see readCheckpointFile for the rest). */
export function readStateDictFile(path: string): Map<string, Tensor> {
  return readCheckpointFile(path).stateDict;
}

/** Bytes per element of a dtype as stored (torch names). */
export function storedItemSize(dtype: string): number {
  const sizes: Record<string, number> = { float64: 8, int64: 8, float32: 4, int32: 4, float16: 2, bfloat16: 2, int16: 2, int8: 1, uint8: 1, bool: 1 };
  const s = sizes[dtype];
  if (s === undefined) throw new RangeError(`Expected a torch dtype name for dtype but received ${dtype}`);
  return s;
}

/** True for the tensors torch counts as parameters in a ResNet state dict (not BatchNorm's running statistics). */
export function isParameterKey(key: string): boolean {
  return !/(^|\.)(running_mean|running_var|num_batches_tracked)$/.test(key);
}
