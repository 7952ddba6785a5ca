// resnet run: one forward pass of a model over an input .npy, output written as .npy.

import { readNpySync, writeNpySync } from '../io/npy.js';
import { loadModel } from '../models/factory.js';
import { setBackend, backendInfo } from '../backend/select.js';
import type { Tensor } from '../tensor/tensor.js';
import { setGradEnabled } from '../tensor/autograd.js';
import { type Command, UsageError, intArg, oneOf, parse } from './args.js';

const usage = `Usage: resnet run [--arch NAME | --config config.json] --input x.npy --output y.npy
                  [--weights SPEC] [--num-classes N] [--seed S] [--backend js|native] [--train-mode]

Runs one forward pass (eval mode unless --train-mode) on a float32 (N,3,H,W) input and writes the output
(logits) as float32 .npy. Without --weights the model has its seeded random initial weights.
--weights SPEC: a .pth/.bin or .safetensors file, a Hugging Face model folder, hf:org/name[@revision] (through the
HF cache; HF_HOME, HF_ENDPOINT, HF_HUB_OFFLINE), an http(s) URL (torch.hub cache), or a torchvision registry name
(DEFAULT, IMAGENET1K_V2 with --arch, or ResNet50_Weights.IMAGENET1K_V2; TORCH_HOME; RESNET_TORCHVISION_BASE_URL for
a mirror). The architecture may come from the weights (an HF folder or repo, a full registry name, a torchvision
file); weights of the other family are converted.`;

async function run(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    arch: { type: 'string' }, config: { type: 'string' }, weights: { type: 'string' },
    'num-classes': { type: 'string' }, seed: { type: 'string' }, input: { type: 'string' }, output: { type: 'string' },
    backend: { type: 'string' }, 'train-mode': { type: 'boolean' },
  }, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (v.arch && v.config) throw new UsageError('give one of --arch or --config, not both', usage);
  if (!v.arch && !v.config && !v.weights) throw new UsageError('give --arch or --config (or --weights naming an HF folder, a repo or a full registry name)', usage);
  if (!v.input) throw new UsageError('--input is required', usage);
  if (!v.output) throw new UsageError('--output is required', usage);
  const backend = oneOf(v.backend, '--backend', ['js', 'native'] as const, usage);
  if (backend) setBackend(backend);
  const model = await loadModel({
    arch: v.arch, config: v.config, weights: v.weights, numClasses: intArg(v['num-classes'], '--num-classes', usage, 0), seed: intArg(v.seed, '--seed', usage, 0),
    warn: (m) => console.error(`resnet run: warning: ${m}`),
  });
  const x = readNpySync(v.input);
  if (x.dtype !== 'float32' || x.ndim !== 4) throw new Error(`${v.input}: expected a float32 (N,C,H,W) array but found ${x.dtype} of shape [${x.shape.join(', ')}]`);
  model.train(!!v['train-mode']);
  setGradEnabled(false); // inference only: no tape, fused eval path
  const t0 = performance.now();
  const out = model.forward(x) as Tensor | { logits: Tensor };
  const ms = performance.now() - t0;
  const y = 'logits' in out ? out.logits : out;
  writeNpySync(v.output, y);
  console.error(`resnet run: ${v.arch ?? v.config ?? v.weights} on [${x.shape.join('x')}] -> [${y.shape.join('x')}] in ${ms.toFixed(1)} ms (${backendInfo().name} backend), wrote ${v.output}`);
  return 0;
}

export const runCommand: Command = { name: 'run', summary: 'one forward pass over an .npy input, output to .npy', usage, run };
