// resnet predict: classify image files (paths, directories, globs) with a torchvision or Hugging Face ResNet and print
// the top-k classes of each, as a table, one line per file, or JSON lines. Also the pieces `resnet embed` shares:
// the model options, the input expansion and the progress bar.

import { readFileSync } from 'node:fs';
import { setBackend } from '../backend/select.js';
import { fmtDuration } from '../io/progress.js';
import { IMAGENET_CATEGORIES } from '../models/weights.js';
import { type ClassifierOptions, type ClassifyResult, createClassifier } from '../infer/classifier.js';
import { expandInputs } from '../infer/files.js';
import { type Command, UsageError, type Values, intArg, oneOf, parse } from './args.js';

/** Options every inference command takes. */
export const MODEL_OPTIONS = {
  arch: { type: 'string' }, config: { type: 'string' }, weights: { type: 'string' }, 'num-classes': { type: 'string' },
  labels: { type: 'string' }, 'batch-size': { type: 'string' }, workers: { type: 'string' }, recursive: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export const MODEL_USAGE = `Inputs: image files (the content decides: JPEG, PNG, WebP, GIF, TIFF), directories (their .jpg .jpeg .png .webp
.gif .tif .tiff files, sorted; subdirectories with --recursive) and quoted globs ('photos/*.jpg': * and ? in the
last path segment).
  --arch NAME         a torchvision builder (default resnet50 when --weights is a registry name or absent)
  --config FILE       a Hugging Face config.json (with --weights); a preprocessor_config.json beside it is used
  --weights SPEC      DEFAULT (the default) or another registry name (IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2),
                      a .pth/.bin/.safetensors file, a Hugging Face model folder, hf:org/name[@revision], or a URL
  --num-classes N     the head's size, when the weights do not say it
  --labels L          class names: 'imagenet', or a file (a JSON array, or one name per line); default from the
                      weights (registry categories, config.json id2label), else "class N"
  --batch-size N      images per forward pass (default 8)
  --workers N         threads decoding images while the model computes (default 1; 0: the main thread)
  --backend B         js or native (default: native when it loads)
Preprocessing follows the weights: a registry entry's preset, an HF folder's preprocessor_config.json, else
ImageNet's V1 preset (resize 256, center crop 224, ImageNet mean/std).`;

type ModelValues = Values<typeof MODEL_OPTIONS>;

/** Up to this many files get a full table each; more get one line per file and (on a terminal) a progress bar. */
export const FEW = 10;

function readLabels(spec: string): string[] {
  if (spec === 'imagenet') return [...IMAGENET_CATEGORIES];
  let text: string;
  try {
    text = readFileSync(spec, 'utf8');
  } catch (e) {
    throw new Error(`--labels ${spec}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give 'imagenet' or a file of class names`);
  }
  if (spec.endsWith('.json')) {
    let a: unknown;
    try {
      a = JSON.parse(text);
    } catch (e) {
      throw new Error(`--labels ${spec}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) throw new Error(`--labels ${spec}: expected a JSON array of class names`);
    return a;
  }
  return text.split(/\r?\n/).filter((l, i, all) => l !== '' || i < all.length - 1);
}

/** createClassifier's options from the command line (usage errors for bad values; nothing is loaded yet). */
export function classifierOptions(v: ModelValues, usage: string, cmd: string, topk?: number): ClassifierOptions {
  if (v.arch && v.config) throw new UsageError('give one of --arch or --config, not both', usage);
  if (v.config && !v.weights) throw new UsageError('--config needs --weights (a file or a folder with the weights)', usage);
  const backend = oneOf(v.backend, '--backend', ['js', 'native'] as const, usage);
  const batchSize = intArg(v['batch-size'], '--batch-size', usage);
  const workers = intArg(v.workers, '--workers', usage, 0);
  const numClasses = intArg(v['num-classes'], '--num-classes', usage);
  if (backend) setBackend(backend);
  const weights = v.weights ?? 'DEFAULT';
  const shortName = /^[A-Z][A-Z0-9_]*$/.test(weights); // DEFAULT, IMAGENET1K_V2: belongs to an arch
  const arch = v.arch ?? (shortName && !v.config ? 'resnet50' : undefined);
  return {
    arch, config: v.config, weights, numClasses, batchSize, workers, topk, labels: v.labels ? readLabels(v.labels) : undefined,
    progress: process.stderr.isTTY, warn: (m) => console.error(`resnet ${cmd}: warning: ${m}`),
  };
}

/** A one-line progress bar on stderr: count, percent, images/s and time left, redrawn at most 10 times a second. */
export class CountProgress {
  private done = 0;
  private readonly start = performance.now();
  private last = 0;
  private shown = false;
  constructor(private readonly total: number, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  tick(n = 1): void {
    this.done += n;
    const now = performance.now();
    if (now - this.last >= 100 || this.done === this.total) this.draw(now);
  }

  /** Write a line to `out` (stdout or stderr) without tearing the bar. */
  print(out: NodeJS.WriteStream, line: string): void {
    if (this.shown) this.stream.write('\r\x1b[K');
    out.write(`${line}\n`);
    if (this.shown) this.draw(performance.now());
  }

  finish(): void {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
  }

  private draw(now: number): void {
    this.last = now;
    this.shown = true;
    const secs = (now - this.start) / 1000, rate = this.done / Math.max(secs, 1e-3);
    const frac = this.total ? this.done / this.total : 1, width = 20, fill = Math.round(frac * width);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const line = `${String(this.done).padStart(String(this.total).length)}/${this.total} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ` +
      `${String(Math.floor(frac * 100)).padStart(3)}%  ${rate.toFixed(1)} images/s  ETA ${fmtDuration(eta)}`;
    this.stream.write(`\r\x1b[K${line.slice(0, (this.stream.columns || 80) - 1)}`);
  }
}

/** The files the positionals name; an argument naming nothing is reported (stderr, and a JSON line) and counted. */
export async function filesFromArgs(positionals: string[], recursive: boolean, usage: string, report: (file: string, error: string) => void): Promise<{ files: string[]; failed: number }> {
  if (!positionals.length) throw new UsageError('give image files, directories or globs', usage);
  const { files, errors } = await expandInputs(positionals, { recursive });
  for (const e of errors) report(e.arg, e.message);
  return { files, failed: errors.length };
}

const usage = `Usage: resnet predict <files | directories | globs>... [--arch NAME | --config config.json] [--weights SPEC]
                      [--topk 5] [--batch-size N] [--json] [--recursive] [--labels L] [--backend js|native]

Classifies images and prints the top-k classes of each: a table per file for up to ${FEW} files, one line per file
(the top class) for more, with a progress bar (count, images/s, ETA) on stderr when it is a terminal; --json prints
one JSON object per line instead: {"file", "topk": [{"label", "index", "probability"}]} or {"file", "error"}.
A file that cannot be read or decoded is reported on stderr (its name and why) and the others are still classified.
Exit status: 0 when every file was classified, 1 when any failed, 2 for a usage error.
  --topk K            classes per file (default 5)
  --json              JSON lines on stdout
  --recursive         directories: include subdirectories
${MODEL_USAGE}`;

function table(r: ClassifyResult): string {
  const w = Math.max(...r.topk.map((t) => String(t.index).length));
  return [r.input, ...r.topk.map((t) => `  ${(t.probability * 100).toFixed(2).padStart(6)}%  ${String(t.index).padStart(w)}  ${t.label}`)].join('\n');
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { ...MODEL_OPTIONS, topk: { type: 'string' }, json: { type: 'boolean' } }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  const topk = intArg(v.topk, '--topk', usage);
  const json = !!v.json;
  const out = process.stdout, err = process.stderr;
  let bar: CountProgress | null = null;
  const say = (stream: NodeJS.WriteStream, line: string) => (bar ? bar.print(stream, line) : stream.write(`${line}\n`));
  const report = (file: string, error: string) => {
    say(err, `resnet predict: ${error.startsWith(file) ? error : `${file}: ${error}`}`);
    if (json) say(out, JSON.stringify({ file, error }));
  };
  const opts = classifierOptions(v, usage, 'predict', topk);
  const { files, failed: missing } = await filesFromArgs(positionals, !!v.recursive, usage, report);
  if (!files.length) return 1;
  const clf = await createClassifier(opts);
  let failed = missing;
  try {
    const few = files.length <= FEW;
    if (!few && err.isTTY) bar = new CountProgress(files.length);
    const nameWidth = Math.min(Math.max(0, ...files.map((f) => f.length)), 60);
    const t0 = performance.now();
    let first = true;
    for await (const r of clf.classifyStream(files)) {
      bar?.tick();
      if (r.error !== undefined) {
        failed++;
        report(r.input, r.error);
        continue;
      }
      if (json) say(out, JSON.stringify({ file: r.input, topk: r.topk }));
      else if (few) say(out, `${first ? '' : '\n'}${table(r)}`);
      else say(out, `${r.input.padEnd(nameWidth)}  ${(r.topk[0].probability * 100).toFixed(2).padStart(6)}%  ${r.topk[0].label} (${r.topk[0].index})`);
      first = false;
    }
    bar?.finish();
    bar = null;
    const secs = (performance.now() - t0) / 1000;
    if (!few || failed) err.write(`resnet predict: ${files.length - (failed - missing)} of ${files.length + missing} inputs classified in ${secs.toFixed(1)} s (${(files.length / secs).toFixed(1)} images/s)${failed ? `, ${failed} failed` : ''}\n`);
  } finally {
    bar?.finish();
    await clf.close();
  }
  return failed ? 1 : 0;
}

export const predictCommand: Command = { name: 'predict', summary: 'classify image files, folders or globs (top-k labels, table or JSON lines)', usage, run };
