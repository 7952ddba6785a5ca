// Loss and accuracy curves of a run as one self-contained SVG (no scripts, fonts or links): on the left the train
// loss per logged step (a thin line) with the epochs' train and validation loss, on the right the epochs' train and
// validation accuracy. x is in epochs. The CLI rewrites it beside metrics.jsonl after every epoch.

import type { EpochMetrics } from './checkpoint.js';

export interface CurveData {
  history: readonly EpochMetrics[];
  /** [global step, mean train loss] points. */
  trace?: readonly (readonly [number, number])[];
  stepsPerEpoch?: number;
  title?: string;
}

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  thin?: boolean;
}

const W = 460, H = 320, M = { l: 56, r: 14, t: 34, b: 42 };

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

function panel(title: string, series: Series[], x0: number, yRange?: [number, number]): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const out = [`<g transform="translate(${x0},0)">`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`];
  const pw = W - M.l - M.r, ph = H - M.t - M.b;
  out.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  if (pts.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#888">no data yet</text></g>`);
    return out.join('\n');
  }
  let [xl, xh] = [Math.min(0, ...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [yl, yh] = yRange ?? [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (xh <= xl) xh = xl + 1;
  if (yh <= yl) [yl, yh] = [yl - 0.5, yh + 0.5];
  const pad = (yh - yl) * 0.05;
  if (!yRange) [yl, yh] = [yl - pad, yh + pad];
  const sx = (x: number) => M.l + ((x - xl) / (xh - xl)) * pw, sy = (y: number) => M.t + ph - ((y - yl) / (yh - yl)) * ph;
  for (const t of ticks(xl, xh)) {
    out.push(`<line x1="${sx(t)}" y1="${M.t + ph}" x2="${sx(t)}" y2="${M.t + ph + 4}" stroke="#888"/>`, `<text x="${sx(t)}" y="${M.t + ph + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`);
  }
  for (const t of ticks(yl, yh)) {
    out.push(`<line x1="${M.l}" y1="${sy(t)}" x2="${M.l + pw}" y2="${sy(t)}" stroke="#eee"/>`, `<text x="${M.l - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  out.push(`<text x="${M.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">epoch</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (p.length === 0) return;
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.thin ? 1 : 2}" opacity="${s.thin ? 0.45 : 1}"/>`);
    if (!s.thin) for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = M.t + 14 + 16 * i;
    out.push(`<line x1="${M.l + pw - 118}" y1="${ly - 4}" x2="${M.l + pw - 100}" y2="${ly - 4}" stroke="${s.color}" stroke-width="${s.thin ? 1 : 2}" opacity="${s.thin ? 0.45 : 1}"/>`,
      `<text x="${M.l + pw - 96}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

function epochSeries(history: readonly EpochMetrics[], key: string): [number, number][] {
  return history.filter((r) => typeof r[key] === 'number' && typeof r.epoch === 'number').map((r) => [r.epoch as number, r[key] as number]);
}

/** The SVG text of the two panels. */
export function curvesSvg(d: CurveData): string {
  const spe = d.stepsPerEpoch && d.stepsPerEpoch > 0 ? d.stepsPerEpoch : 0;
  const loss: Series[] = [];
  if (spe && d.trace?.length) loss.push({ name: 'train (steps)', color: '#1f77b4', thin: true, points: d.trace.map(([s, l]) => [s / spe, l]) });
  loss.push({ name: 'train', color: '#1f77b4', points: epochSeries(d.history, 'train_loss') });
  loss.push({ name: 'validation', color: '#d62728', points: epochSeries(d.history, 'val_loss') });
  const acc: Series[] = [
    { name: 'train', color: '#1f77b4', points: epochSeries(d.history, 'train_accuracy') },
    { name: 'validation', color: '#d62728', points: epochSeries(d.history, 'val_accuracy') },
  ];
  const title = d.title ? `<title>${esc(d.title)}</title>\n` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" viewBox="0 0 ${2 * W} ${H}" font-family="sans-serif">
${title}<rect width="100%" height="100%" fill="white"/>
${panel('loss', loss, 0)}
${panel('accuracy', acc, W, [0, 1])}
</svg>
`;
}
