// AdamW (decoupled weight decay), as torch.optim.AdamW in PyTorch 1.13 (its single-tensor, non-capturable path).
// Per parameter p with gradient g, at step t (state.step, a 0-d float32 tensor as torch 1.13 stores it):
//   g <- -g if maximize;  p <- p * (1 - lr * weight_decay)
//   m <- beta1 * m + (1 - beta1) * g;  v <- beta2 * v + (1 - beta2) * g^2;  vmax <- max(vmax, v) if amsgrad
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)
// State keys (step, exp_avg, exp_avg_sq, max_exp_avg_sq) and group keys (lr, betas, eps, weight_decay, amsgrad,
// foreach, maximize, capturable) are torch's, in torch's order. The arithmetic is ops/optim.ts's adamwStep: float32
// on native, as torch's own step (up to FMA rounding); double per element on js (a few float32 ulps from torch).

import { zeros } from '../tensor/creation.js';
import { Tensor } from '../tensor/tensor.js';
import { adamwStep } from '../ops/optim.js';
import { Optimizer, bool, floatView, gradOf, num, type ParamGroupInput } from './optimizer.js';

export interface AdamWOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

export class AdamW extends Optimizer {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, o: AdamWOptions = {}) {
    super(params, {
      lr: o.lr ?? 1e-3, betas: [...(o.betas ?? [0.9, 0.999])], eps: o.eps ?? 1e-8, weight_decay: o.weightDecay ?? 1e-2,
      amsgrad: o.amsgrad ?? false, foreach: null, maximize: o.maximize ?? false, capturable: false,
    });
  }

  protected validateGroup(g: Record<string, unknown>): void {
    num(g, 'lr', 0);
    num(g, 'eps', 0);
    const b = g.betas;
    if (!Array.isArray(b) || b.length !== 2) throw new TypeError(`Expected a pair of numbers for betas but received ${String(b)}`);
    num({ 'beta parameter at index 0': b[0] }, 'beta parameter at index 0', 0, 1, true);
    num({ 'beta parameter at index 1': b[1] }, 'beta parameter at index 1', 0, 1, true);
    num(g, 'weight_decay', 0);
    bool(g, 'amsgrad');
    bool(g, 'maximize');
  }

  step(): void {
    for (const g of this.paramGroups) {
      const lr = g.lr, eps = g.eps as number, wd = g.weight_decay as number, amsgrad = g.amsgrad as boolean;
      const [beta1, beta2] = g.betas as number[];
      for (const p of g.params) {
        const grad = gradOf(p);
        if (grad === null) continue;
        let st = this.state.get(p);
        if (!st || Object.keys(st).length === 0) {
          st = { step: new Tensor(new Float32Array([0]), []), exp_avg: zeros(p.shape, { dtype: p.dtype }), exp_avg_sq: zeros(p.shape, { dtype: p.dtype }) };
          if (amsgrad) st.max_exp_avg_sq = zeros(p.shape, { dtype: p.dtype });
          this.state.set(p, st);
        }
        const stepT = st.step!;
        stepT.data[stepT.offset] = (stepT.data[stepT.offset] as number) + 1;
        stepT.bumpVersion();
        const t = stepT.data[stepT.offset] as number;
        const stepSize = lr / (1 - beta1 ** t);
        const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
        const w = floatView(p), m = floatView(st.exp_avg!), v = floatView(st.exp_avg_sq!);
        if (amsgrad && !st.max_exp_avg_sq) throw new Error('AdamW: amsgrad is on but the state has no max_exp_avg_sq (a state dict saved without amsgrad?)');
        const vmax = amsgrad ? floatView(st.max_exp_avg_sq!) : null;
        adamwStep(w, grad, m, v, vmax, { lr, beta1, beta2, eps, weightDecay: wd, stepSize, biasCorrection2Sqrt: bc2Sqrt, maximize: !!g.maximize });
        for (const s of [st.exp_avg, st.exp_avg_sq, st.max_exp_avg_sq]) s?.bumpVersion();
        p.bumpVersion();
      }
    }
  }
}
