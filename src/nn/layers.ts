// The layers ResNets are made of, with torch.nn's constructor arguments, attribute names (state_dict keys) and
// default initialisation.

import { Tensor } from '../tensor/tensor.js';
import { empty, ones, zeros } from '../tensor/creation.js';
import { type Generator, defaultGenerator } from '../tensor/random.js';
import * as F from '../ops/index.js';
import { describe, expectInt, pair } from '../ops/check.js';
import { Module, Parameter } from './module.js';
import { fans, kaimingUniform_, uniform_ } from './init.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  bias?: boolean;
  generator?: Generator;
}

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number | [number, number], o: Conv2dOptions = {}) {
    super();
    this.inChannels = expectInt(inChannels, 'in_channels', 1);
    this.outChannels = expectInt(outChannels, 'out_channels', 1);
    this.kernelSize = pair(kernelSize, 'kernel_size', 1);
    this.stride = pair(o.stride ?? 1, 'stride', 1);
    this.padding = pair(o.padding ?? 0, 'padding', 0);
    this.dilation = pair(o.dilation ?? 1, 'dilation', 1);
    this.groups = expectInt(o.groups ?? 1, 'groups', 1);
    if (inChannels % this.groups !== 0) throw new RangeError('in_channels must be divisible by groups');
    if (outChannels % this.groups !== 0) throw new RangeError('out_channels must be divisible by groups');
    this.weight = new Parameter(empty([outChannels, inChannels / this.groups, ...this.kernelSize]));
    this.bias = o.bias === false ? null : new Parameter(empty([outChannels]));
    this.resetParameters(o.generator);
  }

  /** PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias. */
  resetParameters(g: Generator = defaultGenerator): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: g });
    if (this.bias) {
      const b = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -b, b, g);
    }
  }

  convOptions(): F.Conv2dOptions {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  override forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, this.convOptions());
  }

  override extraRepr(): string {
    const s = [`${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize})`, `stride=(${this.stride})`];
    if (this.padding.some((p) => p)) s.push(`padding=(${this.padding})`);
    if (this.dilation.some((d) => d !== 1)) s.push(`dilation=(${this.dilation})`);
    if (this.groups !== 1) s.push(`groups=${this.groups}`);
    if (!this.bias) s.push('bias=False');
    return s.join(', ');
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** null: cumulative moving average (PyTorch's momentum=None). */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export class BatchNorm2d extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  declare num_batches_tracked: Tensor | null;
  readonly numFeatures: number;
  readonly eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(numFeatures: number, o: BatchNormOptions = {}) {
    super();
    this.numFeatures = expectInt(numFeatures, 'num_features', 1);
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.affine = o.affine ?? true;
    this.trackRunningStats = o.trackRunningStats ?? true;
    this.weight = this.affine ? new Parameter(ones([numFeatures])) : null;
    this.bias = this.affine ? new Parameter(zeros([numFeatures])) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures]));
      this.registerBuffer('running_var', ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int64' }));
    } else {
      this.registerBuffer('running_mean', null);
      this.registerBuffer('running_var', null);
      this.registerBuffer('num_batches_tracked', null);
    }
  }

  /** The factor forward() will use for the running statistics (and the batch counter update), as PyTorch. */
  protected averageFactor(): number {
    let f = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.num_batches_tracked) {
      const nbt = this.num_batches_tracked;
      (nbt.data as BigInt64Array)[nbt.offset] += 1n;
      nbt.bumpVersion();
      if (this.momentum === null) f = 1 / Number((nbt.data as BigInt64Array)[nbt.offset]);
    }
    return f;
  }

  /** Whether forward() normalises with batch statistics. */
  usesBatchStats(): boolean {
    return this.training || (this.running_mean === null && this.running_var === null);
  }

  override forward(x: Tensor, relu = false): Tensor {
    if (!(x instanceof Tensor) || x.ndim !== 4) throw new RangeError(`expected 4D input (got ${x instanceof Tensor ? `${x.ndim}D input` : describe(x)})`);
    const momentum = this.averageFactor();
    const useStats = !this.training || this.trackRunningStats;
    return F.batchNorm(x, useStats ? this.running_mean : null, useStats ? this.running_var : null, this.weight, this.bias,
      { training: this.usesBatchStats(), momentum, eps: this.eps, relu });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, track_running_stats=${this.trackRunningStats}`;
  }
}

export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return F.relu(x, this.inplace);
  }

  override extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

export interface MaxPool2dOptions {
  stride?: number | [number, number] | null;
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number | [number, number], readonly o: MaxPool2dOptions = {}) {
    super();
    F.maxPool2dParams([1, 1, 1 << 20, 1 << 20], { kernelSize, ...o }); // validate the arguments now
  }

  override forward(x: Tensor): Tensor {
    return F.maxPool2d(x, { kernelSize: this.kernelSize, ...this.o });
  }

  override extraRepr(): string {
    const o = this.o;
    return `kernel_size=${this.kernelSize}, stride=${o.stride ?? this.kernelSize}, padding=${o.padding ?? 0}, dilation=${o.dilation ?? 1}, ceil_mode=${o.ceilMode ? 'True' : 'False'}`;
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: number | [number | null, number | null]) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=${Array.isArray(this.outputSize) ? `(${this.outputSize.join(', ')})` : this.outputSize}`;
  }
}

export interface LinearOptions {
  bias?: boolean;
  generator?: Generator;
}

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, o: LinearOptions = {}) {
    super();
    expectInt(inFeatures, 'in_features', 0);
    expectInt(outFeatures, 'out_features', 0);
    this.weight = new Parameter(empty([outFeatures, inFeatures]));
    this.bias = o.bias === false ? null : new Parameter(empty([outFeatures]));
    this.resetParameters(o.generator);
  }

  /** PyTorch's default: kaiming_uniform_(a=sqrt(5)) weight, U(-1/sqrt(in), 1/sqrt(in)) bias. */
  resetParameters(g: Generator = defaultGenerator): void {
    if (this.inFeatures === 0) return;
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: g });
    if (this.bias) {
      const b = 1 / Math.sqrt(this.inFeatures);
      uniform_(this.bias, -b, b, g);
    }
  }

  override forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

/** Children named "0", "1", ...; forward feeds each output to the next. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.append(m, i));
  }

  append(m: Module, i = this.length): this {
    if (!(m instanceof Module)) throw new TypeError(`Sequential: expected a Module at index ${i} but received ${describe(m)}`);
    (this as unknown as Record<string, Module>)[String(i)] = m;
    return this;
  }

  get length(): number {
    return this.namedChildren().length;
  }

  /** The i-th child (negative counts from the end). */
  at<T extends Module = Module>(i: number): T {
    const kids = this.children();
    const k = i < 0 ? i + kids.length : i;
    if (!Number.isInteger(k) || k < 0 || k >= kids.length) throw new RangeError(`index ${i} is out of range for a Sequential of length ${kids.length}`);
    return kids[k] as T;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }

  override forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.children()) h = m.forward(h) as Tensor;
    return h;
  }
}

/** A list of modules (children "0", "1", ...) with no forward of its own. */
export class ModuleList extends Sequential {
  override forward(): never {
    throw new Error('ModuleList has no forward(); iterate over it');
  }
}
