// Datasets for tests/data/loader.test.ts that worker threads rebuild from this module (see dataset.ts's
// WorkerRecipe): a synthetic dataset whose samples depend on their generator, optionally failing at one index.

import { Tensor } from '../../src/tensor/tensor.js';
import type { Dataset, Sample, SampleContext, WorkerRecipe } from '../../src/data/dataset.js';

export interface SyntheticOptions { length: number; failAt?: number; async?: boolean }

export class Synthetic implements Dataset {
  constructor(readonly o: SyntheticOptions) {}

  get length(): number {
    return this.o.length;
  }

  get(i: number, ctx?: SampleContext): Sample | Promise<Sample> {
    if (i === this.o.failAt) throw new Error(`synthetic failure at ${i}`);
    const noise = ctx ? ctx.rng.uniform() : 0;
    const s = { input: new Tensor(new Float32Array([i, noise, ctx?.epoch ?? -1]), [3]), label: i % 7 };
    return this.o.async ? new Promise((r) => setTimeout(() => r(s), (i * 7) % 5)) : s;
  }

  workerRecipe(): WorkerRecipe {
    return { module: import.meta.url, export: 'synthetic', options: this.o };
  }
}

export function synthetic(o: SyntheticOptions): Synthetic {
  return new Synthetic(o);
}
