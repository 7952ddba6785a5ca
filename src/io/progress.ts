// A one-line download progress bar for a terminal: bytes, percent, speed and time left, redrawn in place on stderr
// at most ten times a second. It is not a logger: callers create one only when stderr is a TTY and the user asked for
// progress (hub.ts does), so pipes and CI logs stay quiet.

const MB = 1024 * 1024;

function fmtBytes(n: number): string {
  return n >= 1024 * MB ? `${(n / (1024 * MB)).toFixed(2)} GB` : `${(n / MB).toFixed(1)} MB`;
}

/** Seconds as m:ss or h:mm:ss ('--:--' when unknown); shared by every progress display. */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mmss = `${String(m).padStart(h > 0 ? 2 : 1, '0')}:${String(sec).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

export class ProgressBar {
  private done = 0;
  private readonly start = Date.now();
  private lastDraw = 0;

  /** `total` is the expected byte count, or undefined when the server did not say (no % or ETA then). */
  constructor(private readonly label: string, private total: number | undefined, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  /** Set the byte count reached so far (it may go down when a download restarts) and redraw if due. */
  update(done: number, total = this.total): void {
    this.done = done;
    this.total = total;
    const now = Date.now();
    if (now - this.lastDraw >= 100) this.draw(now);
  }

  /** Print a message on its own line (a retry notice) without breaking the bar. */
  note(message: string): void {
    this.stream.write(`\r\x1b[K${message}\n`);
    this.lastDraw = 0;
  }

  /** Draw the final state and end the line. */
  finish(): void {
    this.draw(Date.now());
    this.stream.write('\n');
  }

  private draw(now: number): void {
    this.lastDraw = now;
    const secs = Math.max((now - this.start) / 1000, 1e-3);
    const rate = this.done / secs;
    const parts = [this.label];
    if (this.total !== undefined && this.total > 0) {
      const frac = Math.min(this.done / this.total, 1);
      const width = 20, fill = Math.round(frac * width);
      parts.push(`${String(Math.floor(frac * 100)).padStart(3)}%`, `[${'#'.repeat(fill)}${' '.repeat(width - fill)}]`);
      parts.push(`${fmtBytes(this.done)}/${fmtBytes(this.total)}`, `${(rate / MB).toFixed(1)} MB/s`);
      parts.push(`ETA ${fmtDuration(rate > 0 ? (this.total - this.done) / rate : Infinity)}`);
    } else {
      parts.push(fmtBytes(this.done), `${(rate / MB).toFixed(1)} MB/s`, fmtDuration(secs));
    }
    let line = parts.join('  ');
    const cols = this.stream.columns || 80; // 0 under some pseudo-terminals
    if (line.length > cols - 1) line = line.slice(line.length - (cols - 1)); // keep the numbers, drop the label's head
    this.stream.write(`\r\x1b[K${line}`);
  }
}
