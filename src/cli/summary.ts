// resnet summary: one row per module (name, type, output shape, params, multiply-adds) and totals, for a torchvision
// architecture or a Hugging Face config.json, as a table or as JSON.

import { existsSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import { getModel, listModels } from '../models/resnet.js';
import { ResNetConfig, ResNetForImageClassification } from '../models/hf.js';
import { formatSummary, summary, type Summary } from '../models/summary.js';
import { skipInit } from '../nn/init.js';
import { type Command, UsageError, intArg, parse, parseInputShape } from './args.js';

const usage = `Usage: resnet summary <arch | config.json> [--input 3x224x224] [--batch N] [--depth N] [--json]

One row per module (dotted name, type, output shape per sample, params, multiply-adds; a container shows its
subtree's totals), then totals: params, multiply-adds in G (conv + linear, as torchvision's GFLOPS) and sizes.
  arch         a torchvision builder: ${listModels().join(', ')}
  config.json  a Hugging Face ResNet config (no weights needed: built without drawing initial values)
  --input      CxHxW of one sample (default 3x224x224; an HF config: its num_channels x224x224)
  --batch      batch size of the zero input (default 1)
  --depth      rows down to this depth; 1 gives the top level (conv1, bn1, relu, maxpool, layer1..4, avgpool, fc)
  --json       the summary as one JSON object (rows down to --depth; all by default)`;

function buildModel(target: string): { model: Module; title: string } {
  const arch = target.toLowerCase();
  if (listModels().includes(arch)) return { model: skipInit(() => getModel(arch)), title: arch };
  if (!target.endsWith('.json') && !existsSync(target)) {
    throw new UsageError(`unknown architecture '${target}' (and no such config.json); known: ${listModels().join(', ')}`, usage);
  }
  const config = ResNetConfig.fromJSONFile(target);
  return { model: skipInit(() => new ResNetForImageClassification(config)), title: `${target} (${config.layerType}, depths ${config.depths.join('-')})` };
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { input: { type: 'string' }, batch: { type: 'string' }, depth: { type: 'string' }, json: { type: 'boolean' } }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `expected one arch or config.json, got ${positionals.length}: ${positionals.join(' ')}` : 'give an arch (e.g. resnet50) or a config.json', usage);
  const inputShape = v.input !== undefined ? parseInputShape(v.input, '--input', usage) : undefined;
  const batch = intArg(v.batch, '--batch', usage);
  const depth = intArg(v.depth, '--depth', usage);
  const { model, title } = buildModel(positionals[0]);
  let s: Summary;
  try {
    s = summary(model, { inputShape, batch });
  } catch (e) {
    if (inputShape) throw new UsageError(`--input ${v.input} does not fit ${title}: ${(e as Error).message}`, usage);
    throw e;
  }
  if (v.json) {
    const rows = depth === undefined ? s.rows : s.rows.filter((r) => r.depth <= depth);
    console.log(JSON.stringify({ arch: positionals[0], ...s, rows }));
  } else console.log(formatSummary(s, { depth, title }));
  return 0;
}

export const summaryCommand: Command = { name: 'summary', summary: 'one row per module: output shapes, params, multiply-adds; totals', usage, run };
