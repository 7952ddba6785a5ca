// SGD with momentum, dampening, Nesterov momentum, weight decay (L2, added to the gradient) and maximize, as
// torch.optim.SGD in PyTorch 1.13 (its single-tensor path). Per parameter p with gradient g:
//   g <- -g if maximize;  g <- g + weight_decay * p
//   b <- g (first step) or momentum * b + (1 - dampening) * g;  g <- g + momentum * b if nesterov, else b
//   p <- p - lr * g
// Without momentum the state still records momentum_buffer: None for every stepped parameter, as PyTorch does.
// The arithmetic is ops/optim.ts's sgdStep: one pass over each parameter on the active backend (float32 like
// PyTorch's own step on native; double per element on js).

import { Tensor } from '../tensor/tensor.js';
import { type SgdStepParams, sgdStep } from '../ops/optim.js';
import { Optimizer, bool, floatView, gradOf, num, type ParamGroupInput } from './optimizer.js';

export interface SGDOptions {
  /** Required unless every group sets its own. */
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

export class SGD extends Optimizer {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, o: SGDOptions = {}) {
    // key order is torch 1.13's defaults order (it shows in state dicts)
    super(params, {
      lr: o.lr, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, weight_decay: o.weightDecay ?? 0,
      nesterov: o.nesterov ?? false, maximize: o.maximize ?? false, foreach: null, differentiable: false,
    });
  }

  protected validateGroup(g: Record<string, unknown>): void {
    num(g, 'lr', 0);
    const momentum = num(g, 'momentum', 0);
    const dampening = num(g, 'dampening');
    num(g, 'weight_decay', 0);
    if (bool(g, 'nesterov') && (momentum <= 0 || dampening !== 0)) throw new RangeError('Nesterov momentum requires a momentum and zero dampening');
    bool(g, 'maximize');
  }

  step(): void {
    for (const g of this.paramGroups) {
      const o: SgdStepParams = {
        lr: g.lr, momentum: g.momentum as number, dampening: g.dampening as number, weightDecay: g.weight_decay as number,
        nesterov: g.nesterov as boolean, maximize: g.maximize as boolean, first: false,
      };
      for (const p of g.params) {
        const grad = gradOf(p);
        if (grad === null) continue;
        const st = this.state.get(p) ?? {};
        this.state.set(p, st);
        const w = floatView(p);
        if (o.momentum === 0) {
          sgdStep(w, grad, null, o);
          st.momentum_buffer = null;
        } else {
          const first = !st.momentum_buffer;
          if (first) st.momentum_buffer = new Tensor(new (w.constructor as Float32ArrayConstructor)(w.length), p.shape, { dtype: p.dtype });
          sgdStep(w, grad, floatView(st.momentum_buffer!), { ...o, first });
          st.momentum_buffer!.bumpVersion();
        }
        p.bumpVersion();
      }
    }
  }
}
