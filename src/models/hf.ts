// transformers' ResNet (models/resnet/modeling_resnet.py), module for module: the same attribute names, so state
// dicts load key for key (resnet.embedder.embedder.convolution.weight, resnet.encoder.stages.0.layers.0.shortcut...,
// classifier.1.weight), the same forward outputs and the same errors. The config lives in hf-config.ts.
// Quirks kept on purpose: the convolutions inside a layer always use relu (ResNetConvLayer's default); hidden_act is
// used only by the stem and by the activation after each residual add. downsample_in_bottleneck puts the stride on
// the first 1x1 convolution instead of the 3x3. Eval mode folds every conv+BN and runs the residual add and a relu
// in the convolution's epilogue (nn/fused.ts); other activations run after it. Training mode runs module by module.
// Outputs are objects with camelCase fields (lastHiddenState, poolerOutput, hiddenStates, loss, logits,
// featureMaps) where a field transformers leaves None is absent; returnDict: false gives the tuple instead.

import type { Tensor } from '../tensor/tensor.js';
import { Generator, defaultGenerator } from '../tensor/random.js';
import * as F from '../ops/index.js';
import { describe, expectTensor } from '../ops/check.js';
import { Module, hasInstanceForward } from '../nn/module.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, ModuleList, Sequential } from '../nn/layers.js';
import { getActivation } from '../nn/activation.js';
import { convBnAct } from '../nn/fused.js';
import { constant_, kaimingNormal_ } from '../nn/init.js';
import { ResNetConfig, getAlignedOutputFeaturesOutputIndices } from './hf-config.js';
import { type FromPretrainedOptions, type SavePretrainedOptions, fromPretrained, savePretrained } from './pretrained.js';

export * from './hf-config.js';

export class ResNetConvLayer extends Module {
  convolution: Conv2d;
  normalization: BatchNorm2d;
  activation: Module;

  constructor(inChannels: number, outChannels: number, kernelSize = 3, stride = 1, activation: string | null = 'relu') {
    super();
    this.convolution = new Conv2d(inChannels, outChannels, kernelSize, { stride, padding: Math.floor(kernelSize / 2), bias: false });
    this.normalization = new BatchNorm2d(outChannels);
    this.activation = activation !== null ? getActivation(activation) : new Identity();
  }

  override forward(input: Tensor): Tensor {
    return convBnAct(this.convolution, this.normalization, input, { act: this.activation });
  }
}

/** The stem: one aggressive convolution (7x7, stride 2) and a 3x3 max pool. */
export class ResNetEmbeddings extends Module {
  embedder: ResNetConvLayer;
  pooler: MaxPool2d;
  readonly numChannels: number;

  constructor(config: ResNetConfig) {
    super();
    this.embedder = new ResNetConvLayer(config.numChannels, config.embeddingSize, 7, 2, config.hiddenAct);
    this.pooler = new MaxPool2d(3, { stride: 2, padding: 1 });
    this.numChannels = config.numChannels;
  }

  override forward(pixelValues: Tensor): Tensor {
    expectTensor(pixelValues, 'pixel_values (batch, channels, height, width)', { ndim: 4 });
    if (pixelValues.shape[1] !== this.numChannels) {
      throw new RangeError('Make sure that the channel dimension of the pixel values match with the one set in the configuration.');
    }
    return this.pooler.forward(this.embedder.forward(pixelValues));
  }
}

/** Projects the residual to the output's channels (and stride) with a 1x1 convolution and a batch norm. */
export class ResNetShortCut extends Module {
  convolution: Conv2d;
  normalization: BatchNorm2d;

  constructor(inChannels: number, outChannels: number, stride = 2) {
    super();
    this.convolution = new Conv2d(inChannels, outChannels, 1, { stride, bias: false });
    this.normalization = new BatchNorm2d(outChannels);
  }

  override forward(input: Tensor): Tensor {
    return convBnAct(this.convolution, this.normalization, input);
  }
}

/**
 * activation(layer(x) + shortcut(x)) for both layer types. The last ResNetConvLayer has no activation of its own,
 * so its conv+BN, the residual add and the layer's activation run as one fused call.
 */
function residualForward(shortcut: Module, layer: Sequential, activation: Module, x: Tensor): Tensor {
  const convs = layer.children();
  let h = x;
  for (let i = 0; i < convs.length - 1; i++) h = convs[i].forward(h) as Tensor;
  const residual = shortcut.forward(x) as Tensor;
  const last = convs[convs.length - 1];
  if (last instanceof ResNetConvLayer && last.activation instanceof Identity && !hasInstanceForward(last) && !hasInstanceForward(last.activation)) {
    return convBnAct(last.convolution, last.normalization, h, { residual, act: activation });
  }
  h = F.addInPlace(last.forward(h) as Tensor, residual);
  return activation.forward(h) as Tensor;
}

function shouldApplyShortcut(inChannels: number, outChannels: number, stride: number): boolean {
  return inChannels !== outChannels || stride !== 1;
}

/** The classic residual layer: two 3x3 convolutions. */
export class ResNetBasicLayer extends Module {
  shortcut: Module;
  layer: Sequential;
  activation: Module;

  constructor(inChannels: number, outChannels: number, stride = 1, activation = 'relu') {
    super();
    this.shortcut = shouldApplyShortcut(inChannels, outChannels, stride) ? new ResNetShortCut(inChannels, outChannels, stride) : new Identity();
    this.layer = new Sequential(
      new ResNetConvLayer(inChannels, outChannels, 3, stride),
      new ResNetConvLayer(outChannels, outChannels, 3, 1, null),
    );
    this.activation = getActivation(activation);
  }

  override forward(hiddenState: Tensor): Tensor {
    return residualForward(this.shortcut, this.layer, this.activation, hiddenState);
  }
}

/**
 * The bottleneck layer: 1x1 down to out_channels / reduction, 3x3, 1x1 back up. The stride sits on the 3x3, or on
 * the first 1x1 with downsampleInBottleneck.
 */
export class ResNetBottleNeckLayer extends Module {
  shortcut: Module;
  layer: Sequential;
  activation: Module;

  constructor(inChannels: number, outChannels: number, stride = 1, activation = 'relu', reduction = 4, downsampleInBottleneck = false) {
    super();
    const reduces = Math.floor(outChannels / reduction);
    this.shortcut = shouldApplyShortcut(inChannels, outChannels, stride) ? new ResNetShortCut(inChannels, outChannels, stride) : new Identity();
    this.layer = new Sequential(
      new ResNetConvLayer(inChannels, reduces, 1, downsampleInBottleneck ? stride : 1),
      new ResNetConvLayer(reduces, reduces, 3, downsampleInBottleneck ? 1 : stride),
      new ResNetConvLayer(reduces, outChannels, 1, 1, null),
    );
    this.activation = getActivation(activation);
  }

  override forward(hiddenState: Tensor): Tensor {
    return residualForward(this.shortcut, this.layer, this.activation, hiddenState);
  }
}

/** A stage: `depth` stacked layers, the first of which may stride and change the channel count. */
export class ResNetStage extends Module {
  layers: Sequential;

  constructor(config: ResNetConfig, inChannels: number, outChannels: number, stride = 2, depth = 2) {
    super();
    const act = config.hiddenAct;
    const make = (i: number, o: number, s: number): Module => (config.layerType === 'bottleneck'
      ? new ResNetBottleNeckLayer(i, o, s, act, 4, config.downsampleInBottleneck)
      : new ResNetBasicLayer(i, o, s, act));
    this.layers = new Sequential(make(inChannels, outChannels, stride));
    // transformers passes no downsample_in_bottleneck to the other layers; with stride 1 it changes nothing
    for (let i = 1; i < depth; i++) this.layers.append(make(outChannels, outChannels, 1));
  }

  override forward(input: Tensor): Tensor {
    return this.layers.forward(input);
  }
}

export interface EncoderOutput {
  lastHiddenState: Tensor;
  /** The input and the output of every stage, when asked for. */
  hiddenStates?: Tensor[];
}

export class ResNetEncoder extends Module {
  stages: ModuleList;

  constructor(config: ResNetConfig) {
    super();
    this.stages = new ModuleList();
    // downsample_in_first_stage decides whether the first layer of the first stage strides
    this.stages.append(new ResNetStage(config, config.embeddingSize, config.hiddenSizes[0], config.downsampleInFirstStage ? 2 : 1, config.depths[0]));
    for (let i = 1; i < config.hiddenSizes.length; i++) {
      this.stages.append(new ResNetStage(config, config.hiddenSizes[i - 1], config.hiddenSizes[i], 2, config.depths[i]));
    }
  }

  override forward(hiddenState: Tensor, outputHiddenStates = false): EncoderOutput {
    const hiddenStates: Tensor[] | undefined = outputHiddenStates ? [] : undefined;
    for (const stage of this.stages) {
      hiddenStates?.push(hiddenState);
      hiddenState = stage.forward(hiddenState) as Tensor;
    }
    hiddenStates?.push(hiddenState);
    return hiddenStates ? { lastHiddenState: hiddenState, hiddenStates } : { lastHiddenState: hiddenState };
  }
}

export interface HFModelOptions {
  /** Random stream for the initial weights (default: the global generator, see manualSeed). */
  generator?: Generator;
  /** Shorthand for generator: new Generator(seed). */
  seed?: number;
}

export interface ForwardOptions {
  /** Also return the embedding output and every stage's output (default: config.outputHiddenStates). */
  outputHiddenStates?: boolean;
  /** false: a tuple (array) in transformers' order instead of an object. */
  returnDict?: boolean;
}

function generatorOf(o: HFModelOptions): Generator {
  return o.generator ?? (o.seed !== undefined ? new Generator(o.seed) : defaultGenerator);
}

/** transformers' ResNetPreTrainedModel: holds the config and initialises weights as _init_weights. */
export class ResNetPreTrainedModel extends Module {
  static readonly baseModelPrefix = 'resnet';
  static readonly mainInputName = 'pixel_values';
  config: ResNetConfig;

  constructor(config: ResNetConfig) {
    super();
    if (!(config instanceof ResNetConfig)) throw new TypeError(`Expected a ResNetConfig for config but received ${describe(config)}`);
    this.config = config;
  }

  /**
   * transformers' from_pretrained on this class: a model folder (config.json + model.safetensors / pytorch_model.bin,
   * or sharded) or a Hugging Face repo id ('org/name', through the cache). Prefixes, reports: models/pretrained.ts.
   */
  static fromPretrained<T extends ResNetPreTrainedModel>(this: new (config: ResNetConfig, o?: HFModelOptions) => T, src: string, o?: FromPretrainedOptions): Promise<T> {
    return fromPretrained(this, src, o);
  }

  /** transformers' save_pretrained: config.json and the weights (safetensors unless safeSerialization is false). */
  savePretrained(dir: string, o?: SavePretrainedOptions): string[] {
    return savePretrained(this, dir, o);
  }

  /** kaiming_normal_(fan_out, relu) for every convolution, weight 1 / bias 0 for every batch norm (Linear keeps its default init). */
  protected initWeights(g: Generator): void {
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu', generator: g });
      else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      }
    }
  }
}

export interface ResNetModelOutput {
  lastHiddenState: Tensor;
  /** Adaptive average pool of lastHiddenState to 1x1: (B, C, 1, 1). */
  poolerOutput: Tensor;
  hiddenStates?: Tensor[];
}

/** The bare ResNet: embeddings, encoder and the pooler, no head. */
export class ResNetModel extends ResNetPreTrainedModel {
  embedder: ResNetEmbeddings;
  encoder: ResNetEncoder;
  pooler: AdaptiveAvgPool2d;

  constructor(config: ResNetConfig, o: HFModelOptions = {}) {
    super(config);
    this.embedder = new ResNetEmbeddings(config);
    this.encoder = new ResNetEncoder(config);
    this.pooler = new AdaptiveAvgPool2d([1, 1]);
    this.initWeights(generatorOf(o));
  }

  override forward(pixelValues: Tensor, o: ForwardOptions & { returnDict: false }): (Tensor | Tensor[])[];
  override forward(pixelValues: Tensor, o?: ForwardOptions & { returnDict?: true }): ResNetModelOutput;
  override forward(pixelValues: Tensor, o: ForwardOptions): ResNetModelOutput | (Tensor | Tensor[])[];
  override forward(pixelValues: Tensor, o: ForwardOptions = {}): ResNetModelOutput | (Tensor | Tensor[])[] {
    const enc = this.encoder.forward(this.embedder.forward(pixelValues), o.outputHiddenStates ?? this.config.outputHiddenStates);
    const out: ResNetModelOutput = { lastHiddenState: enc.lastHiddenState, poolerOutput: this.pooler.forward(enc.lastHiddenState) };
    if (enc.hiddenStates) out.hiddenStates = enc.hiddenStates;
    return o.returnDict === false ? tuple(out.lastHiddenState, out.poolerOutput, out.hiddenStates) : out;
  }
}

function tuple(...v: (Tensor | Tensor[] | undefined)[]): (Tensor | Tensor[])[] {
  return v.filter((e): e is Tensor | Tensor[] => e !== undefined);
}

export interface ClassifierForwardOptions extends ForwardOptions {
  /** int64/int32 class indices (B), float multi-hot (B, numLabels), or float targets for regression. */
  labels?: Tensor;
}

export interface ImageClassifierOutput {
  loss?: Tensor;
  logits: Tensor;
  hiddenStates?: Tensor[];
}

/** ResNetModel with Flatten + Linear(hidden_sizes[-1], num_labels) on the pooled features (Identity for 0 labels). */
export class ResNetForImageClassification extends ResNetPreTrainedModel {
  readonly numLabels: number;
  resnet: ResNetModel;
  classifier: Sequential;

  constructor(config: ResNetConfig, o: HFModelOptions = {}) {
    super(config);
    const g = generatorOf(o);
    this.numLabels = config.numLabels;
    this.resnet = new ResNetModel(config, { generator: g });
    const last = config.hiddenSizes[config.hiddenSizes.length - 1];
    this.classifier = new Sequential(new Flatten(), config.numLabels > 0 ? new Linear(last, config.numLabels, { generator: g }) : new Identity());
  }

  override forward(pixelValues: Tensor, o: ClassifierForwardOptions & { returnDict: false }): (Tensor | Tensor[])[];
  override forward(pixelValues: Tensor, o?: ClassifierForwardOptions & { returnDict?: true }): ImageClassifierOutput;
  override forward(pixelValues: Tensor, o: ClassifierForwardOptions): ImageClassifierOutput | (Tensor | Tensor[])[];
  override forward(pixelValues: Tensor, o: ClassifierForwardOptions = {}): ImageClassifierOutput | (Tensor | Tensor[])[] {
    const outputs = this.resnet.forward(pixelValues, { outputHiddenStates: o.outputHiddenStates });
    const logits = this.classifier.forward(outputs.poolerOutput);
    const out: ImageClassifierOutput = { logits };
    if (o.labels !== undefined && o.labels !== null) out.loss = this.loss(logits, o.labels);
    if (outputs.hiddenStates) out.hiddenStates = outputs.hiddenStates;
    return o.returnDict === false ? tuple(out.loss, out.logits, out.hiddenStates) : out;
  }

  /** transformers' loss: problem_type inferred once (and stored on the config), then MSE, cross entropy or BCE. */
  private loss(logits: Tensor, labels: Tensor): Tensor {
    expectTensor(labels, 'labels');
    const c = this.config;
    if (c.problemType === null) {
      if (this.numLabels === 1) c.problemType = 'regression';
      else if (this.numLabels > 1 && (labels.dtype === 'int64' || labels.dtype === 'int32')) c.problemType = 'single_label_classification';
      else c.problemType = 'multi_label_classification';
    }
    switch (c.problemType) {
      case 'regression':
        return this.numLabels === 1 ? F.mseLoss(logits.squeeze(), labels.squeeze()) : F.mseLoss(logits, labels);
      case 'single_label_classification':
        return F.crossEntropy(logits.reshape([-1, this.numLabels]), labels.reshape([-1]));
      case 'multi_label_classification':
        return F.binaryCrossEntropyWithLogits(logits, labels);
    }
  }
}

export interface BackboneOutput {
  /** The hidden states named by outFeatures, in stage order. */
  featureMaps: Tensor[];
  hiddenStates?: Tensor[];
}

/** Feature maps of chosen stages, for detection and segmentation heads (transformers' BackboneMixin included). */
export class ResNetBackbone extends ResNetPreTrainedModel {
  readonly stageNames: string[];
  /** Channels of each stage: [embedding_size, ...hidden_sizes]. */
  readonly numFeatures: number[];
  embedder: ResNetEmbeddings;
  encoder: ResNetEncoder;
  #outFeatures: string[];
  #outIndices: number[];

  constructor(config: ResNetConfig, o: HFModelOptions = {}) {
    super(config);
    this.stageNames = [...config.stageNames];
    ({ outFeatures: this.#outFeatures, outIndices: this.#outIndices } = getAlignedOutputFeaturesOutputIndices(config.outFeatures, config.outIndices, this.stageNames));
    this.numFeatures = [config.embeddingSize, ...config.hiddenSizes];
    this.embedder = new ResNetEmbeddings(config);
    this.encoder = new ResNetEncoder(config);
    this.initWeights(generatorOf(o));
  }

  get outFeatures(): string[] {
    return [...this.#outFeatures];
  }

  set outFeatures(v: readonly string[]) {
    ({ outFeatures: this.#outFeatures, outIndices: this.#outIndices } = getAlignedOutputFeaturesOutputIndices(v, null, this.stageNames));
  }

  get outIndices(): number[] {
    return [...this.#outIndices];
  }

  set outIndices(v: readonly number[]) {
    ({ outFeatures: this.#outFeatures, outIndices: this.#outIndices } = getAlignedOutputFeaturesOutputIndices(null, v, this.stageNames));
  }

  /** Channels of every stage by name, whether it is an output or not. */
  get outFeatureChannels(): Record<string, number> {
    return Object.fromEntries(this.stageNames.map((s, i) => [s, this.numFeatures[i]]));
  }

  /** Channels of the output feature maps. */
  get channels(): number[] {
    const ch = this.outFeatureChannels;
    return this.#outFeatures.map((n) => ch[n]);
  }

  override forward(pixelValues: Tensor, o: ForwardOptions & { returnDict: false }): (Tensor[])[];
  override forward(pixelValues: Tensor, o?: ForwardOptions & { returnDict?: true }): BackboneOutput;
  override forward(pixelValues: Tensor, o: ForwardOptions): BackboneOutput | (Tensor[])[];
  override forward(pixelValues: Tensor, o: ForwardOptions = {}): BackboneOutput | (Tensor[])[] {
    const outputHiddenStates = o.outputHiddenStates ?? this.config.outputHiddenStates;
    const hiddenStates = this.encoder.forward(this.embedder.forward(pixelValues), true).hiddenStates!;
    const featureMaps = this.stageNames.flatMap((s, i) => (this.#outFeatures.includes(s) ? [hiddenStates[i]] : []));
    if (o.returnDict === false) return outputHiddenStates ? [featureMaps, hiddenStates] : [featureMaps];
    return outputHiddenStates ? { featureMaps, hiddenStates } : { featureMaps };
  }
}
