// Training progress for a terminal: on a TTY one line redrawn in place (epoch, step, a bar, loss, accuracy,
// images/s, ETA of the epoch), at most ten times a second; otherwise plain lines every `every` steps, so logs and
// pipes get a readable record. Epoch summaries and notes are always whole lines.

import { fmtDuration } from '../io/progress.js';
import type { StepInfo } from './loop.js';

export class TrainProgress {
  private lastDraw = 0;
  private drawn = false;
  readonly tty: boolean;

  /** `every`: plain-line interval in steps (0: no step lines). */
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, public every = 0, tty?: boolean) {
    this.tty = tty ?? !!stream.isTTY;
  }

  step(s: StepInfo): void {
    const eta = (s.batches - s.batch) / this.stepsPerSec(s);
    const head = `epoch ${s.epoch + 1}/${s.epochs}  step ${s.batch}/${s.batches}`;
    const nums = `loss ${s.epochLoss.toFixed(4)}  acc ${(100 * s.epochAccuracy).toFixed(2)}%  ${s.imagesPerSec.toFixed(1)} img/s  ETA ${fmtDuration(eta)}  lr ${s.lr.toPrecision(3)}`;
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && s.batch !== s.batches) return;
      this.lastDraw = now;
      const cols = this.stream.columns || 100;
      const width = Math.max(10, Math.min(30, cols - 1 - head.length - nums.length - 4)), fill = Math.round((s.batch / s.batches) * width);
      let line = `${head} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${nums}`;
      if (line.length > cols - 1) line = line.slice(0, cols - 1);
      this.stream.write(`\r\x1b[K${line}`);
      this.drawn = true;
    } else if (this.every > 0 && (s.batch % this.every === 0 || s.batch === s.batches)) {
      this.stream.write(`${head}  ${nums}\n`);
    }
  }

  /** A whole line (an epoch summary, a checkpoint note), clearing the bar first. */
  line(text: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
    this.stream.write(`${text}\n`);
  }

  private epochStart: { epoch: number; t: number; batch0: number } | null = null;

  /** Steps per second this process has run in the current epoch (the batch before its first step as the origin). */
  private stepsPerSec(s: StepInfo): number {
    if (!this.epochStart || this.epochStart.epoch !== s.epoch) this.epochStart = { epoch: s.epoch, t: performance.now(), batch0: s.batch };
    const secs = (performance.now() - this.epochStart.t) / 1000;
    return secs > 0 ? (s.batch - this.epochStart.batch0) / secs : 0;
  }
}
