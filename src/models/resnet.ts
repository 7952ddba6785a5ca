// torchvision's ResNet family (torchvision/models/resnet.py), module for module: the same attribute names (so
// state_dict keys match key for key, in order), the same options, initialisation and errors.
// Paper: "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385. Bottleneck puts the
// stride on the 3x3 conv ("ResNet V1.5", https://ngc.nvidia.com/catalog/model-scripts/nvidia:resnet_50_v1_5_for_pytorch).

import type { Tensor } from '../tensor/tensor.js';
import { Generator, defaultGenerator } from '../tensor/random.js';
import { Module } from '../nn/module.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { convBnAct, convBnSequential, isStock, ownsConvBnAct, ownsConvBnSequential } from '../nn/fused.js';
import { recycle } from '../ops/recycle.js';
import { constant_, kaimingNormal_, skipInit } from '../nn/init.js';
import { describe, expectInt, pyRepr } from '../ops/check.js';
import { getModelWeights, legacyPretrainedWeights, type Weights, type WeightsEnum } from './weights.js';

export {
  Weights, WeightsEnum, verifyWeights, getWeight, getModelWeights, listWeightsEnums, hfRepos, IMAGENET_CATEGORIES,
  ResNet18_Weights, ResNet34_Weights, ResNet50_Weights, ResNet101_Weights, ResNet152_Weights, ResNeXt50_32X4D_Weights,
  ResNeXt101_32X8D_Weights, ResNeXt101_64X4D_Weights, Wide_ResNet50_2_Weights, Wide_ResNet101_2_Weights,
  type ImageClassificationTransforms, type WeightsMeta, type WeightsInit, type GetStateDictOptions,
} from './weights.js';

/** A factory for the normalisation layer (torchvision's norm_layer); BatchNorm2d by default. */
export type NormLayer = (numFeatures: number) => Module;

const defaultNorm: NormLayer = (c) => new BatchNorm2d(c);

/** 3x3 convolution with padding = dilation. */
export function conv3x3(inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, bias: false, dilation });
}

/** 1x1 convolution. */
export function conv1x1(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

export interface BlockArgs {
  stride?: number;
  downsample?: Module | null;
  groups?: number;
  baseWidth?: number;
  dilation?: number;
  normLayer?: NormLayer;
}

export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: Module;
  relu: ReLU;
  conv2: Conv2d;
  bn2: Module;
  downsample: Module | null;
  readonly stride: number;

  constructor(inplanes: number, planes: number, a: BlockArgs = {}) {
    super();
    const norm = a.normLayer ?? defaultNorm;
    if ((a.groups ?? 1) !== 1 || (a.baseWidth ?? 64) !== 64) throw new RangeError('BasicBlock only supports groups=1 and base_width=64');
    if ((a.dilation ?? 1) > 1) throw new RangeError('Dilation > 1 not supported in BasicBlock');
    const stride = a.stride ?? 1;
    // Both conv1 and downsample downsample the input when stride != 1
    this.conv1 = conv3x3(inplanes, planes, stride);
    this.bn1 = norm(planes);
    this.relu = new ReLU(true);
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = norm(planes);
    this.downsample = a.downsample ?? null;
    this.stride = stride;
  }

  /**
   * True when forward() keeps no reference to its input or its intermediates, except what autograd saves, and
   * returns new storage: each conv-norm pair fuses or is stock modules, in any mode (nn/fused.ts ownsConvBnAct).
   * It then recycles its intermediates (ops/recycle.ts) once they are consumed; in training, once backward has
   * read them.
   */
  ownsIntermediates(): boolean {
    return ownsConvBnAct(this.conv1, this.bn1, this.relu) && ownsConvBnAct(this.conv2, this.bn2, this.relu) &&
      (this.downsample === null || ownsConvBnSequential(this.downsample));
  }

  override forward(x: Tensor): Tensor {
    const own = this.ownsIntermediates();
    const identity = this.downsample ? convBnSequential(this.downsample, x) : x;
    const out = convBnAct(this.conv1, this.bn1, x, { act: this.relu });
    const y = convBnAct(this.conv2, this.bn2, out, { residual: identity, act: this.relu });
    if (own) {
      recycle(out);
      if (identity !== x) recycle(identity);
    }
    return y;
  }
}

export class Bottleneck extends Module {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: Module;
  conv2: Conv2d;
  bn2: Module;
  conv3: Conv2d;
  bn3: Module;
  relu: ReLU;
  downsample: Module | null;
  readonly stride: number;

  constructor(inplanes: number, planes: number, a: BlockArgs = {}) {
    super();
    const norm = a.normLayer ?? defaultNorm;
    const groups = a.groups ?? 1, stride = a.stride ?? 1;
    const width = Math.trunc(planes * ((a.baseWidth ?? 64) / 64.0)) * groups;
    this.conv1 = conv1x1(inplanes, width);
    this.bn1 = norm(width);
    this.conv2 = conv3x3(width, width, stride, groups, a.dilation ?? 1);
    this.bn2 = norm(width);
    this.conv3 = conv1x1(width, planes * Bottleneck.expansion);
    this.bn3 = norm(planes * Bottleneck.expansion);
    this.relu = new ReLU(true);
    this.downsample = a.downsample ?? null;
    this.stride = stride;
  }

  /** As BasicBlock.ownsIntermediates. */
  ownsIntermediates(): boolean {
    return ownsConvBnAct(this.conv1, this.bn1, this.relu) && ownsConvBnAct(this.conv2, this.bn2, this.relu) &&
      ownsConvBnAct(this.conv3, this.bn3, this.relu) && (this.downsample === null || ownsConvBnSequential(this.downsample));
  }

  override forward(x: Tensor): Tensor {
    const own = this.ownsIntermediates();
    const identity = this.downsample ? convBnSequential(this.downsample, x) : x;
    const out1 = convBnAct(this.conv1, this.bn1, x, { act: this.relu });
    const out2 = convBnAct(this.conv2, this.bn2, out1, { act: this.relu });
    if (own) recycle(out1);
    const y = convBnAct(this.conv3, this.bn3, out2, { residual: identity, act: this.relu });
    if (own) {
      recycle(out2);
      if (identity !== x) recycle(identity);
    }
    return y;
  }
}

export type Block = typeof BasicBlock | typeof Bottleneck;

/** A stock block that owns its intermediates (see BasicBlock.ownsIntermediates). */
function pureBlock(m: Module): boolean {
  return (isStock(m, Bottleneck) && (m as Bottleneck).ownsIntermediates()) || (isStock(m, BasicBlock) && (m as BasicBlock).ownsIntermediates());
}

export interface ResNetOptions {
  numClasses?: number;
  /** Zero-init the last BN of each residual branch (+0.2~0.3%, https://arxiv.org/abs/1706.02677). */
  zeroInitResidual?: boolean;
  groups?: number;
  widthPerGroup?: number;
  /** For layer2..layer4: replace the 2x2 stride with a dilated convolution. null or 3 booleans. */
  replaceStrideWithDilation?: readonly boolean[] | null;
  normLayer?: NormLayer;
  /** Random stream for the initial weights (default: the global generator, see manualSeed). */
  generator?: Generator;
  /** Shorthand for generator: new Generator(seed). */
  seed?: number;
}

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: Module;
  relu: ReLU;
  maxpool: MaxPool2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  avgpool: AdaptiveAvgPool2d;
  fc: Linear;
  readonly #norm: NormLayer;
  #inplanes = 64;
  #dilation = 1;
  readonly #groups: number;
  readonly #baseWidth: number;
  readonly #gen: Generator;

  constructor(block: Block, layers: readonly number[], o: ResNetOptions = {}) {
    super();
    if (block !== BasicBlock && block !== Bottleneck) throw new TypeError(`Expected BasicBlock or Bottleneck for block but received ${describe(block)}`);
    if (!Array.isArray(layers) || layers.length !== 4) throw new RangeError(`Expected 4 block counts for layers but received ${describe(layers)}`);
    layers.forEach((n, i) => expectInt(n, `layers[${i}]`, 1));
    const numClasses = expectInt(o.numClasses ?? 1000, 'num_classes', 0);
    this.#norm = o.normLayer ?? defaultNorm;
    this.#gen = o.generator ?? (o.seed !== undefined ? new Generator(o.seed) : defaultGenerator);
    const rswd = o.replaceStrideWithDilation ?? [false, false, false];
    if (!Array.isArray(rswd) || rswd.length !== 3) {
      throw new RangeError(`replace_stride_with_dilation should be None or a 3-element tuple, got ${pyRepr(o.replaceStrideWithDilation)}`);
    }
    this.#groups = expectInt(o.groups ?? 1, 'groups', 1);
    this.#baseWidth = expectInt(o.widthPerGroup ?? 64, 'width_per_group', 1);
    this.conv1 = new Conv2d(3, this.#inplanes, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = this.#norm(this.#inplanes);
    this.relu = new ReLU(true);
    this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
    this.layer1 = this.makeLayer(block, 64, layers[0]);
    this.layer2 = this.makeLayer(block, 128, layers[1], 2, !!rswd[0]);
    this.layer3 = this.makeLayer(block, 256, layers[2], 2, !!rswd[1]);
    this.layer4 = this.makeLayer(block, 512, layers[3], 2, !!rswd[2]);
    this.avgpool = new AdaptiveAvgPool2d([1, 1]);
    this.fc = new Linear(512 * block.expansion, numClasses, { generator: this.#gen });

    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu', generator: this.#gen });
      else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      }
    }
    if (o.zeroInitResidual) {
      for (const m of this.modules()) {
        if (m instanceof Bottleneck && m.bn3 instanceof BatchNorm2d && m.bn3.weight) constant_(m.bn3.weight, 0);
        else if (m instanceof BasicBlock && m.bn2 instanceof BatchNorm2d && m.bn2.weight) constant_(m.bn2.weight, 0);
      }
    }
  }

  private makeLayer(block: Block, planes: number, blocks: number, stride = 1, dilate = false): Sequential {
    const norm = this.#norm;
    let downsample: Module | null = null;
    const previousDilation = this.#dilation;
    if (dilate) {
      this.#dilation *= stride;
      stride = 1;
    }
    if (stride !== 1 || this.#inplanes !== planes * block.expansion) {
      downsample = new Sequential(conv1x1(this.#inplanes, planes * block.expansion, stride), norm(planes * block.expansion));
    }
    const common = { groups: this.#groups, baseWidth: this.#baseWidth, normLayer: norm };
    const layers: Module[] = [new block(this.#inplanes, planes, { stride, downsample, dilation: previousDilation, ...common })];
    this.#inplanes = planes * block.expansion;
    for (let i = 1; i < blocks; i++) layers.push(new block(this.#inplanes, planes, { dilation: this.#dilation, ...common }));
    return new Sequential(...layers);
  }

  /** The stem and the four stages: (N,3,H,W) -> (N, 512*expansion, H/32, W/32) (less with dilation). */
  features(x: Tensor): Tensor {
    return this.#features(x).h;
  }

  override forward(x: Tensor): Tensor {
    const f = this.#features(x);
    const pooled = isStock(this.avgpool, AdaptiveAvgPool2d);
    const h = this.avgpool.forward(f.h);
    if (f.owned && pooled) recycle(f.h);
    const y = this.fc.forward(h.flatten(1)) as Tensor;
    if (pooled && isStock(this.fc, Linear)) recycle(h);
    return y;
  }

  /**
   * features(), recycling each activation (ops/recycle.ts) as soon as the next module has consumed it, when both
   * are known to be pure: the module is exactly MaxPool2d, or exactly BasicBlock / Bottleneck whose modules are
   * fused or stock (so it keeps no reference to its input, except what autograd saves, and returns new storage),
   * and the activation was made here by such a module or by such a stem. In training, an activation that backward
   * will read joins the free lists once backward has freed it. Anything else (other layers, subclasses, hooks) runs
   * as written, with nothing recycled around it. `owned`: the result is such an activation (forward() recycles it
   * after avgpool).
   */
  #features(x: Tensor): { h: Tensor; owned: boolean } {
    let h = convBnAct(this.conv1, this.bn1, x, { act: this.relu });
    let owned = ownsConvBnAct(this.conv1, this.bn1, this.relu);
    const step = (m: Module, pure: boolean): void => {
      const y = m.forward(h) as Tensor;
      if (owned && pure) recycle(h);
      h = y;
      owned = pure;
    };
    step(this.maxpool, isStock(this.maxpool, MaxPool2d));
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      if (!isStock(layer, Sequential)) step(layer, false);
      else for (const block of layer.children()) step(block, pureBlock(block));
    }
    return { h, owned };
  }
}

export interface BuilderOptions extends ResNetOptions {
  /**
   * Pretrained weights: a member of the builder's enum (`ResNet50_Weights.IMAGENET1K_V2`), its name ('DEFAULT',
   * 'IMAGENET1K_V2') or full name ('ResNet50_Weights.IMAGENET1K_V2'). With weights the builder returns a Promise.
   */
  weights?: Weights | string | null;
  /** Progress bar while downloading the weights (default true). */
  progress?: boolean;
  /** Deprecated since torchvision 0.13: true means weights IMAGENET1K_V1 (not DEFAULT), false means none. */
  pretrained?: boolean;
}

/** Options without weights: the builder returns the model. */
export type PlainOptions = BuilderOptions & { weights?: null; pretrained?: false };
/** Options with weights (or the legacy pretrained: true): the builder returns a Promise of the loaded model. */
export type PretrainedOptions = BuilderOptions & ({ weights: Weights | string } | { pretrained: true });

/** A torchvision builder: synchronous without weights, asynchronous (it loads a file) with them. */
export interface ResNetBuilder {
  (o?: PlainOptions): ResNet;
  (o: PretrainedOptions): Promise<ResNet>;
  (o?: BuilderOptions): ResNet | Promise<ResNet>;
  readonly weightsEnum: WeightsEnum;
}

/** torchvision's _ovewrite_named_param: a value the builder or the weights fix may be passed again, but not changed. */
function overwriteNamedParam(o: ResNetOptions, key: 'groups' | 'widthPerGroup' | 'numClasses', value: number): void {
  const py = { groups: 'groups', widthPerGroup: 'width_per_group', numClasses: 'num_classes' }[key];
  if (o[key] !== undefined && o[key] !== value) throw new RangeError(`The parameter '${py}' expected value ${value} but got ${o[key]} instead.`);
}

/**
 * torchvision's handle_legacy_interface(weights=("pretrained", <Enum>.IMAGENET1K_V1)): `pretrained` becomes
 * `weights`, with torchvision's two warnings. Passing both is an error (torchvision hands the stray `pretrained` on
 * to ResNet.__init__, which rejects it).
 */
function legacyWeights(name: string, o: BuilderOptions): Weights | string | null {
  if (o.pretrained === undefined) return o.weights ?? null;
  if (o.weights !== undefined) {
    throw new TypeError(`${name}() got both 'weights' and the deprecated 'pretrained' (torchvision: ResNet.__init__() got an unexpected keyword argument 'pretrained'); pass 'weights' only`);
  }
  const w = o.pretrained ? legacyPretrainedWeights(name) : null;
  process.emitWarning("The parameter 'pretrained' is deprecated since 0.13 and may be removed in the future, please use 'weights' instead.", 'DeprecationWarning');
  let msg = 'Arguments other than a weight enum or `None` for \'weights\' are deprecated since 0.13 and may be removed in the future. ' +
    `The current behavior is equivalent to passing \`weights=${w ?? 'None'}\`.`;
  if (w) msg += ` You can also use \`weights=${w.enumName}.DEFAULT\` to get the most up-to-date weights.`;
  process.emitWarning(msg, 'DeprecationWarning');
  return w;
}

/**
 * Verify, fix num_classes from the categories, build, then load the checkpoint strictly (torchvision's _resnet).
 * torchvision draws the random initial weights and then overwrites them all; here the model is built without
 * drawing them (skipInit) and takes the freshly read checkpoint's tensors as its own (assign: no copy), which gives
 * the same model in a fraction of the time (bench/pth.bench.ts). Unlike torchvision, no generator is advanced.
 */
async function buildPretrained(make: (o: ResNetOptions) => ResNet, e: WeightsEnum, value: Weights | string, o: ResNetOptions, progress: boolean): Promise<ResNet> {
  const w = e.verify(value)!;
  overwriteNamedParam(o, 'numClasses', w.meta.categories.length);
  const model = skipInit(() => make({ ...o, numClasses: w.meta.categories.length }));
  model.loadStateDict(await w.getStateDict({ progress, checkHash: true }), { assign: true });
  return model;
}

function builder(name: string, block: Block, layers: number[], fixedArgs?: { groups: number; widthPerGroup: number }): ResNetBuilder {
  const weightsEnum = getModelWeights(name);
  const make = (o: ResNetOptions): ResNet => {
    if (fixedArgs) {
      overwriteNamedParam(o, 'groups', fixedArgs.groups);
      overwriteNamedParam(o, 'widthPerGroup', fixedArgs.widthPerGroup);
    }
    return new ResNet(block, layers, { ...o, ...fixedArgs });
  };
  const fn = (o: BuilderOptions = {}): ResNet | Promise<ResNet> => {
    const { weights, progress, pretrained, ...rest } = o;
    // with weights the result is a Promise, so every error (verify, num_classes, download) rejects it
    if ((weights !== undefined && weights !== null) || !!pretrained) {
      return (async () => buildPretrained(make, weightsEnum, legacyWeights(name, o)!, rest, progress ?? true))();
    }
    legacyWeights(name, o);
    return make(rest);
  };
  Object.defineProperty(fn, 'name', { value: name });
  return Object.assign(fn, { weightsEnum }) as ResNetBuilder;
}

export const resnet18 = builder('resnet18', BasicBlock, [2, 2, 2, 2]);
export const resnet34 = builder('resnet34', BasicBlock, [3, 4, 6, 3]);
export const resnet50 = builder('resnet50', Bottleneck, [3, 4, 6, 3]);
export const resnet101 = builder('resnet101', Bottleneck, [3, 4, 23, 3]);
export const resnet152 = builder('resnet152', Bottleneck, [3, 8, 36, 3]);
export const resnext50_32x4d = builder('resnext50_32x4d', Bottleneck, [3, 4, 6, 3], { groups: 32, widthPerGroup: 4 });
export const resnext101_32x8d = builder('resnext101_32x8d', Bottleneck, [3, 4, 23, 3], { groups: 32, widthPerGroup: 8 });
export const resnext101_64x4d = builder('resnext101_64x4d', Bottleneck, [3, 4, 23, 3], { groups: 64, widthPerGroup: 4 });
export const wide_resnet50_2 = builder('wide_resnet50_2', Bottleneck, [3, 4, 6, 3], { groups: 1, widthPerGroup: 64 * 2 });
export const wide_resnet101_2 = builder('wide_resnet101_2', Bottleneck, [3, 4, 23, 3], { groups: 1, widthPerGroup: 64 * 2 });

/** torchvision's @register_model registry for this family. */
export const MODELS: Readonly<Record<string, ResNetBuilder>> = Object.freeze({
  resnet18, resnet34, resnet50, resnet101, resnet152,
  resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2, wide_resnet101_2,
});

/** torchvision's list_models: the registered names, sorted. */
export function listModels(): string[] {
  return Object.keys(MODELS).sort();
}

/** torchvision's get_model_builder (the name in any case). */
export function getModelBuilder(name: string): ResNetBuilder {
  const key = String(name).toLowerCase();
  const f = Object.prototype.hasOwnProperty.call(MODELS, key) ? MODELS[key] : undefined;
  if (!f) throw new RangeError(`Unknown model ${key}; known: ${listModels().join(', ')}`);
  return f;
}

/** torchvision's get_model: getModel('resnet50', { weights: 'DEFAULT' }) resolves to the loaded model. */
export function getModel(name: string, o?: PlainOptions): ResNet;
export function getModel(name: string, o: PretrainedOptions): Promise<ResNet>;
export function getModel(name: string, o?: BuilderOptions): ResNet | Promise<ResNet>;
export function getModel(name: string, o: BuilderOptions = {}): ResNet | Promise<ResNet> {
  return getModelBuilder(name)(o);
}
