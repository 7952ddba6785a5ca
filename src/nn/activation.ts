// Activation modules beyond ReLU: the ones transformers' ACT2FN maps names to for CNN configs.

import type { Tensor } from '../tensor/tensor.js';
import * as F from '../ops/index.js';
import { Module } from './module.js';
import { Identity, ReLU } from './layers.js';

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  override forward(x: Tensor): Tensor {
    return this.approximate === 'tanh' ? F.geluTanh(x) : F.gelu(x);
  }
}

export class SiLU extends Module {
  override forward(x: Tensor): Tensor {
    return F.silu(x);
  }
}

export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
}

export class ReLU6 extends Module {
  override forward(x: Tensor): Tensor {
    return F.relu6(x);
  }
}

export class Mish extends Module {
  override forward(x: Tensor): Tensor {
    return F.mish(x);
  }
}

export class QuickGELU extends Module {
  override forward(x: Tensor): Tensor {
    return F.quickGelu(x);
  }
}

export class ReLUSquared extends Module {
  override forward(x: Tensor): Tensor {
    return F.relu2(x);
  }
}

/** transformers' ACT2FN: activation name -> module factory. */
export const ACT2FN: Readonly<Record<string, () => Module>> = Object.freeze({
  relu: () => new ReLU(),
  relu6: () => new ReLU6(),
  relu2: () => new ReLUSquared(),
  gelu: () => new GELU(),
  gelu_python: () => new GELU(),
  gelu_new: () => new GELU('tanh'),
  gelu_pytorch_tanh: () => new GELU('tanh'),
  gelu_fast: () => new GELU('tanh'),
  quick_gelu: () => new QuickGELU(),
  silu: () => new SiLU(),
  swish: () => new SiLU(),
  sigmoid: () => new Sigmoid(),
  tanh: () => new Tanh(),
  leaky_relu: () => new LeakyReLU(),
  mish: () => new Mish(),
  linear: () => new Identity(),
});

/** The module for an activation name, with an error listing the known names. */
export function getActivation(name: string): Module {
  const f = Object.prototype.hasOwnProperty.call(ACT2FN, name) ? ACT2FN[name] : undefined;
  if (!f) throw new RangeError(`function ${name} not found in ACT2FN mapping ${Object.keys(ACT2FN).join(', ')}`);
  return f();
}
