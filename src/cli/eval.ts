// resnet eval: accuracy, per-class accuracy and the confusion matrix of a checkpoint on a dataset. The checkpoint
// is one `resnet train` wrote (its model_spec, class names and transforms are used), or any state dict / torch.save
// checkpoint (the tutorial's {model_state_dict, ...}) with --arch: classes, input channels and stem then come from
// the weights' shapes; or a resnet-ts model folder (resnet export's), whose own preprocessing is then the transform.

import { statSync } from 'node:fs';
import { readCheckpointFile } from '../models/checkpoint.js';
import { readModelFolder } from '../models/model-folder.js';
import { downloadFashionMNIST } from '../data/fashion-mnist.js';
import type { TransformSpec } from '../data/augment.js';
import { setBackend } from '../backend/select.js';
import { DataLoader } from '../data/loader.js';
import { decodeFloats } from '../train/checkpoint.js';
import { evaluate } from '../train/loop.js';
import { formatConfusion, formatPerClass } from '../train/metrics.js';
import { type ModelSpec, buildSpecModel, inferSpec, specFromCheckpoint } from '../models/model-spec.js';
import { type DataRecipe, dataRecipe, evalTransform, limitDataset, openSplit } from '../train/recipe.js';
import { type Command, UsageError, intArg, oneOf, parse } from './args.js';

const usage = `Usage: resnet eval --checkpoint FILE --data <DIR | fashion-mnist[:ROOT]> [--arch <builder | config.json>]
                   [--split val|train] [--batch-size B] [--workers N] [--limit N] [--image-size S] [--json]
                   [--download] [--backend js|native]

Evaluates FILE (a checkpoint from resnet train, a model folder from resnet export, or with --arch any
.pth/.safetensors state dict or torch.save checkpoint) in eval mode on the validation split (Fashion-MNIST: the
test split; a folder: DIR/val, DIR/test, or DIR itself when it has no train/ sub-folder) and prints accuracy,
per-class accuracy and the confusion matrix (rows: true class, columns: predicted). --json prints one JSON object
instead. --download fetches missing Fashion-MNIST files (torchvision's mirror, MD5-checked) into
ROOT/FashionMNIST/raw.`;

interface Meta {
  spec: ModelSpec | null;
  classNames: string[] | null;
  recipe: DataRecipe | null;
}

/** What a resnet train checkpoint says about itself (nothing for other files). */
function metaOf(object: unknown, path: string): Meta {
  const o = object instanceof Map ? (decodeFloats(new Map([...object].filter(([k]) => k !== 'model_state_dict' && k !== 'optimizer_state_dict'))) as Record<string, unknown>) : null;
  if (!o || o instanceof Map) return { spec: null, classNames: null, recipe: null };
  const names = Array.isArray(o.class_names) && o.class_names.every((c) => typeof c === 'string') ? (o.class_names as string[]) : null;
  const recipe = (o.run_config as { data?: DataRecipe } | undefined)?.data ?? null;
  return { spec: o.model_spec ? specFromCheckpoint(o.model_spec, path) : null, classNames: names, recipe };
}

async function run(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    checkpoint: { type: 'string' }, data: { type: 'string' }, arch: { type: 'string' }, split: { type: 'string' }, 'batch-size': { type: 'string' },
    workers: { type: 'string' }, limit: { type: 'string' }, 'image-size': { type: 'string' }, json: { type: 'boolean' }, backend: { type: 'string' },
    download: { type: 'boolean' },
  }, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (!v.checkpoint) throw new UsageError('--checkpoint is required', usage);
  if (!v.data) throw new UsageError('--data is required (an image folder, or fashion-mnist)', usage);
  const split = oneOf(v.split, '--split', ['val', 'train'] as const, usage) ?? 'val';
  const batchSize = intArg(v['batch-size'], '--batch-size', usage, 1) ?? 64;
  const workers = intArg(v.workers, '--workers', usage, 0) ?? 0;
  const limit = intArg(v.limit, '--limit', usage, 1);
  const imageSize = intArg(v['image-size'], '--image-size', usage, 8);
  const backend = oneOf(v.backend, '--backend', ['js', 'native'] as const, usage);
  if (backend) setBackend(backend);

  let stateDict, meta: Meta, folderTransform: TransformSpec[] | null = null;
  if (statSync(v.checkpoint, { throwIfNoEntry: false })?.isDirectory()) {
    if (v.arch) throw new UsageError(`${v.checkpoint} is a model folder, which says its model: leave out --arch`, usage);
    const f = readModelFolder(v.checkpoint);
    ({ stateDict } = f);
    meta = { spec: f.spec, classNames: f.labels, recipe: null };
    folderTransform = f.preprocess as TransformSpec[] | null;
  } else {
    const file = readCheckpointFile(v.checkpoint);
    stateDict = file.stateDict;
    meta = metaOf(file.object, v.checkpoint);
  }
  let spec = meta.spec;
  if (v.arch) spec = inferSpec(v.arch, stateDict);
  if (!spec) throw new UsageError(`${v.checkpoint} does not say which model it holds (no model_spec: not written by resnet train); give --arch`, usage);

  let recipe = dataRecipe(v.data, { imageSize, inChannels: spec.in_channels, augment: 'none' });
  const saved = meta.recipe;
  if (saved && saved.source === recipe.source && saved.in_channels === recipe.in_channels) {
    recipe = { ...recipe, image_size: imageSize ?? saved.image_size, mean: [...saved.mean], std: [...saved.std] };
  }
  if (v.download && recipe.source === 'fashion-mnist') for (const f of await downloadFashionMNIST(recipe.train)) console.error(`resnet eval: downloaded ${f}`);
  const useTrainFolder = split === 'val' && recipe.source === 'image-folder' && recipe.val === null && recipe.train === v.data;
  const s = openSplit(recipe, useTrainFolder ? 'train' : split, folderTransform && imageSize === undefined ? folderTransform : evalTransform(recipe));
  if (!s) throw new Error(`--data ${v.data}: has a train/ folder but no val/, valid/, validation/ or test/ folder to evaluate on (use --split train, or point --data at the folder to evaluate)`);
  if (meta.classNames && meta.classNames.join('\n') !== s.classes.join('\n')) {
    throw new Error(`the data's classes (${s.classes.join(', ')}) are not the checkpoint's (${meta.classNames.join(', ')}): label indices would not match`);
  }
  if (s.classes.length !== spec.num_classes) throw new Error(`the data has ${s.classes.length} classes but the model has ${spec.num_classes} outputs`);
  const model = buildSpecModel(spec);
  model.loadStateDict(stateDict);
  const ds = limitDataset(s.dataset, limit, 0);
  const loader = new DataLoader(ds, { batchSize, numWorkers: workers });
  let r;
  try {
    r = await evaluate(model, loader, { numClasses: spec.num_classes });
  } finally {
    await loader.close();
  }
  const classes = s.classes;
  if (v.json) {
    const support = r.confusionMatrix.support();
    console.log(JSON.stringify({
      checkpoint: v.checkpoint, data: v.data, split, count: r.count, correct: r.correct, loss: r.loss, accuracy: r.accuracy, classes,
      per_class: classes.map((c, i) => ({ class: c, count: support[i], accuracy: r.perClassAccuracy[i] })), confusion_matrix: r.confusion,
    }));
    return 0;
  }
  console.log(`${v.checkpoint} on ${v.data} (${split}, ${r.count} images): accuracy ${(100 * r.accuracy).toFixed(2)}% (${r.correct}/${r.count}), loss ${r.loss.toFixed(4)}`);
  console.log(`\nper-class accuracy:\n${formatPerClass(r.confusionMatrix, classes)}`);
  console.log(`\nconfusion matrix (rows: true, columns: predicted):\n${formatConfusion(r.confusionMatrix, classes)}`);
  return 0;
}

export const evalCommand: Command = { name: 'eval', summary: 'accuracy, per-class accuracy and confusion matrix of a checkpoint', usage, run };
