// Classification metrics and the run's metric files: a confusion matrix with accuracy and per-class accuracy
// (recall) from it, text tables for the terminal, and metrics.jsonl / metrics.csv written from the epoch history.
// The files are rewritten whole (atomically) each epoch from the history the checkpoint holds, so a resumed run's
// files are exactly the unbroken run's rows (no duplicated or lost epoch after a kill).

import { writeFileAtomicSync } from '../io/tensor-bytes.js';
import type { EpochMetrics } from './checkpoint.js';

/** counts[t][p]: how many samples of true class t were predicted as p. */
export class ConfusionMatrix {
  readonly counts: number[][];

  constructor(readonly numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`Expected a positive integer number of classes but received ${numClasses}`);
    this.counts = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  add(label: number, pred: number): void {
    if (!(label >= 0 && label < this.numClasses)) throw new RangeError(`label ${label} is out of range for ${this.numClasses} classes`);
    this.counts[label][pred]++;
  }

  get total(): number {
    return this.counts.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0);
  }

  get correct(): number {
    return this.counts.reduce((s, r, i) => s + r[i], 0);
  }

  /** Correct / total (NaN when empty). */
  accuracy(): number {
    return this.correct / this.total;
  }

  /** Per true class: correct / samples of that class (null for a class with no samples). */
  perClassAccuracy(): (number | null)[] {
    return this.counts.map((r, i) => {
      const n = r.reduce((a, b) => a + b, 0);
      return n === 0 ? null : r[i] / n;
    });
  }

  /** Samples per true class. */
  support(): number[] {
    return this.counts.map((r) => r.reduce((a, b) => a + b, 0));
  }
}

/** Index of the largest of n values at data[off..off+n) (the first on ties, as torch.argmax). */
export function argmaxRow(data: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (data[off + c] > data[off + best]) best = c;
  return best;
}

const pct = (v: number | null) => (v === null || Number.isNaN(v) ? '   -  ' : `${(100 * v).toFixed(2).padStart(6)}%`);

/** Per-class accuracy as a table: class, samples, accuracy. */
export function formatPerClass(cm: ConfusionMatrix, classes: readonly string[]): string {
  const w = Math.max(5, ...classes.map((c) => c.length));
  const acc = cm.perClassAccuracy(), n = cm.support();
  const rows = classes.map((c, i) => `  ${c.padEnd(w)}  ${String(n[i]).padStart(7)}  ${pct(acc[i])}`);
  return [`  ${'class'.padEnd(w)}  ${'samples'.padStart(7)}  accuracy`, ...rows].join('\n');
}

/** The confusion matrix as a table: rows are true classes, columns predictions (numbered, names in the rows). */
export function formatConfusion(cm: ConfusionMatrix, classes: readonly string[]): string {
  const w = Math.max(5, ...classes.map((c, i) => `${i} ${c}`.length));
  const cw = Math.max(4, ...cm.counts.flat().map((v) => String(v).length)) + 1;
  const head = `  ${'true \\ pred'.padEnd(w)} ${classes.map((_, i) => String(i).padStart(cw)).join('')}`;
  const rows = cm.counts.map((r, i) => `  ${`${i} ${classes[i]}`.padEnd(w)} ${r.map((v) => String(v).padStart(cw)).join('')}`);
  return [head, ...rows].join('\n');
}

/** The columns of the metric files: the keys of every row, in first-seen order. */
export function metricColumns(history: readonly EpochMetrics[]): string[] {
  const cols: string[] = [];
  for (const row of history) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

/** Write <prefix>.jsonl (one JSON object per epoch) and <prefix>.csv (a header, then one line per epoch). */
export function writeMetricFiles(prefix: string, history: readonly EpochMetrics[]): void {
  const enc = (s: string) => new TextEncoder().encode(s);
  const jsonl = history.map((r) => JSON.stringify(r)).join('\n');
  writeFileAtomicSync(`${prefix}.jsonl`, [enc(jsonl ? `${jsonl}\n` : '')]);
  const cols = metricColumns(history);
  const cell = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  const csv = [cols.join(','), ...history.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n');
  writeFileAtomicSync(`${prefix}.csv`, [enc(`${csv}\n`)]);
}
