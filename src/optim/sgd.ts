// SGD with momentum, dampening, Nesterov momentum, weight decay (L2, added to the gradient) and maximize, as
// torch.optim.SGD in PyTorch 1.13 (its single-tensor path). Per parameter p with gradient g:
//   g <- -g if maximize;  g <- g + weight_decay * p
//   b <- g (first step) or momentum * b + (1 - dampening) * g;  g <- g + momentum * b if nesterov, else b
//   p <- p - lr * g
// Without momentum the state still records momentum_buffer: None for every stepped parameter, as PyTorch does.
// Math in double per element, stored in the parameter's dtype; one pass over each parameter.

import { Tensor } from '../tensor/tensor.js';
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
      const lr = g.lr, momentum = g.momentum as number, dampening = g.dampening as number;
      const wd = g.weight_decay as number, nesterov = g.nesterov as boolean, sign = g.maximize ? -1 : 1;
      for (const p of g.params) {
        const grad = gradOf(p);
        if (grad === null) continue;
        const st = this.state.get(p) ?? {};
        this.state.set(p, st);
        const w = floatView(p);
        const n = w.length;
        if (momentum === 0) {
          for (let i = 0; i < n; i++) w[i] -= lr * (sign * grad[i] + wd * w[i]);
          st.momentum_buffer = null;
        } else if (!st.momentum_buffer) {
          const buf = new Tensor(new (w.constructor as Float32ArrayConstructor)(n), p.shape, { dtype: p.dtype });
          const b = floatView(buf);
          for (let i = 0; i < n; i++) b[i] = sign * grad[i] + wd * w[i];
          for (let i = 0; i < n; i++) w[i] -= lr * (nesterov ? b[i] + momentum * b[i] : b[i]);
          st.momentum_buffer = buf;
        } else {
          const b = floatView(st.momentum_buffer);
          const keep = 1 - dampening;
          // two specialised loops: this is memory-bound, a branch per element costs ~2x
          if (nesterov) {
            for (let i = 0; i < n; i++) {
              const d = sign * grad[i] + wd * w[i];
              const bi = (b[i] = momentum * b[i] + keep * d);
              w[i] -= lr * (d + momentum * bi);
            }
          } else {
            for (let i = 0; i < n; i++) {
              const bi = (b[i] = momentum * b[i] + keep * (sign * grad[i] + wd * w[i]));
              w[i] -= lr * bi;
            }
          }
          st.momentum_buffer.bumpVersion();
        }
        p.bumpVersion();
      }
    }
  }
}
