// A seedable random generator: xoshiro128** seeded through splitmix32, Box-Muller for normals.
// Reproducible across runs and platforms (pure 32-bit integer arithmetic). It is not bit-compatible with
// PyTorch's mt19937/Philox: tests that compare with PyTorch pass weights through files, not through seeds.

export class Generator {
  private s = new Uint32Array(4);
  private spare: number | null = null;
  private seed0 = 0;

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /** Reset the stream; any finite number is accepted (it is reduced to 53 bits, then mixed). */
  manualSeed(seed: number): this {
    if (!Number.isFinite(seed)) throw new TypeError(`Expected a finite number for seed but received ${String(seed)} of type ${typeof seed}`);
    this.seed0 = seed;
    let x = (Math.trunc(seed) >>> 0) ^ Math.trunc(seed / 4294967296);
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
    this.spare = null;
    return this;
  }

  initialSeed(): number {
    return this.seed0;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  randint(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Expected a positive integer bound but received ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Snapshot of the full state, to resume a stream exactly (checkpoints, data loaders). */
  getState(): number[] {
    return [...this.s, this.spare === null ? NaN : this.spare, this.seed0];
  }

  setState(st: readonly number[]): this {
    if (!Array.isArray(st) || st.length !== 6) throw new TypeError('Expected a generator state of 6 numbers (from getState())');
    for (let i = 0; i < 4; i++) this.s[i] = st[i] >>> 0;
    this.spare = Number.isNaN(st[4]) ? null : st[4];
    this.seed0 = st[5];
    return this;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The default generator used when none is passed (PyTorch's torch.manual_seed analogue). */
export const defaultGenerator = new Generator(0);

export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}
