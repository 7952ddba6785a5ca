// The tape: grad mode, the nodes ops record, and backward() over them, as PyTorch's autograd (eager, define by run).
//
// An op whose inputs require a gradient (while grad mode is on) records a Node on its output: the name of its
// backward rule, what the rule needs (`saved`), and for each input an edge saying where that input's gradient
// goes: the node that produced the input, the leaf tensor whose .grad accumulates it, or nowhere (null). Edges are
// taken when the op runs, so an in-place op that later gives a tensor a new node (relu_, add_) leaves the graph
// recorded before it intact. The rules are one table in ops/grad.ts, registered here by name (tensor/ does not
// import ops/); tensor.ts records its views (reshape, permute, ...) by name too.
//
// backward() runs the reachable nodes in dependency order with grad mode off (no higher-order gradients), sums the
// gradients that meet at a node, accumulates into leaves' .grad (across calls, as PyTorch), and frees every node's
// saved values unless retainGraph is set. A saved tensor remembers its version: if an in-place op changed it
// before the rule runs, backward fails with PyTorch's "modified by an inplace operation" error.

import { type DType, allocStorage } from './dtype.js';
import { fmtShape, shapeEq } from './shape.js';
import { Tensor } from './tensor.js'; // a cycle (tensor.ts records views here); both only use the other inside functions

/** Where an input's gradient goes: the node that made it, a leaf tensor (accumulates .grad), or nowhere. */
export type Edge = Node | Tensor | null;

/**
 * A backward rule: from the rule's saved values and the gradient of the op's output, the gradient of each input
 * (null where needs[i] is false or the input gets none). Runs with grad mode off.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Rule = (saved: any, grad: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

interface InputMeta {
  shape: readonly number[];
  dtype: DType;
}

let nextSeq = 0;

/** One recorded op (PyTorch's grad_fn). */
export class Node {
  /** Creation order: later nodes run first among those ready (as PyTorch's sequence numbers). */
  readonly seq = nextSeq++;
  /** Saved tensors and the version each had when saved. */
  readonly versions: [Tensor, number][] = [];
  /** True when saved holds tensors or typed arrays, which backward frees (unless retainGraph). */
  readonly holdsData: boolean;

  constructor(
    /** The rule's name in the table (ops/grad.ts). */
    readonly name: string,
    /** Per input of the op: where its gradient goes. */
    readonly next: readonly Edge[],
    /** Per input: the shape and dtype its gradient must have. */
    readonly inputs: readonly (InputMeta | null)[],
    /** What the rule reads; null once freed. */
    public saved: Record<string, unknown> | null,
  ) {
    let holds = false;
    for (const v of Object.values(saved ?? {})) {
      if (v instanceof Tensor) {
        this.versions.push([v, v.version]);
        retainStorage(v.data);
        holds = true;
      } else if (ArrayBuffer.isView(v)) holds = true;
    }
    this.holdsData = holds;
  }

  toString(): string {
    return `<${this.name} backward>`;
  }
}

/** PyTorch calls it grad_fn; Tensor.gradFn holds one. */
export type GradFn = Node;

// ---- grad mode -------------------------------------------------------------------------------------------------

let gradEnabled = true;

/** Whether ops record the graph now (torch.is_grad_enabled). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Switch recording on or off (torch.set_grad_enabled). Prefer noGrad(fn), which restores the mode. */
export function setGradEnabled(flag: boolean): void {
  gradEnabled = !!flag;
}

/**
 * Run fn with recording off (torch.no_grad): for inference and for in-place updates of parameters. The mode covers
 * the synchronous part of fn only; after an `await` inside fn it is restored.
 */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Run fn with recording on, e.g. inside noGrad (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

function withGradMode<T>(flag: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = flag;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ---- recording ---------------------------------------------------------------------------------------------------

/** True when an op over these inputs must record a node: grad mode is on and one of them requires grad. */
export function needsGrad(a: Tensor | null | undefined, b?: Tensor | null, c?: Tensor | null, d?: Tensor | null): boolean {
  return gradEnabled && (!!a?.requiresGrad || !!b?.requiresGrad || !!c?.requiresGrad || !!d?.requiresGrad);
}

function edgeOf(t: Tensor | null | undefined): Edge {
  if (!t || !t.requiresGrad) return null;
  return t.gradFn ?? t;
}

/**
 * Record rule `name` on `out` (which may be one of the inputs, for an in-place op): out gets the node as its
 * gradFn and requires grad. Call only when needsGrad(...inputs) is true.
 */
export function record(name: string, inputs: readonly (Tensor | null | undefined)[], out: Tensor, saved: Record<string, unknown>): Node {
  const next = inputs.map(edgeOf);
  const metas = inputs.map((t) => (t && t.requiresGrad ? { shape: t.shape, dtype: t.dtype } : null));
  const node = new Node(name, next, metas, saved);
  out.gradFn = node;
  out.requiresGrad = true;
  return node;
}

/** Rules whose output is a view of their input: in-place ops on such outputs are refused (see checkInplace). */
const VIEW_RULES = new Set(['reshape', 'permute', 'select', 'narrow']);

/**
 * Before an in-place op on t: refuse what PyTorch refuses (a leaf that requires grad, while recording) and what
 * this tape does not model (an in-place op on a view of a tensor in the graph, which PyTorch rebases onto the base).
 */
export function checkInplace(t: Tensor, op: string): void {
  if (!gradEnabled || !t.requiresGrad) return;
  if (t.gradFn === null) {
    throw new Error(`a leaf tensor that requires grad is being used in an in-place operation (${op}); run it under noGrad() (as an optimizer update does) or use the out-of-place op`);
  }
  if (VIEW_RULES.has(t.gradFn.name)) {
    throw new Error(`${op}: in-place operations on a view (${t.gradFn.name}) of a tensor that requires grad are not supported; use the out-of-place op`);
  }
}

const rules = new Map<string, Rule>();

/** Register backward rules by name (ops/grad.ts registers its table when loaded). */
export function defineRules(table: Readonly<Record<string, Rule>>): void {
  for (const [k, r] of Object.entries(table)) rules.set(k, r);
}

// Storage arrays that a live node has saved: ops/recycle.ts must never hand them to a later op.
const savedCount = new WeakMap<object, number>();

function retainStorage(s: object): void {
  savedCount.set(s, (savedCount.get(s) ?? 0) + 1);
}

function releaseStorage(s: object): void {
  const n = (savedCount.get(s) ?? 1) - 1;
  if (n > 0) savedCount.set(s, n);
  else {
    savedCount.delete(s);
    released(s);
  }
}

let released: (s: object) => void = () => {};

/** Install what runs when the last live node that saved a storage frees it (ops/recycle.ts: deferred recycling). */
export function setStorageReleased(fn: (s: object) => void): void {
  released = fn;
}

let gradDone: (g: Tensor) => void = () => {};

/**
 * Install what backward does with a node's incoming gradient once the node's rule has run and returned nothing
 * over its storage, when the engine owns that storage alone (not the caller's root gradient, not shared between
 * inputs, not adopted as a leaf's .grad): ops/grad.ts hands it to ops/recycle.ts for later outputs of its size.
 */
export function setGradDone(fn: (g: Tensor) => void): void {
  gradDone = fn;
}

/** True when a node that has not been freed saved a tensor over this storage. */
export function isSavedStorage(s: object): boolean {
  return savedCount.has(s);
}

function free(node: Node): void {
  if (!node.holdsData || node.saved === null) return;
  for (const [t] of node.versions) releaseStorage(t.data);
  node.versions.length = 0; // drop the references too: the graph may outlive the backward (held by its output)
  node.saved = null;
}

// ---- backward ----------------------------------------------------------------------------------------------------

export interface BackwardOptions {
  /** Keep saved values so backward can run through this graph again (retain_graph=True). Default false. */
  retainGraph?: boolean;
}

/**
 * Gradients of `root` with respect to every leaf that requires grad, accumulated into their .grad. `grad` is the
 * gradient of root (default 1 for a one-element root; required otherwise, as PyTorch).
 */
export function backward(root: Tensor, grad?: Tensor | null, o: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('element 0 of tensors does not require grad and does not have a grad_fn');
  let g: Tensor;
  if (grad === undefined || grad === null) {
    if (root.numel !== 1) throw new Error(`grad can be implicitly created only for scalar outputs (backward() of a tensor of shape ${fmtShape(root.shape)} needs a gradient of that shape)`);
    const s = allocStorage(root.dtype, 1);
    (s as Float32Array)[0] = 1;
    g = new Tensor(s, root.shape, { dtype: root.dtype });
  } else {
    if (!shapeEq(grad.shape, root.shape)) {
      throw new RangeError(`Mismatch in shape: grad_output[0] has a shape of ${fmtShape(grad.shape)} and output[0] has a shape of ${fmtShape(root.shape)}.`);
    }
    g = grad.dtype === root.dtype ? grad : grad.to(root.dtype);
  }
  const top = root.gradFn;
  const prev = gradEnabled;
  gradEnabled = false;
  const shared = new WeakSet<object>([g.data]); // the caller still holds its gradient: never adopt or write it
  try {
    if (top === null) accumulateLeaf(root, g, shared);
    else runGraph(top, g, !!o.retainGraph, shared);
  } finally {
    gradEnabled = prev;
  }
}

// Gradient buffers. A rule returns fresh tensors or views of the gradient it was given, and the engine hands each
// gradient to one place (a pending sum, or a leaf's .grad), so it can sum into a gradient and adopt it as a leaf's
// .grad without copying. Exceptions are tracked by storage in `shared`: the caller's root gradient, and any storage
// a rule returned for two inputs (add returns g for both). Those are copied before being written or kept.

/** y[i] = a[i] + b[i] for i < n (y may be a). ops/grad.ts installs the backend's add for float32 storage. */
export type GradAdder = (a: Float32Array | Float64Array, b: Float32Array | Float64Array, y: Float32Array | Float64Array, n: number) => void;
let adder: GradAdder = (a, b, y, n) => {
  for (let i = 0; i < n; i++) y[i] = a[i] + b[i];
};

/** Install the function backward uses to sum gradients. */
export function setGradAdder(fn: GradAdder): void {
  adder = fn;
}

/** t may be written in place / kept: its whole storage is its own and no one else holds it. */
function exclusive(t: Tensor, shared: WeakSet<object>): boolean {
  return t.offset === 0 && t.data.length === t.numel && t.isContiguous() && !shared.has(t.data);
}

function runGraph(top: Node, grad: Tensor, retain: boolean, shared: WeakSet<object>): void {
  // count, for every reachable node, the edges that point at it from reachable nodes
  const deps = new Map<Node, number>([[top, 0]]);
  const stack = [top];
  while (stack.length) {
    for (const e of stack.pop()!.next) {
      if (!(e instanceof Node)) continue;
      const d = deps.get(e);
      if (d === undefined) stack.push(e);
      deps.set(e, (d ?? 0) + 1);
    }
  }
  const pending = new Map<Node, Tensor>([[top, grad]]);
  const ready: Node[] = [top];
  while (ready.length) {
    // the most recently created ready node first (PyTorch's order; it also frees activations soonest)
    let k = 0;
    for (let i = 1; i < ready.length; i++) if (ready[i].seq > ready[k].seq) k = i;
    const node = ready[k];
    ready[k] = ready[ready.length - 1];
    ready.pop();
    const g = pending.get(node);
    pending.delete(node);
    const grads = g === undefined ? [] : runNode(node, g);
    if (!retain) free(node);
    markShared(grads, shared);
    if (g !== undefined && exclusive(g, shared) && !grads.some((t) => t && t.data === g.data)) gradDone(g);
    for (let i = 0; i < node.next.length; i++) {
      const e = node.next[i];
      const gi = grads[i] ?? null;
      if (e === null) continue;
      if (e instanceof Node) {
        if (gi !== null) {
          const acc = pending.get(e);
          pending.set(e, acc === undefined ? gi : addGrads(acc, gi, shared));
        }
        const d = deps.get(e)! - 1;
        deps.set(e, d);
        if (d === 0) ready.push(e);
      } else if (gi !== null) accumulateLeaf(e, gi, shared);
    }
  }
}

/** Storages a rule returned more than once are shared between those inputs' gradients. */
function markShared(grads: (Tensor | null)[], shared: WeakSet<object>): void {
  for (let i = 0; i < grads.length; i++) {
    for (let j = i + 1; j < grads.length; j++) {
      if (grads[i] && grads[j] && grads[i]!.data === grads[j]!.data) shared.add(grads[i]!.data);
    }
  }
}

function runNode(node: Node, g: Tensor): (Tensor | null)[] {
  if (node.saved === null) {
    throw new Error(`Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed): ${node.name}'s saved values were freed by an earlier backward(). Pass { retainGraph: true } to the first backward() if you need to backward through the graph a second time.`);
  }
  for (const [t, v] of node.versions) {
    if (t.version !== v) {
      throw new Error(`one of the variables needed for gradient computation has been modified by an inplace operation: [${t.dtype} ${fmtShape(t.shape)}], saved by ${node.name}, is at version ${t.version}; expected version ${v} instead. Hint: clone() the tensor before changing it in place, or use the out-of-place op.`);
    }
  }
  const rule = rules.get(node.name);
  if (!rule) throw new Error(`no backward rule registered for ${node.name} (ops/grad.ts registers them when resnet-ts's ops are loaded)`);
  const needs = node.next.map((e) => e !== null);
  const out = rule(node.saved, g, needs);
  for (let i = 0; i < node.next.length; i++) {
    const gi = out[i];
    const meta = node.inputs[i];
    if (!gi || !meta) continue;
    if (!shapeEq(gi.shape, meta.shape)) {
      throw new Error(`backward rule ${node.name} returned a gradient of shape ${fmtShape(gi.shape)} for its input ${i} of shape ${fmtShape(meta.shape)}`);
    }
    if (gi.dtype !== meta.dtype) out[i] = gi.to(meta.dtype);
  }
  return out;
}

/** a + b (same shape and dtype), into a when a is exclusive. */
function addGrads(a: Tensor, b: Tensor, shared: WeakSet<object>): Tensor {
  const bd = b.contiguousData() as Float32Array;
  if (exclusive(a, shared)) {
    adder(a.data as Float32Array, bd, a.data as Float32Array, bd.length);
    return a;
  }
  const s = allocStorage(a.dtype, bd.length) as Float32Array;
  adder(a.contiguousData() as Float32Array, bd, s, s.length);
  return new Tensor(s, a.shape, { dtype: a.dtype });
}

/** leaf.grad += g; the first gradient is adopted when exclusive, else copied, so .grad shares storage with nothing. */
function accumulateLeaf(leaf: Tensor, g: Tensor, shared: WeakSet<object>): void {
  if (!leaf.requiresGrad) return;
  const gl = g.dtype === leaf.dtype ? g : g.to(leaf.dtype);
  const cur = leaf.grad;
  if (cur === null && exclusive(gl, shared)) {
    leaf.grad = gl;
    shared.add(gl.data);
    return;
  }
  const gd = gl.contiguousData() as Float32Array;
  if (cur !== null && shapeEq(cur.shape, leaf.shape) && cur.dtype === leaf.dtype && exclusive(cur, new WeakSet())) {
    adder(cur.data as Float32Array, gd, cur.data as Float32Array, gd.length);
    cur.bumpVersion();
    return;
  }
  const s = allocStorage(leaf.dtype, gd.length) as Float32Array;
  if (cur === null) s.set(gd);
  else adder(cur.contiguousData() as Float32Array, gd, s, s.length);
  leaf.grad = new Tensor(s, leaf.shape, { dtype: leaf.dtype });
}
