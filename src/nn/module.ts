// Module, Parameter and state dicts, as torch.nn.Module.
//
// Registration is by assignment, as in PyTorch: an own property holding a Module is a child, one holding a
// Parameter is a parameter, and tensors registered with registerBuffer() are buffers. Order is the order the
// properties were first assigned, so `model.fc = new Linear(512, 2)` (the tutorial's head swap) keeps `fc` where
// it was. state_dict keys are built from property names exactly as PyTorch builds them from attribute names.

import { Tensor } from '../tensor/tensor.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';

export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    const c = t.isContiguous() ? t : t.contiguous();
    super(c.data, c.shape, { dtype: c.dtype, offset: c.offset, version: c._version });
    this.requiresGrad = requiresGrad;
  }
}

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Keys present on both sides with different shapes (never loaded). */
  mismatchedKeys: { key: string; expected: number[]; got: number[] }[];
}

export class StateDictError extends Error {
  constructor(readonly owner: string, readonly result: LoadResult) {
    const lines: string[] = [];
    if (result.missingKeys.length) lines.push(`\tMissing key(s) in state_dict: ${result.missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (result.unexpectedKeys.length) lines.push(`\tUnexpected key(s) in state_dict: ${result.unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const m of result.mismatchedKeys) {
      lines.push(`\tsize mismatch for ${m.key}: copying a param with shape ${fmtShape(m.got)} from checkpoint, the shape in current model is ${fmtShape(m.expected)}.`);
    }
    super(`Error(s) in loading state_dict for ${owner}:\n${lines.join('\n')}`);
    this.name = 'StateDictError';
  }
}

export class Module {
  training = true;
  readonly #buffers = new Set<string>();
  readonly #nonPersistent = new Set<string>();

  /** Override in subclasses. */
  forward(..._args: unknown[]): unknown {
    throw new Error(`${this.constructor.name} has no forward()`);
  }

  /** Register a buffer (a tensor that is state but not a parameter, e.g. running_mean). */
  registerBuffer(name: string, t: Tensor | null, persistent = true): void {
    if (t !== null && !(t instanceof Tensor)) throw new TypeError(`Expected a Tensor or null for buffer ${name}`);
    this.#buffers.add(name);
    if (!persistent) this.#nonPersistent.add(name);
    (this as unknown as Record<string, unknown>)[name] = t;
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return Object.entries(this).filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  children(): Module[] {
    return this.namedChildren().map((e) => e[1]);
  }

  /** This module and all descendants, depth first, each once. */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [n, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${n}` : n, seen);
  }

  modules(): Module[] {
    return [...this.namedModules()].map((e) => e[1]);
  }

  /** Own parameters (not recursing). */
  ownParameters(): [string, Parameter][] {
    return Object.entries(this).filter((e): e is [string, Parameter] => e[1] instanceof Parameter);
  }

  ownBuffers(persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (this.#buffers.has(k) && v instanceof Tensor && !(persistentOnly && this.#nonPersistent.has(k))) out.push([k, v]);
    }
    return out;
  }

  /** All parameters with dotted names; a parameter shared by several modules is listed once, as in PyTorch. */
  namedParameters(): [string, Parameter][] {
    const seen = new Set<Tensor>();
    const out: [string, Parameter][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, p] of m.ownParameters()) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${n}` : n, p]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map((e) => e[1]);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) for (const [n, b] of m.ownBuffers()) out.push([prefix ? `${prefix}.${n}` : n, b]);
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map((e) => e[1]);
  }

  /** Number of parameter elements (trainable only if asked). */
  numParameters(trainableOnly = false): number {
    return this.parameters().reduce((s, p) => s + (!trainableOnly || p.requiresGrad ? p.numel : 0), 0);
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Call fn on every submodule (children first) and then this one, as torch's Module.apply. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Parameters and persistent buffers by dotted name, in PyTorch's order (own params, own buffers, children). */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    const visit = (m: Module, prefix: string) => {
      for (const [n, p] of m.ownParameters()) out.set(prefix + n, p);
      for (const [n, b] of m.ownBuffers(true)) out.set(prefix + n, b);
      for (const [n, c] of m.namedChildren()) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return out;
  }

  /**
   * Copy tensors from `sd` into this module's parameters and buffers (in place, converting dtype). With strict
   * (the default) any missing, unexpected or shape-mismatched key is an error listing all of them and nothing is
   * loaded; with strict: false the matching keys load and the rest is reported in the result.
   */
  loadStateDict(sd: StateDict | Record<string, Tensor>, o: { strict?: boolean } = {}): LoadResult {
    const strict = o.strict ?? true;
    const src: Map<string, Tensor> = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const res: LoadResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
    const todo: [Tensor, Tensor][] = [];
    for (const [k, t] of own) {
      const v = src.get(k);
      if (v === undefined) res.missingKeys.push(k);
      else if (!(v instanceof Tensor)) throw new TypeError(`state_dict entry "${k}" is not a Tensor (got ${typeof v})`);
      else if (!shapeEq(v.shape, t.shape)) res.mismatchedKeys.push({ key: k, expected: [...t.shape], got: [...v.shape] });
      else todo.push([t, v]);
    }
    for (const k of src.keys()) if (!own.has(k)) res.unexpectedKeys.push(k);
    const bad = res.missingKeys.length + res.unexpectedKeys.length + res.mismatchedKeys.length;
    if (strict && bad) throw new StateDictError(this.constructor.name, res);
    for (const [t, v] of todo) t.copy_(v);
    return res;
  }

  /** One line per module, indented, as PyTorch's repr. */
  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const body = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`).join('\n');
    return `${head}\n${body}\n)`;
  }

  extraRepr(): string {
    return '';
  }
}
