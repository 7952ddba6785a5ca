// Module, Parameter and state dicts, as torch.nn.Module.
//
// Registration is by assignment, as in PyTorch: an own property holding a Module is a child, one holding a
// Parameter is a parameter, and tensors registered with registerBuffer() are buffers. Order is the order the
// properties were first assigned, so `model.fc = new Linear(512, 2)` (the tutorial's head swap) keeps `fc` where
// it was. state_dict keys are built from property names exactly as PyTorch builds them from attribute names.

import { Tensor } from '../tensor/tensor.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { noGrad } from '../tensor/autograd.js';

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

/** Called after forward with its arguments and result; a return value other than undefined replaces the result. */
export type ForwardHook = (module: Module, inputs: unknown[], output: unknown) => unknown;
/** Called before forward; a return value other than undefined replaces the arguments (an array as is, else [value]). */
export type ForwardPreHook = (module: Module, inputs: unknown[]) => unknown;

/** What registerForwardHook / registerForwardPreHook return (PyTorch's RemovableHandle). */
export interface RemovableHandle {
  readonly id: number;
  remove(): void;
}

export interface HookOptions {
  /** Run before the hooks already registered (PyTorch's prepend=True). */
  prepend?: boolean;
}

interface HookState {
  pre: Map<number, ForwardPreHook>;
  post: Map<number, ForwardHook>;
  /** The instance's own forward property before the hooks wrapped it (a user's patch), if there was one. */
  saved: PropertyDescriptor | undefined;
}

let nextHookId = 0;

/**
 * True when `m.forward` is set on the instance: forward hooks are installed (their wrapper), or a caller patched it.
 * Code that would skip calling m.forward for speed (nn/fused.ts folding BN into the conv, the torchvision forward's
 * recycling) must call it when this is true, so hooks see every call and patches take effect.
 */
export function hasInstanceForward(m: Module): boolean {
  return Object.prototype.hasOwnProperty.call(m, 'forward');
}

export class Module {
  training = true;
  readonly #buffers = new Set<string>();
  readonly #nonPersistent = new Set<string>();
  #hooks: HookState | null = null;

  /** Override in subclasses. */
  forward(..._args: unknown[]): unknown {
    throw new Error(`${this.constructor.name} has no forward()`);
  }

  /**
   * PyTorch's register_forward_hook: fn(module, inputs, output) runs after every forward() of this module (as called
   * by its parent, `child.forward(x)`). While a module has hooks, its forward is a wrapper set on the instance (no
   * cost for modules without hooks), and the fused inference paths call it instead of folding it away.
   */
  registerForwardHook(fn: ForwardHook, o: HookOptions = {}): RemovableHandle {
    return this.#addHook('post', fn, o);
  }

  /** PyTorch's register_forward_pre_hook: fn(module, inputs) runs before every forward() and may replace the inputs. */
  registerForwardPreHook(fn: ForwardPreHook, o: HookOptions = {}): RemovableHandle {
    return this.#addHook('pre', fn, o);
  }

  /** Whether any forward or pre-forward hook is registered on this module (not its children). */
  hasHooks(): boolean {
    return this.#hooks !== null;
  }

  #addHook(kind: 'pre' | 'post', fn: ForwardHook | ForwardPreHook, o: HookOptions): RemovableHandle {
    if (typeof fn !== 'function') throw new TypeError(`Expected a function for the forward ${kind === 'pre' ? 'pre-' : ''}hook but received ${typeof fn}`);
    const st = this.#hooks ?? this.#installHooks();
    const map = st[kind] as Map<number, typeof fn>;
    const id = nextHookId++;
    if (o.prepend) {
      const rest = [...map];
      map.clear();
      map.set(id, fn);
      for (const [k, v] of rest) map.set(k, v);
    } else map.set(id, fn);
    return { id, remove: () => this.#removeHook(st, id) };
  }

  /** Wrap the instance's forward: pre-hooks, the original forward, hooks. Hooks added or removed during a call apply from the next call. */
  #installHooks(): HookState {
    const saved = Object.getOwnPropertyDescriptor(this, 'forward');
    const st: HookState = { pre: new Map(), post: new Map(), saved };
    const inner = (saved ? saved.value : Object.getPrototypeOf(this).forward) as (...a: unknown[]) => unknown;
    const self = this;
    const forward = function hookedForward(...args: unknown[]): unknown {
      for (const h of [...st.pre.values()]) {
        const r = h(self, args);
        if (r !== undefined) args = Array.isArray(r) ? r : [r];
      }
      let out = inner.apply(self, args);
      for (const h of [...st.post.values()]) {
        const r = h(self, args, out);
        if (r !== undefined) out = r;
      }
      return out;
    };
    Object.defineProperty(this, 'forward', { value: forward, writable: true, configurable: true, enumerable: false });
    this.#hooks = st;
    return st;
  }

  #removeHook(st: HookState, id: number): void {
    st.pre.delete(id);
    st.post.delete(id);
    if (st.pre.size || st.post.size || this.#hooks !== st) return;
    // the last hook is gone: put back what was there (the prototype's forward, or the caller's own patch)
    if (st.saved) Object.defineProperty(this, 'forward', st.saved);
    else delete (this as { forward?: unknown }).forward;
    this.#hooks = null;
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

  /** Clear every parameter's gradient: drop it (setToNone, the default, as PyTorch >= 2.0) or fill it with zeros. */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (p.grad === null) continue;
      if (setToNone) p.grad = null;
      else p.grad.detach().fill_(0);
    }
  }

  /** Set requiresGrad on every parameter (false freezes them: backward leaves their .grad alone); returns this. */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
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
   * With assign (PyTorch's load_state_dict(assign=True)), an entry whose tensor has the module tensor's dtype and is
   * exactly its own storage (contiguous, offset 0, no extra elements, as checkpoint readers return them) is not
   * copied: the parameter is replaced by a Parameter over that storage (requires_grad kept from the module's) and the
   * buffer by the tensor itself; other entries are copied. No memory is touched, so loading a checkpoint into a model
   * built with nn/init.ts skipInit costs no copy and no page faults. The state dict's tensors and the module then
   * alias each other (an in-place change to one is seen by the other, with a shared version counter), and objects
   * holding the old parameters (an optimizer) keep the old ones.
   */
  loadStateDict(sd: StateDict | Record<string, Tensor>, o: { strict?: boolean; assign?: boolean } = {}): LoadResult {
    const strict = o.strict ?? true;
    const src: Map<string, Tensor> = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const res: LoadResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
    const todo: [string, Tensor, Tensor][] = [];
    for (const [k, t] of own) {
      const v = src.get(k);
      if (v === undefined) res.missingKeys.push(k);
      else if (!(v instanceof Tensor)) throw new TypeError(`state_dict entry "${k}" is not a Tensor (got ${typeof v})`);
      else if (!shapeEq(v.shape, t.shape)) res.mismatchedKeys.push({ key: k, expected: [...t.shape], got: [...v.shape] });
      else todo.push([k, t, v]);
    }
    for (const k of src.keys()) if (!own.has(k)) res.unexpectedKeys.push(k);
    const bad = res.missingKeys.length + res.unexpectedKeys.length + res.mismatchedKeys.length;
    if (strict && bad) throw new StateDictError(this.constructor.name, res);
    const owners = o.assign ? this.#stateOwners() : null;
    noGrad(() => { // a data write into the parameters, outside any graph (PyTorch loads under no_grad too)
      for (const [k, t, v] of todo) {
        const wholeStorage = v.dtype === t.dtype && v.offset === 0 && v.data.length === v.numel && v.isContiguous();
        if (!owners || !wholeStorage || (!(t instanceof Parameter) && v.requiresGrad)) {
          t.copy_(v);
          continue;
        }
        const [m, name] = owners.get(k)!;
        (m as unknown as Record<string, Tensor>)[name] = t instanceof Parameter ? new Parameter(v, t.requiresGrad) : v;
      }
    });
    return res;
  }

  /** The module and property name behind each stateDict() key. */
  #stateOwners(): Map<string, [Module, string]> {
    const out = new Map<string, [Module, string]>();
    const visit = (m: Module, prefix: string) => {
      for (const [n] of m.ownParameters()) out.set(prefix + n, [m, n]);
      for (const [n] of m.ownBuffers(true)) out.set(prefix + n, [m, n]);
      for (const [n, c] of m.namedChildren()) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return out;
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
