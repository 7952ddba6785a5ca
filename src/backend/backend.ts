// The Backend interface: the only seam between ops/ and the code that computes. A backend is a table of
// functions over flat, contiguous Float32Arrays (row-major) plus POD parameter objects; nothing JS-shaped
// crosses it. ops/ validates every argument (shapes, ranges, sizes of every array) before calling, so
// implementations trust their inputs. Outputs are always fully written (never read before being written,
// unless the member says it accumulates).
//
// Layout letters: N batch, C input channels, H/W input height/width, O output channels, KH/KW kernel,
// OH/OW output height/width. Weights are OIHW: (O, C/groups, KH, KW).

export type BackendName = 'js' | 'native';

export interface Conv2dParams {
  N: number; C: number; H: number; W: number;
  O: number; KH: number; KW: number;
  OH: number; OW: number;
  strideH: number; strideW: number;
  padH: number; padW: number;
  dilationH: number; dilationW: number;
  groups: number;
}

/** What is applied to the convolution's accumulator before it is stored: y = relu?(acc + bias[o] + residual). */
export interface Conv2dEpilogue {
  /** (O) or null. */
  bias: Float32Array | null;
  /** (N, O, OH, OW) or null; may not alias y. */
  residual: Float32Array | null;
  relu: boolean;
}

/**
 * Identity and version of a weight tensor. A backend may keep a repacked copy of `w` keyed on `key` (held weakly)
 * and reuse it while `version` is unchanged. Callers bump the version on every in-place change of the weight.
 */
export interface PackKey {
  key: object;
  version: number;
}

export interface Pool2dParams {
  N: number; C: number; H: number; W: number;
  OH: number; OW: number;
  KH: number; KW: number;
  strideH: number; strideW: number;
  padH: number; padW: number;
  dilationH: number; dilationW: number;
}

/** torch.optim.SGD's options for one step of one parameter; `first` is its first step with momentum (buf <- d). */
export interface SgdStepParams {
  lr: number; momentum: number; dampening: number; weightDecay: number;
  nesterov: boolean; maximize: boolean; first: boolean;
}

/** torch.optim.AdamW's options for one step t of one parameter: stepSize = lr / (1 - beta1^t), biasCorrection2Sqrt = sqrt(1 - beta2^t). */
export interface AdamwStepParams {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  stepSize: number; biasCorrection2Sqrt: number; maximize: boolean;
}

export interface Backend {
  readonly name: BackendName;

  /**
   * Storage for n float32 values that the caller will fully write before reading; contents unspecified (they may
   * be an earlier tensor's values). Exactly n long, over a buffer of its own (byteOffset 0). ops/ allocates every
   * output that a backend member fully writes this way; js returns new Float32Array(n), native reuses memory from
   * a pool (see native.ts).
   */
  alloc(n: number): Float32Array;

  /** y (N,O,OH,OW) = epilogue(conv(x (N,C,H,W), w (O,C/groups,KH,KW))). Zero padding. */
  conv2d(x: Float32Array, w: Float32Array, p: Conv2dParams, ep: Conv2dEpilogue, y: Float32Array, pack?: PackKey): void;

  /**
   * Per-channel normalisation of x (N,C,HW): y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c], then
   * relu if asked. weight/bias null mean 1/0. Used in eval mode (running stats) and train mode (batch stats).
   */
  batchNorm(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array,
    weight: Float32Array | null, bias: Float32Array | null, eps: number, relu: boolean, y: Float32Array): void;

  /** Per-channel batch mean and biased variance of x (N,C,HW), accumulated in double, written as float32. */
  batchNormStats(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array): void;

  /**
   * Max pooling with -inf padding. y (N,C,OH,OW). `indices` (same size as y) or null receives the argmax as a flat
   * index h*W + w inside its (H,W) plane, as PyTorch's return_indices (first maximum wins; NaN propagates).
   */
  maxPool2d(x: Float32Array, p: Pool2dParams, y: Float32Array, indices: Int32Array | null): void;

  /** PyTorch's adaptive average pooling: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)). y (N,C,OH,OW). */
  adaptiveAvgPool2d(x: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number, y: Float32Array): void;

  /**
   * C (M,N) = alpha * op(A) op(B) + beta * C, all row-major and dense. op(A) is (M,K): A is (M,K), or (K,M) when
   * transA. op(B) is (K,N): B is (K,N), or (N,K) when transB. beta = 0 means C is not read.
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void;

  /** y[i] = max(x[i], 0) for i < n; y may be x. */
  relu(x: Float32Array, y: Float32Array, n: number): void;

  /** y[i] = a[i] + b[i] (then relu if asked) for i < n; y may be a or b. */
  add(a: Float32Array, b: Float32Array, y: Float32Array, n: number, relu: boolean): void;

  // ---- backward kernels (training). Same layouts as the forward members; every output is fully written. ----

  /** dx (N,C,H,W) = gradient of conv2d w.r.t. its input, from dy (N,O,OH,OW) and w (O,C/groups,KH,KW). */
  conv2dBackwardData(dy: Float32Array, w: Float32Array, p: Conv2dParams, dx: Float32Array, pack?: PackKey): void;

  /**
   * dw (O,C/groups,KH,KW) = gradient of conv2d w.r.t. its weight, from x (N,C,H,W) and dy (N,O,OH,OW);
   * db (O) = sum of dy over N, OH, OW when not null.
   */
  conv2dBackwardWeight(x: Float32Array, dy: Float32Array, p: Conv2dParams, dw: Float32Array, db: Float32Array | null): void;

  /**
   * Training-mode batch-norm backward over x (N,C,HW) normalised with the batch statistics `mean` and
   * `invstd` = 1/sqrt(var + eps) (per channel): dx; dweight = sum(dy * xhat), dbias = sum(dy) when not null.
   * weight null means 1. y (N,C,HW) or null: the output of a relu fused into the forward; dy counts only where
   * y > 0 (relu's backward folded in).
   */
  batchNormBackward(x: Float32Array, dy: Float32Array, y: Float32Array | null, N: number, C: number, HW: number, mean: Float32Array, invstd: Float32Array,
    weight: Float32Array | null, dx: Float32Array, dweight: Float32Array | null, dbias: Float32Array | null): void;

  /** dx (N,C,H,W): dy (N,C,OH,OW) scattered (summed) to the argmax positions `indices` that maxPool2d recorded. */
  maxPool2dBackward(dy: Float32Array, indices: Int32Array, p: Pool2dParams, dx: Float32Array): void;

  /** dx (N,C,H,W): each dy (N,C,OH,OW) value spread evenly over its adaptive-average-pool bin (bins may overlap). */
  adaptiveAvgPool2dBackward(dy: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number, dx: Float32Array): void;

  /** dx[i] = y[i] > 0 ? dy[i] : 0 for i < n (y is relu's output); dx may be dy. */
  reluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, n: number): void;

  // ---- optimizer steps: one parameter (n), updated in place with its state; arrays do not alias. ----

  /**
   * SGD: d = ±g + weightDecay * p; with momentum, buf = first ? d : momentum * buf + (1 - dampening) * d and
   * d = nesterov ? d + momentum * buf : buf (buf null when momentum is 0); p -= lr * d.
   */
  sgdStep(p: Float32Array, g: Float32Array, buf: Float32Array | null, n: number, o: SgdStepParams): void;

  /**
   * AdamW: p *= 1 - lr * weightDecay; m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g^2;
   * vmax = max(vmax, v) when not null (amsgrad); p -= stepSize * m / (sqrt(vmax or v) / biasCorrection2Sqrt + eps).
   */
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, n: number, o: AdamwStepParams): void;

  /** Worker threads used by this backend's kernels (1 for js). */
  numThreads(): number;
  /** Change the thread count (clamped to [1, cores * 2]); a no-op for single-threaded backends. */
  setNumThreads(n: number): void;
}
