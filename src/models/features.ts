// Named intermediate outputs of a torchvision ResNet, as torchvision.models.feature_extraction's
// create_feature_extractor and get_graph_node_names (https://pytorch.org/vision/stable/feature_extraction.html).
//
// torchvision traces the model with torch.fx and names each node after the module that made it: leaf modules by
// their path (`layer3.5.conv1`), repeated calls of one module with a suffix (`layer3.5.relu`, `relu_1`, `relu_2`),
// functions by the module they run in (`layer3.5.add`, `flatten`); the input is `x`. A requested name may be any
// prefix that ends at a dot (`layer3`, `layer3.5`): it selects the last node inside that scope, i.e. the module's
// output. We have no tracer: the graph of our ResNet, BasicBlock and Bottleneck is written down here (the same node
// order as torchvision's trace), and each node is observed at run time with forward hooks (nn/module.ts) on the
// module that makes it: `add` is the input of the block's last relu call, `flatten` the input of fc.
//
// Differences from torchvision, on purpose:
// - Values are what each node computed. torchvision's ReLUs are inplace=True, so its extractor returns `bn1`, the
//   `bnN` before a relu and every `add` already rectified (the relu overwrote them); we return them as torchvision
//   does with inplace=False. The fixture maker checks exactly that.
// - Each requested name resolves on its own. torchvision's matcher lets one node satisfy one request only, so
//   ['layer1', 'layer1.1.relu_1'] silently drops the second and ['layer1', 'layer1.1'] gives `layer1.1` the add.
// - Modules with children that are neither ResNet, BasicBlock, Bottleneck nor Sequential are one opaque node each
//   (torchvision would trace into them). The forward stops once every requested node has been seen, as torchvision's
//   pruned graph does; in training mode a downsample (which we run before the block's first conv) may still update
//   its running statistics when only the block's first nodes are requested.
// Hugging Face models are not traced: use forward(x, { outputHiddenStates: true }) (the stem output and every
// stage's) or ResNetBackbone with outFeatures ['stem', 'stage1', ...] / outIndices.

import { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/layers.js';
import { describe } from '../ops/check.js';
import { BasicBlock, Bottleneck, ResNet } from './resnet.js';
import { ResNetPreTrainedModel } from './hf.js';

/** One node of torchvision's graph and where its value shows up when our model runs. */
export interface GraphNode {
  /** torchvision's node name, e.g. `layer3.5.relu_1`. */
  name: string;
  /** The module whose call makes (or, for `add` and `flatten`, receives) the value; null for the input `x`. */
  module: Module | null;
  /** Which call of that module during one forward (0 for most; a block's relu is called 2 or 3 times). */
  call: number;
  /** The module's output, or its first input. */
  at: 'output' | 'input';
}

/** The graph of a stock torchvision ResNet in torchvision's node order (train and eval are the same graph). */
export function resnetGraph(model: Module): GraphNode[] {
  if (!(model instanceof ResNet) || Object.getPrototypeOf(model).forward !== ResNet.prototype.forward) {
    const hint = model instanceof ResNetPreTrainedModel
      ? ': for Hugging Face models use forward(x, { outputHiddenStates: true }) or ResNetBackbone (outFeatures / outIndices)'
      : '';
    throw new TypeError(`Expected a torchvision ResNet (resnet18 ... wide_resnet101_2) for model but received ${describe(model)}${hint}`);
  }
  const nodes: GraphNode[] = [{ name: 'x', module: null, call: 0, at: 'input' }];
  const seen = new Map<string, number>(); // base name -> times used (torchvision's _1, _2 suffixes)
  const calls = new Map<Module, number>(); // module -> calls so far in one forward
  const push = (base: string, module: Module, at: 'output' | 'input'): void => {
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    const call = calls.get(module) ?? 0;
    if (at === 'output') calls.set(module, call + 1);
    nodes.push({ name: k ? `${base}_${k}` : base, module, call, at });
  };
  const join = (scope: string, n: string): string => (scope ? `${scope}.${n}` : n);
  const child = (m: Module, name: string): Module => (m as unknown as Record<string, Module>)[name];
  const visit = (m: Module, path: string): void => {
    const proto = Object.getPrototypeOf(m);
    const seq = (names: string[]): void => names.forEach((n) => visit(child(m, n), join(path, n)));
    if (m instanceof BasicBlock && proto.forward === BasicBlock.prototype.forward) {
      seq(['conv1', 'bn1', 'relu', 'conv2', 'bn2']);
      block(m, path);
    } else if (m instanceof Bottleneck && proto.forward === Bottleneck.prototype.forward) {
      seq(['conv1', 'bn1', 'relu', 'conv2', 'bn2', 'relu', 'conv3', 'bn3']);
      block(m, path);
    } else if (m instanceof Sequential && proto.forward === Sequential.prototype.forward) {
      for (const [n, c] of m.namedChildren()) visit(c, join(path, n));
    } else push(path, m, 'output');
  };
  // the tail of both blocks: [downsample], out += identity, relu
  const block = (m: BasicBlock | Bottleneck, path: string): void => {
    if (m.downsample) visit(m.downsample, join(path, 'downsample'));
    push(join(path, 'add'), m.relu, 'input');
    visit(m.relu, join(path, 'relu'));
  };
  for (const n of ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool']) visit(child(model, n), n);
  push('flatten', model.fc, 'input');
  visit(model.fc, 'fc');
  return nodes;
}

/** torchvision's get_graph_node_names: [train node names, eval node names] (equal for these models). */
export function getGraphNodeNames(model: Module): [string[], string[]] {
  const names = resnetGraph(model).map((n) => n.name);
  return [names, [...names]];
}

export interface FeatureExtractorOptions {
  /** Node names (outputs keep them) or { nodeName: outputName }. */
  returnNodes?: readonly string[] | Readonly<Record<string, string>>;
  /** As returnNodes, used in training mode (give both or neither, as torchvision). */
  trainReturnNodes?: readonly string[] | Readonly<Record<string, string>>;
  /** As returnNodes, used in eval mode. */
  evalReturnNodes?: readonly string[] | Readonly<Record<string, string>>;
}

interface Plan {
  /** Output name -> graph node, in graph order. */
  outputs: [string, GraphNode][];
  /** The distinct nodes to observe. */
  nodes: GraphNode[];
}

const STOP = Symbol('feature extraction complete');

/** torchvision's rule: a request names a node, or a scope (the part before a dot) whose last node it selects. */
function plan(graph: GraphNode[], request: readonly string[] | Readonly<Record<string, string>>, mode: string): Plan {
  if (request === null || typeof request !== 'object') throw new TypeError(`Expected an array or an object for ${mode}ReturnNodes but received ${describe(request)}`);
  const pairs: [string, string][] = Array.isArray(request) ? request.map((n) => [n, n]) : Object.entries(request);
  if (!pairs.length) throw new RangeError(`${mode}ReturnNodes is empty: name at least one node (getGraphNodeNames(model) lists them)`);
  const found: [string, GraphNode, number][] = [];
  for (const [query, out] of pairs) {
    if (typeof query !== 'string' || typeof out !== 'string') throw new TypeError(`Expected string node names in ${mode}ReturnNodes but received ${describe(query)}: ${describe(out)}`);
    const depth = query.split('.').length;
    let hit = -1;
    for (let i = graph.length - 1; i >= 0 && hit < 0; i--) if (graph[i].name.split('.').slice(0, depth).join('.') === query) hit = i;
    if (hit < 0) {
      throw new RangeError(`node: '${query}' is not present in model. Hint: use \`getGraphNodeNames\` to make sure the \`returnNodes\` you specified are present. It may even be that you need to specify \`trainReturnNodes\` and \`evalReturnNodes\` separately.`);
    }
    found.push([out, graph[hit], hit]);
  }
  found.sort((a, b) => a[2] - b[2]); // stable: ties keep the request order
  const outputs = found.map(([o, n]): [string, GraphNode] => [o, n]);
  if (new Set(outputs.map((o) => o[0])).size !== outputs.length) throw new RangeError(`${mode}ReturnNodes names an output twice`);
  return { outputs, nodes: [...new Set(outputs.map((o) => o[1]))] };
}

/**
 * torchvision's create_feature_extractor result: forward(x) returns { outputName: tensor } in graph order. It shares
 * the model's modules (its state dict has the model's keys) and runs the model's own forward with hooks, so the
 * model's mode (train()/eval() on either) decides which node list applies.
 */
export class FeatureExtractor extends Module {
  readonly #model: ResNet;
  readonly #plans: { train: Plan; eval: Plan };

  constructor(model: Module, o: FeatureExtractorOptions) {
    super();
    const graph = resnetGraph(model);
    this.#model = model as ResNet;
    const given = (['returnNodes', 'trainReturnNodes', 'evalReturnNodes'] as const).filter((k) => o?.[k] !== undefined && o[k] !== null);
    if (!(given.length === 1 && given[0] === 'returnNodes') && !(given.length === 2 && !given.includes('returnNodes'))) {
      throw new RangeError('Either `returnNodes` or `trainReturnNodes` and `evalReturnNodes` together, should be specified');
    }
    this.#plans = o.returnNodes
      ? { train: plan(graph, o.returnNodes, 'return'), eval: plan(graph, o.returnNodes, 'return') }
      : { train: plan(graph, o.trainReturnNodes!, 'trainReturn'), eval: plan(graph, o.evalReturnNodes!, 'evalReturn') };
    for (const [n, c] of model.namedChildren()) (this as unknown as Record<string, Module>)[n] = c;
    this.training = model.training;
  }

  /** The output names of the current mode, in the order forward() returns them. */
  get outputNames(): string[] {
    return this.#current().outputs.map((o) => o[0]);
  }

  #current(): Plan {
    return this.#model.training ? this.#plans.train : this.#plans.eval;
  }

  override train(mode = true): this {
    super.train(mode);
    this.#model.train(mode);
    return this;
  }

  override forward(x: Tensor): Record<string, Tensor> {
    const p = this.#current();
    const values = new Map<GraphNode, Tensor>();
    const keep = (node: GraphNode, v: unknown): void => {
      if (!(v instanceof Tensor)) throw new TypeError(`feature extraction: node '${node.name}' produced ${describe(v)}, not a Tensor`);
      // a copy: later in-place ops (relu, the residual add) and recycled buffers must not change what we return
      values.set(node, v.clone());
      if (values.size === p.nodes.length) throw STOP;
    };
    const handles: { remove(): void }[] = [];
    const byModule = new Map<Module, GraphNode[]>();
    for (const n of p.nodes) {
      if (n.module === null) values.set(n, x);
      else byModule.set(n.module, [...(byModule.get(n.module) ?? []), n]);
    }
    try {
      for (const [m, nodes] of byModule) {
        let calls = 0;
        handles.push(m.registerForwardPreHook((_m, inputs) => {
          for (const n of nodes) if (n.at === 'input' && n.call === calls) keep(n, inputs[0]);
        }));
        handles.push(m.registerForwardHook((_m, _inputs, output) => {
          const call = calls++;
          for (const n of nodes) if (n.at === 'output' && n.call === call) keep(n, output);
        }));
      }
      if (values.size < p.nodes.length) this.#model.forward(x);
    } catch (e) {
      if (e !== STOP) throw e;
    } finally {
      for (const h of handles) h.remove();
    }
    const missing = p.nodes.filter((n) => !values.has(n));
    if (missing.length) throw new Error(`feature extraction: node(s) ${missing.map((n) => `'${n.name}'`).join(', ')} were not reached by the model's forward`);
    return Object.fromEntries(p.outputs.map(([o, n]) => [o, values.get(n)!]));
  }
}

/**
 * torchvision's create_feature_extractor(model, return_nodes=...) for our torchvision ResNets:
 *   const fe = createFeatureExtractor(resnet50(), { returnNodes: { layer2: 'c3', layer3: 'c4', layer4: 'c5' } });
 *   const { c3, c4, c5 } = fe.forward(x);
 */
export function createFeatureExtractor(model: Module, o: FeatureExtractorOptions): FeatureExtractor {
  return new FeatureExtractor(model, o);
}
