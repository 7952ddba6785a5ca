// Optimizer: the base of SGD and AdamW, as torch.optim.Optimizer (PyTorch 1.13).
//
// Parameters live in groups; each group is a plain object holding its options under PyTorch's keys (lr, momentum,
// weight_decay, betas, ...), because those keys are what a checkpoint's optimizer_state_dict carries and what an
// LR scheduler edits (it sets group.lr, adds initial_lr, ...). Constructor options are camelCase (weightDecay) and
// are stored under the PyTorch key (weight_decay); a group passed by the caller may use either spelling.
//
// stateDict() has PyTorch's layout exactly:
//   { state: Map(index -> { momentum_buffer | step, exp_avg, exp_avg_sq, ... }),
//     param_groups: [{ lr, momentum, ..., params: [0, 1, ...] }, ...] }
// where a parameter's index is its position across all groups in order. `state` is a Map with integer keys so the
// .pth writer pickles them as ints, as torch.save does. Tuples (AdamW's betas) are plain arrays here: the .pth
// writer then stores a list, which torch's optimizers accept as well as a tuple.
//
// Updates are in place on the parameter's storage and bump its version (the native backend re-packs weights whose
// version changed). A parameter whose grad is null is skipped, as in PyTorch; so is a frozen one (requiresGrad
// false) even if it holds a stale grad (PyTorch would update it).

import { isFloat, type FloatStorage } from '../tensor/dtype.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** A value in a group's options or a parameter's state, as it appears in a state dict. */
export type GroupValue = number | boolean | null | string | readonly number[];

/** One parameter group: its parameters plus options under PyTorch's keys. */
export interface ParamGroup {
  params: Tensor[];
  lr: number;
  [option: string]: unknown;
}

/** What a caller passes for a group: params plus any options (camelCase or PyTorch's snake_case keys). */
export interface ParamGroupInput {
  params: Iterable<Tensor>;
  [option: string]: unknown;
}

/** Per-parameter state: tensors (momentum_buffer, exp_avg, ...) or null (SGD without momentum stores None). */
export type ParamState = Record<string, Tensor | null>;

export interface OptimizerStateDict {
  state: Map<number, ParamState>;
  param_groups: Record<string, unknown>[];
}

/** camelCase option -> PyTorch group key. */
const SNAKE: Record<string, string> = { weightDecay: 'weight_decay' };

export function toGroupKey(k: string): string {
  return SNAKE[k] ?? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export abstract class Optimizer {
  /** The optimizer's defaults under PyTorch's keys, in PyTorch's order. */
  readonly defaults: Record<string, unknown>;
  readonly paramGroups: ParamGroup[] = [];
  /** Per-parameter state, in the order parameters first got one (as PyTorch's defaultdict). */
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, defaults: Record<string, unknown>) {
    this.defaults = defaults;
    const list = [...(params as Iterable<Tensor | ParamGroupInput>)];
    if (list.length === 0) throw new RangeError(`${this.constructor.name} got an empty parameter list`);
    if (list.every((p) => p instanceof Tensor)) this.addParamGroup({ params: list as Tensor[] });
    else if (list.every((p) => !(p instanceof Tensor) && typeof p === 'object' && p !== null && 'params' in p)) {
      for (const g of list as ParamGroupInput[]) this.addParamGroup(g);
    } else {
      throw new TypeError(`Expected an iterable of Tensors or of parameter groups ({ params, ...options }) for params of ${this.constructor.name}`);
    }
  }

  /** Add a group (e.g. a head trained with a larger lr); options it does not set come from the defaults. */
  addParamGroup(group: ParamGroupInput): void {
    if (group.params instanceof Tensor) throw new TypeError('Expected an iterable of Tensors for a group\'s params but received a single Tensor; wrap it in an array');
    const params = [...group.params];
    for (const [i, p] of params.entries()) {
      if (!(p instanceof Tensor)) throw new TypeError(`Expected a Tensor for params[${i}] of a parameter group but received ${String(p)} of type ${typeof p}`);
      if (!isFloat(p.dtype)) throw new TypeError(`can only optimize floating point tensors, but params[${i}] is ${p.dtype}`);
      if (!p.isContiguous()) throw new TypeError(`can only optimize contiguous tensors, but params[${i}] of shape ${fmtShape(p.shape)} is not`);
    }
    if (new Set(params).size !== params.length) throw new RangeError('a parameter group has duplicate parameters');
    const g: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(group)) if (k !== 'params') g[toGroupKey(k)] = v;
    for (const [k, v] of Object.entries(this.defaults)) {
      if (!(k in g)) {
        if (v === undefined) throw new TypeError(`parameter group didn't specify a value of required optimization parameter ${k}`);
        g[k] = v;
      }
    }
    for (const other of this.paramGroups) {
      if (other.params.some((p) => params.includes(p))) throw new RangeError('some parameters appear in more than one parameter group');
    }
    this.validateGroup(g);
    g.params = params;
    this.paramGroups.push(g as ParamGroup);
  }

  /** Check a group's options (ranges, combinations); throws naming the option. */
  protected abstract validateGroup(g: Record<string, unknown>): void;

  /** One update of every parameter that has a gradient. */
  abstract step(): void;

  /** Clear gradients: drop them (default, PyTorch >= 2.0's default) or fill them with zeros. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (p.grad === null) continue;
        if (setToNone) p.grad = null;
        else {
          p.grad.gradFn = null;
          p.grad.requiresGrad = false;
          p.grad.fill_(0);
        }
      }
    }
  }

  /** PyTorch's layout: state by parameter index, groups with `params` as index lists. Tensors are shared, not copied. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const groups = this.paramGroups.map((g) => {
      const packed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[k] = Array.isArray(v) ? [...v] : v;
      packed.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return packed;
    });
    const state = new Map<number, ParamState>();
    for (const [p, s] of this.state) state.set(index.get(p)!, { ...s });
    return { state, param_groups: groups };
  }

  /**
   * Load a state dict from stateDict() or from torch (a .pth read with readPthSync: Maps, arrays, Tensors).
   * Group options are replaced by the saved ones (params stay ours); state tensors are copied (cast to the
   * parameter's dtype, except `step`) so later steps never write into the file's buffer.
   */
  loadStateDict(sd: unknown): void {
    const what = `${this.constructor.name}.loadStateDict`;
    const top = asRecord(sd, `${what}: the state dict`);
    const saved = top.get('param_groups');
    const stateIn = top.get('state');
    if (!Array.isArray(saved)) throw new TypeError(`${what}: expected a list for param_groups but received ${describe(saved)}`);
    if (saved.length !== this.paramGroups.length) throw new RangeError(`${what}: loaded state dict has ${saved.length} parameter groups but this optimizer has ${this.paramGroups.length}`);
    const idMap = new Map<number, Tensor>();
    const groups = saved.map((raw, gi) => {
      const g = asRecord(raw, `${what}: param_groups[${gi}]`);
      const ids = g.get('params');
      const mine = this.paramGroups[gi].params;
      if (!Array.isArray(ids) || ids.length !== mine.length) {
        throw new RangeError(`${what}: param_groups[${gi}] has ${Array.isArray(ids) ? ids.length : describe(ids)} params but this optimizer's group has ${mine.length}`);
      }
      ids.forEach((id, i) => idMap.set(Number(id), mine[i]));
      const opts: Record<string, unknown> = {};
      for (const [k, v] of g) if (k !== 'params') opts[String(k)] = v;
      // options an older torch did not save (maximize, foreach, ...) take the defaults, as torch's __setstate__ does
      for (const [k, v] of Object.entries(this.defaults)) if (!(k in opts) && v !== undefined) opts[k] = v;
      try {
        this.validateGroup(opts);
      } catch (err) {
        throw new RangeError(`${what}: param_groups[${gi}]: ${(err as Error).message}`, { cause: err });
      }
      return opts;
    });
    const state = new Map<Tensor, ParamState>();
    for (const [k, v] of asRecord(stateIn ?? new Map(), `${what}: state`)) {
      const p = idMap.get(Number(k));
      if (!p) throw new RangeError(`${what}: state has an entry for parameter ${k}, which no parameter group lists`);
      const s: ParamState = {};
      for (const [name, t] of asRecord(v, `${what}: state[${k}]`)) s[String(name)] = this.castState(p, String(name), t, `${what}: state[${k}].${String(name)}`);
      state.set(p, s);
    }
    // only now that everything validated: replace
    groups.forEach((opts, gi) => {
      const params = this.paramGroups[gi].params;
      for (const k of Object.keys(this.paramGroups[gi])) delete this.paramGroups[gi][k];
      Object.assign(this.paramGroups[gi], opts, { params });
    });
    this.state.clear();
    for (const [p, s] of state) this.state.set(p, s);
  }

  /** A loaded state value as we hold it; subclasses turn a plain-number step into a tensor. */
  protected castState(p: Tensor, name: string, v: unknown, where: string): Tensor | null {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number' && name === 'step') return new Tensor(new Float32Array([v]), []);
    if (!(v instanceof Tensor)) throw new TypeError(`Expected a Tensor or None for ${where} but received ${describe(v)}`);
    if (name === 'step') return v.clone();
    if (!shapeEq(v.shape, p.shape)) throw new RangeError(`Expected shape ${fmtShape(p.shape)} for ${where} (its parameter's) but received ${fmtShape(v.shape)}`);
    return v.to(p.dtype).clone();
  }
}

/** The storage slice of a contiguous float tensor (parameters and state are contiguous). */
export function floatView(t: Tensor): FloatStorage {
  return (t.offset === 0 && t.data.length === t.numel ? t.data : t.data.subarray(t.offset, t.offset + t.numel)) as FloatStorage;
}

/** A parameter's gradient as a contiguous float array of its size, or null when there is nothing to do. */
export function gradOf(p: Tensor): FloatStorage | null {
  if (p.grad === null || !p.requiresGrad) return null;
  if (!shapeEq(p.grad.shape, p.shape)) throw new RangeError(`gradient of shape ${fmtShape(p.grad.shape)} does not match its parameter's shape ${fmtShape(p.shape)}`);
  const g = p.grad.dtype === p.dtype ? p.grad : p.grad.to(p.dtype);
  return g.contiguousData() as FloatStorage;
}

export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'a Map';
  if (Array.isArray(v)) return 'a list';
  return `${String(v)} of type ${typeof v}`;
}

/** A Map or plain object as a Map (torch's dicts arrive from the .pth reader as Maps). */
function asRecord(v: unknown, where: string): Map<unknown, unknown> {
  if (v instanceof Map) return v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Tensor)) return new Map(Object.entries(v));
  throw new TypeError(`Expected a dict for ${where} but received ${describe(v)}`);
}

/** A number option, checked. */
export function num(g: Record<string, unknown>, key: string, min = -Infinity, max = Infinity, maxOpen = false): number {
  const v = g[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (maxOpen ? v >= max : v > max)) {
    const range = `${min === -Infinity ? '' : `>= ${min}`}${max === Infinity ? '' : `${min === -Infinity ? '' : ' and '}${maxOpen ? '<' : '<='} ${max}`}`;
    throw new RangeError(`Invalid ${key} value: expected a number${range ? ` ${range}` : ''} but received ${String(v)} of type ${typeof v}`);
  }
  return v;
}

export function bool(g: Record<string, unknown>, key: string): boolean {
  const v = g[key];
  if (typeof v !== 'boolean') throw new TypeError(`Expected a boolean for ${key} but received ${String(v)} of type ${typeof v}`);
  return v;
}
