// resnet export: a `resnet train` checkpoint -> a resnet-ts model folder (models/model-folder.ts): the weights as
// safetensors (float32, or float16 / bfloat16 storage to halve the size), config.json with the model description,
// the class names and the inference transform, and a README.md model card (what it is, how it was trained, its
// accuracy, how to use it here and in PyTorch). `resnet predict --weights DIR`, `resnet eval --checkpoint DIR` and
// loadModel({ weights: DIR }) take the folder.

import { existsSync, statSync } from 'node:fs';
import { skipInit } from '../nn/init.js';
import { type ModelSpec, buildSpecModel, specFromCheckpoint } from '../models/model-spec.js';
import { saveModelFolder } from '../models/model-folder.js';
import { type TrainCheckpoint, loadCheckpoint } from '../train/checkpoint.js';
import { type DataRecipe, inferenceTransform } from '../train/recipe.js';
import { type Command, UsageError, oneOf, parse } from './args.js';
import { RUNTIME_FLAGS } from './train.js';

const usage = `Usage: resnet export CHECKPOINT OUT_DIR [--dtype float32|float16|bfloat16] [--name NAME]

Writes the model of CHECKPOINT (a .pth from resnet train: best.pth or last.pth) as a model folder:
  OUT_DIR/model.safetensors   the weights (torchvision's or transformers' keys), in --dtype (default float32;
                              float16 halves the size, and loads back as float32)
  OUT_DIR/config.json         the model (architecture, classes, input channels, stem), the class names, the
                              inference preprocessing, and the training run's command and metrics
  OUT_DIR/README.md           a model card
Use it with: resnet predict --weights OUT_DIR <images>   resnet eval --checkpoint OUT_DIR --data ...`;

const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
const DISK = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;

/** The training command a checkpoint's run_config.args records, without the runtime-only flags (--out stays). */
function commandOf(args: Record<string, unknown> | undefined): string | null {
  if (!args) return null;
  const parts = ['resnet', 'train'];
  for (const [k, v] of Object.entries(args)) {
    if ((k !== 'out' && RUNTIME_FLAGS.has(k)) || v === false || v === undefined || v === null) continue;
    parts.push(v === true ? `--${k}` : `--${k} ${String(v)}`);
  }
  return parts.join(' ');
}

const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : 'n/a');

/** The preprocessing as torchvision transforms (the inference transforms inferenceTransform makes). */
function torchTransforms(preprocess: unknown[]): string {
  const steps = preprocess.map((t) => {
    const s = t as { name: string; size?: unknown; numOutputChannels?: number; mean?: number[]; std?: number[] };
    if (s.name === 'Normalize') return `T.ToTensor(), T.Normalize(${JSON.stringify(s.mean)}, ${JSON.stringify(s.std)})`;
    if (s.name === 'Grayscale') return `T.Grayscale(${s.numOutputChannels ?? 1})`;
    return `T.${s.name}(${JSON.stringify(s.size)})`;
  });
  return `preprocess = T.Compose([${steps.join(', ')}])  # on a PIL image`;
}

/** PyTorch lines that build the same module (model-spec.ts's header). */
function torchBuild(spec: ModelSpec): string[] {
  if (spec.family !== 'torchvision') return ['# a transformers ResNetForImageClassification: see config.json model_spec.hf_config'];
  const lines = ['import torch, torchvision', `m = torchvision.models.${spec.arch}(num_classes=${spec.num_classes})`];
  if (spec.stem !== 'imagenet') lines.push(`m.conv1 = torch.nn.Conv2d(${spec.in_channels}, m.conv1.out_channels, 3, 1, 1, bias=False)`);
  else if (spec.in_channels !== 3) lines.push(`m.conv1 = torch.nn.Conv2d(${spec.in_channels}, m.conv1.out_channels, 7, 2, 3, bias=False)`);
  if (spec.stem === 'cifar') lines.push('m.maxpool = torch.nn.Identity()');
  return lines;
}

function modelCard(name: string, spec: ModelSpec, c: TrainCheckpoint, labels: string[] | null, dtype: string, command: string | null, preprocess: unknown[]): string {
  const m = (c.metrics ?? {}) as Record<string, number | null>;
  const best = c.best as { metric?: string; value?: number; epoch?: number } | null | undefined;
  const data = (c.run_config as { data?: DataRecipe } | undefined)?.data;
  const stem = { imagenet: "the model's own (7x7 stride-2 conv, max pool)", cifar: '3x3 stride-1 conv1, no max pool', small: '3x3 stride-1 conv1, max pool kept' }[spec.stem];
  return [
    `# ${name}`, '',
    `A ${spec.arch ?? 'transformers ResNet'} (${spec.num_classes} classes, ${spec.in_channels} input channel(s); stem: ${stem}) trained with resnet-ts.`, '',
    `- Weights: model.safetensors, ${dtype} storage, ${spec.family === 'torchvision' ? "torchvision's" : "transformers'"} state-dict keys.`,
    `- Checkpoint: epoch ${c.epoch}${data ? `, data: ${data.source === 'fashion-mnist' ? 'Fashion-MNIST' : data.train}` : ''}.`,
    `- Validation accuracy at that epoch: ${pct(m.val_accuracy)} (loss ${typeof m.val_loss === 'number' ? m.val_loss.toFixed(4) : 'n/a'})` +
      `${best?.value !== undefined ? `; best ${best.metric ?? 'val_accuracy'} ${pct(best.value)} at epoch ${best.epoch}` : ''}.`,
    `- Classes: ${labels ? labels.join(', ') : 'unnamed'}.`,
    `- Preprocessing: ${preprocess.map((t) => JSON.stringify(t)).join(' -> ')}.`, '',
    ...(command ? ['Trained with:', '', '```sh', command, '```', ''] : []),
    'Use it:', '', '```sh', 'resnet predict --weights <this folder> image.png', 'resnet eval --checkpoint <this folder> --data <data>', '```', '',
    'In PyTorch:', '', '```python', ...torchBuild(spec),
    'from safetensors.torch import load_file  # or read the file with any safetensors reader',
    'm.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file("model.safetensors").items()})',
    'm.eval()', 'import torchvision.transforms as T', torchTransforms(preprocess), '```', '',
  ].join('\n');
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { dtype: { type: 'string' }, name: { type: 'string' } }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`expected CHECKPOINT and OUT_DIR, got ${positionals.length} argument(s)`, usage);
  const [file, out] = positionals;
  const dtype = oneOf(v.dtype, '--dtype', DTYPES, usage) ?? 'float32';
  if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${file}: no such file (expected a .pth checkpoint from resnet train)`);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new Error(`${out}: exists and is not a folder`);

  const c = loadCheckpoint(file);
  if (c.model_spec === undefined) throw new Error(`${file}: has no model_spec, so it is not a resnet train checkpoint (resnet convert turns other weights into files)`);
  const spec = specFromCheckpoint(c.model_spec, file);
  const names = c.class_names;
  const labels = Array.isArray(names) && names.every((n) => typeof n === 'string') ? [...names] as string[] : null;
  const data = (c.run_config as { data?: DataRecipe } | undefined)?.data;
  let preprocess: unknown[];
  if (typeof c.preprocess === 'string') preprocess = JSON.parse(c.preprocess) as unknown[];
  else if (data) preprocess = inferenceTransform(data);
  else throw new Error(`${file}: says neither its preprocessing (preprocess) nor its data recipe (run_config.data)`);

  const model = skipInit(() => buildSpecModel(spec));
  model.loadStateDict(c.model_state_dict);
  const command = commandOf((c.run_config as { args?: Record<string, unknown> } | undefined)?.args);
  const name = v.name ?? `${spec.arch ?? 'resnet'} (${spec.num_classes} classes)`;
  saveModelFolder(out, model, {
    spec, labels, preprocess, dtype: DISK[dtype],
    extra: { name, training: { command, epoch: c.epoch, metrics: c.metrics ?? null, best: c.best ?? null, run_config: c.run_config ?? null } },
    readme: modelCard(name, spec, c, labels, dtype, command, preprocess),
  });
  console.log(`wrote ${out}: model.safetensors (${dtype}), config.json, README.md`);
  return 0;
}

export const exportCommand: Command = { name: 'export', summary: 'a resnet train checkpoint as a model folder (safetensors, config, labels)', usage, run };
