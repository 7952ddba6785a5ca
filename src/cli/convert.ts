// resnet convert: weights between the two families (torchvision keys <-> transformers keys, through convert.ts) and
// the two formats (torch.save .pth and safetensors), or into a Hugging Face model folder (savePretrained's layout).
// Tensors are passed through unchanged, so torchvision -> hf -> torchvision gives back the same bytes.

import { existsSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { writeSafetensorsSync } from '../io/safetensors.js';
import { writePthSync } from '../io/pth-write.js';
import { type ResolvedWeights, resolveWeights } from '../models/factory.js';
import { type HFTarget, hfConfigForTorchvision, hfToTorchvision, torchvisionArchForHF, torchvisionToHF } from '../models/convert.js';
import { configWithOverrides, saveStateDictPretrained } from '../models/pretrained.js';
import { guessArchitecture } from '../models/arch-guess.js';
import type { ResNetConfig } from '../models/hf-config.js';
import { type Command, UsageError, oneOf, parse } from './args.js';

const usage = `Usage: resnet convert IN OUT [--to torchvision|hf] [--format pth|safetensors] [--arch NAME] [--max-shard-size SIZE]

Converts weights between torchvision's and transformers' ResNet keys and between torch.save (.pth) and safetensors.
IN is any --weights spec (a .pth/.bin/.safetensors file, an HF model folder, hf:org/name, a URL, or a registry name
with --arch). OUT is a file (.pth/.pt/.bin: torch.save; .safetensors) or, for --to hf, a folder written as
savePretrained writes it (config.json + model.safetensors, or pytorch_model.bin with --format pth; sharded above
--max-shard-size, e.g. 2GB). --to defaults to IN's family (hf for a folder OUT). From a checkpoint dict only the state
dict is converted. torchvision -> hf needs a torchvision ResNet transformers can express (resnet18 ... resnet152).`;

type Family = 'torchvision' | 'hf';

/** The HF config for torchvision weights: from --arch, the registry entry or the keys' shapes; labels from fc. */
function configForTorchvision(w: ResolvedWeights, arch: string | undefined): { config: ResNetConfig; target: HFTarget } {
  const g = guessArchitecture(w.stateDict);
  if (g?.family !== 'torchvision') throw new Error(`${w.source}: cannot tell which torchvision ResNet these weights are`);
  const name = arch ?? w.arch ?? g.arch;
  if (arch && g.arch && arch !== g.arch) throw new Error(`${w.source}: the weights have the shape of ${g.arch}, not --arch ${arch}`);
  const numLabels = g.numClasses ?? 0;
  let config = name
    ? hfConfigForTorchvision(name, { numLabels })
    : hfConfigForTorchvision({ block: g.block, layers: g.layers, groups: g.groups, widthPerGroup: g.widthPerGroup }, { numLabels });
  const categories = w.weights?.meta.categories;
  if (categories && categories.length === numLabels) config = configWithOverrides(config, { id2label: Object.fromEntries(categories.map((c, i) => [String(i), c])) });
  return { config, target: g.numClasses === null ? 'ResNetModel' : 'ResNetForImageClassification' };
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, {
    to: { type: 'string' }, format: { type: 'string' }, arch: { type: 'string' }, 'max-shard-size': { type: 'string' },
  }, usage, true);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`expected IN and OUT, got ${positionals.length} argument(s)`, usage);
  const [input, out] = positionals;
  const toArg = oneOf(v.to, '--to', ['torchvision', 'hf'] as const, usage);
  const formatArg = oneOf(v.format, '--format', ['pth', 'safetensors'] as const, usage);
  const ext = extname(out).toLowerCase();
  const extFormat = ext === '.safetensors' ? 'safetensors' : ['.pth', '.pt', '.bin'].includes(ext) ? 'pth' : null;
  const folder = existsSync(out) ? statSync(out).isDirectory() : extFormat === null;
  if (folder && toArg === 'torchvision') throw new UsageError(`${out} is a folder (HF model folder layout); for torchvision weights give OUT a .pth or .safetensors name`, usage);

  const w = await resolveWeights(input, { arch: v.arch, progress: true });
  if (w.family === 'unknown') throw new Error(`${w.source}: the keys are neither torchvision's nor transformers' ResNet keys (resnet inspect lists them)`);
  const from: Family = w.family;
  const to: Family = toArg ?? (folder ? 'hf' : from);
  const format = formatArg ?? extFormat ?? 'safetensors';
  let sd: Map<string, Tensor> = w.stateDict;
  let config: ResNetConfig | null = w.config;
  let target: HFTarget = [...sd.keys()].some((k) => k.startsWith('resnet.')) ? 'ResNetForImageClassification' : 'ResNetModel';
  if (from === 'torchvision' && to === 'hf') {
    ({ config, target } = configForTorchvision(w, v.arch));
    sd = torchvisionToHF(sd, { target });
  } else if (from === 'hf' && to === 'torchvision') {
    if (w.config) torchvisionArchForHF(w.config); // an error saying why when torchvision cannot express it
    sd = hfToTorchvision(sd);
  }
  let wrote: string;
  if (folder) {
    if (!config) throw new Error(`${w.source} has no config.json, which an HF model folder needs: convert from an HF folder or from torchvision weights, or write a .safetensors file`);
    const arch = config.architectures?.[0] ?? target;
    const files = saveStateDictPretrained(out, sd, config, arch, { safeSerialization: format === 'safetensors', maxShardSize: v['max-shard-size'] });
    wrote = `HF model folder ${out} (${arch}: ${files.map((f) => basename(f)).join(', ')})`;
  } else {
    if (format === 'safetensors') writeSafetensorsSync(out, sd, to === 'hf' ? { format: 'pt' } : undefined);
    else writePthSync(out, sd);
    wrote = `${out} (${format === 'pth' ? 'torch.save' : 'safetensors'})`;
  }
  const note = w.stateDictKey ? `; the checkpoint's other entries (all but ${w.stateDictKey}) were not converted` : '';
  console.error(`resnet convert: ${w.source} (${from} keys, ${sd.size} tensors) -> ${to} keys, ${wrote}${note}`);
  return 0;
}

export const convertCommand: Command = { name: 'convert', summary: 'weights between torchvision and HF keys, .pth and safetensors, or into an HF folder', usage, run };
