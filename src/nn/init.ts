// Parameter initialisation, as torch.nn.init: the fan and gain rules are PyTorch's, the random stream is ours
// (seedable through the generator argument or manualSeed()).

import type { Tensor } from '../tensor/tensor.js';
import { type Generator, defaultGenerator } from '../tensor/random.js';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu';

/** torch.nn.init._calculate_fan_in_and_fan_out: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new RangeError(`Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (shape [${t.shape}])`);
  const rf = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * rf, fanOut: t.shape[0] * rf };
}

/** torch.nn.init.calculate_gain. */
export function calculateGain(nl: Nonlinearity, param?: number): number {
  switch (nl) {
    case 'linear': case 'conv2d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': {
      const a = param ?? 0.01;
      return Math.sqrt(2 / (1 + a * a));
    }
  }
}

let skipping = 0;

/**
 * Build modules without drawing their random initial values, as torch.nn.utils.skip_init: inside `build`, uniform_,
 * normal_ and the kaiming_* initialisers leave tensors as allocated (zeros) and advance no generator; constant_
 * still runs (BatchNorm's 1 and 0). For a model whose every parameter a state dict will then overwrite
 * (`skipInit(() => resnet50()).loadStateDict(sd)` gives the same model as `resnet50().loadStateDict(sd)`), where
 * drawing ~25M random numbers would take most of the loading time. Synchronous: `build` must not be async.
 */
export function skipInit<T>(build: () => T): T {
  skipping++;
  try {
    return build();
  } finally {
    skipping--;
  }
}

function fillWith(t: Tensor, f: () => number): Tensor {
  const d = t.data as Float32Array;
  if (!t.isContiguous()) throw new RangeError('init: expected a contiguous tensor');
  if (skipping) return t;
  for (let i = t.offset, end = t.offset + t.numel; i < end; i++) d[i] = f(); // numel is a getter: hoisted
  return t.bumpVersion();
}

export function uniform_(t: Tensor, a = 0, b = 1, g: Generator = defaultGenerator): Tensor {
  return fillWith(t, () => a + (b - a) * g.uniform());
}

export function normal_(t: Tensor, mean = 0, std = 1, g: Generator = defaultGenerator): Tensor {
  return fillWith(t, () => mean + std * g.normal());
}

export function constant_(t: Tensor, v: number): Tensor {
  return t.fill_(v);
}

export interface KaimingOptions {
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = fans(t);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  return calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan);
}

/** N(0, gain / sqrt(fan)), as kaiming_normal_ (ResNet uses mode fan_out, nonlinearity relu). */
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o), o.generator);
}

/** U(-b, b) with b = sqrt(3) * gain / sqrt(fan), as kaiming_uniform_ (the default Conv2d/Linear init uses a = sqrt(5)). */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound, o.generator);
}
