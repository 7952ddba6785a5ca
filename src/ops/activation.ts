// Activations: relu on the backend (in place allowed), and the functions transformers' ACT2FN offers for CNNs,
// written out in double precision and rounded once. relu records rule relu (its output is the mask), the others
// rule unary with their derivative from ops/grad.ts's DERIVATIVES table, under the names used here.

import { Tensor } from '../tensor/tensor.js';
import { checkInplace, needsGrad, record } from '../tensor/autograd.js';
import { getBackend } from '../backend/select.js';
import { outputBuffer } from './recycle.js';
import { expectTensor, f32 } from './check.js';
import { unaryMap, unaryOp } from './elementwise.js';

const relu1 = (v: number) => (v > 0 || Number.isNaN(v) ? v : 0);

/**
 * max(x, 0). inplace (torchvision's ReLU(inplace=True)) overwrites x and makes it the output: refused for a leaf
 * that requires grad while recording, as in PyTorch; in a graph, x's node becomes relu's (which saves x as its
 * output), so a later in-place change of x is caught at backward by its version counter.
 */
export function relu(x: Tensor, inplace = false): Tensor {
  expectTensor(x, 'relu input');
  if (x.dtype !== 'float32') {
    if (x.dtype !== 'float64') return unaryMap(x, relu1, { keepInt: true });
    const out = unaryMap(x, relu1);
    if (needsGrad(x)) record('relu', [x], out, { y: out });
    return inplace ? x.copy_(out) : out;
  }
  if (inplace && x.isContiguous()) {
    checkInplace(x, 'relu_');
    const d = x.data.subarray(x.offset, x.offset + x.numel) as Float32Array;
    getBackend().relu(d, d, d.length);
    x.bumpVersion();
    if (needsGrad(x)) record('relu', [x], x, { y: x });
    return x;
  }
  const be = getBackend();
  const y = outputBuffer(x.numel);
  be.relu(f32(x, 'relu input'), y, y.length);
  const out = new Tensor(y, x.shape);
  if (needsGrad(x)) record('relu', [x], out, { y: out });
  return inplace ? x.copy_(out) : out;
}

/** erf to about 1e-15: Maclaurin series below |x| = 2.5, Lentz's continued fraction for erfc above. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  if (a < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = a, sum = a;
    const x2 = a * a;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + 2/(a + ...)))))
  const tiny = 1e-300;
  let f = a, C = a, D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = a + an * D;
    D = D === 0 ? tiny : D;
    C = a + an / C;
    C = C === 0 ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const sigmoid1 = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
const softplus1 = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const geluTanh1 = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));

export const gelu = (x: Tensor): Tensor => unaryOp('gelu', x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
export const geluTanh = (x: Tensor): Tensor => unaryOp('geluTanh', x, geluTanh1);
export const quickGelu = (x: Tensor): Tensor => unaryOp('quickGelu', x, (v) => v * sigmoid1(1.702 * v));
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, sigmoid1);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x, (v) => v * sigmoid1(v));
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, Math.tanh);
export const mish = (x: Tensor): Tensor => unaryOp('mish', x, (v) => v * Math.tanh(softplus1(v)));
export const relu6 = (x: Tensor): Tensor => unaryOp('relu6', x, (v) => (Number.isNaN(v) ? v : Math.min(Math.max(v, 0), 6)));
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unaryOp('leakyRelu', x, (v) => (v >= 0 ? v : v * slope), [slope]);
export const relu2 = (x: Tensor): Tensor => unaryOp('relu2', x, (v) => (v > 0 ? v * v : 0));
export const elu = (x: Tensor, alpha = 1): Tensor => unaryOp('elu', x, (v) => (v > 0 ? v : alpha * Math.expm1(v)), [alpha]);
