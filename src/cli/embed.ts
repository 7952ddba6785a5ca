// resnet embed: pooled feature vectors of image files (torchvision: the avgpool output before fc; Hugging Face:
// pooler_output), written as one float32 (N, D) .npy with the row order in a JSON file beside it.

import { writeNpySync } from '../io/npy.js';
import { writeFileAtomicSync } from '../io/tensor-bytes.js';
import { Tensor } from '../tensor/tensor.js';
import { createClassifier } from '../infer/classifier.js';
import { type Command, UsageError, parse } from './args.js';
import { CountProgress, FEW, MODEL_OPTIONS, MODEL_USAGE, classifierOptions, filesFromArgs } from './predict.js';

const usage = `Usage: resnet embed <files | directories | globs>... --output embeddings.npy [--normalize]
                    [--arch NAME | --config config.json] [--weights SPEC] [--batch-size N] [--backend js|native]

Writes the pooled features of every image (torchvision: avgpool's output flattened, before fc, e.g. 512 values
for resnet18 and 2048 for resnet50; Hugging Face: pooler_output) as one float32 (N, D) .npy, row i for the i-th
image that decoded, and beside it <output>.json: {"files": [row order], "shape": [N, D], "normalized", "weights",
"errors": [{"file", "error"}]}. Files that fail are named on stderr and left out of both; the exit status is then 1.
  --output FILE       the .npy to write (required)
  --normalize         divide each vector by its L2 norm (cosine similarity is then a dot product)
${MODEL_USAGE}`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { ...MODEL_OPTIONS, output: { type: 'string' }, normalize: { type: 'boolean' } }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (!v.output) throw new UsageError('--output is required (the .npy to write)', usage);
  const output = v.output;
  const opts = classifierOptions(v, usage, 'embed');
  let bar: CountProgress | null = null;
  const errors: { file: string; error: string }[] = [];
  const report = (file: string, error: string) => {
    errors.push({ file, error });
    const line = `resnet embed: ${error.startsWith(file) ? error : `${file}: ${error}`}`;
    if (bar) bar.print(process.stderr, line);
    else console.error(line);
  };
  const { files } = await filesFromArgs(positionals, !!v.recursive, usage, report);
  if (!files.length) return 1;
  const clf = await createClassifier(opts);
  const rows: Float32Array[] = [], names: string[] = [];
  try {
    if (files.length > FEW && process.stderr.isTTY) bar = new CountProgress(files.length);
    for await (const r of clf.embedStream(files, { normalize: !!v.normalize })) {
      bar?.tick();
      if (r.error !== undefined) report(r.input, r.error);
      else {
        rows.push(r.embedding!);
        names.push(r.input);
      }
    }
  } finally {
    bar?.finish();
    bar = null;
    await clf.close();
  }
  if (!rows.length) {
    console.error('resnet embed: no image could be read; nothing written');
    return 1;
  }
  const d = rows[0].length;
  const data = new Float32Array(rows.length * d);
  rows.forEach((r, i) => data.set(r, i * d));
  writeNpySync(output, new Tensor(data, [rows.length, d]));
  const meta = { files: names, shape: [rows.length, d], normalized: !!v.normalize, weights: clf.weightsSource, errors };
  writeFileAtomicSync(`${output}.json`, [Buffer.from(`${JSON.stringify(meta, null, 2)}\n`)]);
  console.error(`resnet embed: wrote ${output} (${rows.length} x ${d} float32) and ${output}.json${errors.length ? `; ${errors.length} input(s) failed` : ''}`);
  return errors.length ? 1 : 0;
}

export const embedCommand: Command = { name: 'embed', summary: 'pooled feature vectors of images to an (N, D) .npy (+ file order)', usage, run };
