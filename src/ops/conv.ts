// conv2d: shape rules and checks as torch.nn.functional.conv2d, then one backend call. The optional epilogue
// (residual add, relu) lets inference fuse a block's tail into the convolution. Records rule conv2d (ops/grad.ts)
// for x, weight, bias and residual, saving only what the needed gradients read.

import { Tensor } from '../tensor/tensor.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { needsGrad, record } from '../tensor/autograd.js';
import type { Conv2dParams } from '../backend/backend.js';
import { describe, expectInt, expectTensor, pair } from './check.js';
import { floatData, floatDtype, kernelsFor, outputOf } from './kernels.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export interface ConvEpilogue {
  /** Added after the bias; shape of the output. */
  residual?: Tensor | null;
  relu?: boolean;
}

/** Output size of a convolution or pooling window along one axis (no ceil mode). */
export function convOutSize(size: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Resolve and validate conv2d arguments into the backend's flat parameters. */
export function conv2dParams(xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions): Conv2dParams {
  const [sh, sw] = pair(o.stride ?? 1, 'stride', 1);
  const [ph, pw] = pair(o.padding ?? 0, 'padding', 0);
  const [dh, dw] = pair(o.dilation ?? 1, 'dilation', 1);
  const groups = expectInt(o.groups ?? 1, 'groups', 1);
  const [N, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wShape;
  if (O % groups !== 0) throw new RangeError(`out_channels (${O}) must be divisible by groups (${groups})`);
  if (Cg * groups !== C) {
    throw new RangeError(`Given groups=${groups}, weight of size ${fmtShape(wShape)}, expected input${fmtShape(xShape)} to have ${Cg * groups} channels, but got ${C} channels instead`);
  }
  const OH = convOutSize(H, KH, sh, ph, dh), OW = convOutSize(W, KW, sw, pw, dw);
  if (OH < 1 || OW < 1 || H + 2 * ph < dh * (KH - 1) + 1 || W + 2 * pw < dw * (KW - 1) + 1) {
    throw new RangeError(`Calculated padded input size per channel: (${H + 2 * ph} x ${W + 2 * pw}). Kernel size: (${dh * (KH - 1) + 1} x ${dw * (KW - 1) + 1}). Kernel size can't be greater than actual input size`);
  }
  return { N, C, H, W, O, KH, KW, OH, OW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups };
}

/**
 * y = conv2d(x, weight) + bias [+ residual] [relu]. x is (N,C,H,W) or unbatched (C,H,W); weight (O,C/groups,KH,KW);
 * bias (O) or null.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}, ep: ConvEpilogue = {}): Tensor {
  expectTensor(x, 'conv2d input', { ndims: [3, 4] });
  expectTensor(weight, 'conv2d weight', { ndim: 4 });
  const dt = floatDtype(x, 'conv2d input');
  const unbatched = x.ndim === 3;
  const xs = unbatched ? x.unsqueeze(0) : x;
  const p = conv2dParams(xs.shape, weight.shape, o);
  if (bias !== null && bias !== undefined) {
    expectTensor(bias, 'conv2d bias', { ndim: 1 });
    if (bias.shape[0] !== p.O) throw new RangeError(`Expected a bias of shape [${p.O}] for conv2d but received ${describe(bias)}`);
  }
  const outShape = [p.N, p.O, p.OH, p.OW];
  let res: Float32Array | null = null;
  const residual = ep.residual ?? null;
  if (residual) {
    const r = unbatched && residual.ndim === 3 ? residual.unsqueeze(0) : residual;
    if (!shapeEq(r.shape, outShape)) throw new RangeError(`Expected a residual of shape ${fmtShape(outShape)} for conv2d but received ${describe(residual)}`);
    res = floatData(r, 'conv2d residual', dt);
  }
  const be = kernelsFor(dt, 'conv2d');
  const y = outputOf(dt, p.N * p.O * p.OH * p.OW);
  be.conv2d(floatData(xs, 'conv2d input', dt), floatData(weight, 'conv2d weight', dt), p,
    { bias: bias ? floatData(bias, 'conv2d bias', dt) : null, residual: res, relu: !!ep.relu }, y, { key: weight, version: weight.version });
  const out = new Tensor(y, outShape);
  if (needsGrad(x, weight, bias, residual)) {
    // dx reads the weight, dw reads the input, and a relu epilogue's mask reads the output
    record('conv2d', [x, weight, bias, residual], out, {
      x: weight.requiresGrad ? xs : null, w: x.requiresGrad ? weight : null, p, y: ep.relu ? out : null,
      xShape: x.shape, rShape: residual ? residual.shape : null, dtype: dt,
    });
  }
  return unbatched ? out.get(0) : out;
}
