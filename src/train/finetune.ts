// The tutorial's fine-tuning steps, for both families:
//
//   num_ftrs = model.fc.in_features                    replaceHead(model, 2)      // torchvision: model.fc
//   model.fc = nn.Linear(num_ftrs, 2)                                             // transformers: classifier[1]
//   for p in model.parameters(): p.requires_grad=False  freezeBackbone(model)      // all but the head
//   for p in model.fc.parameters(): p.requires_grad=True
//   optim.SGD([{'params': backbone, 'lr': 1e-4},        new SGD(paramGroups(model, { lr: 1e-3, backboneLr: 1e-4 }))
//              {'params': model.fc.parameters()}], lr=1e-3)
//
// Frozen BatchNorm layers keep PyTorch's behaviour (train mode, running statistics updated) unless the loop is
// asked otherwise (loop.ts: frozenBnEval / setFrozenBnEval).

import { Generator } from '../tensor/random.js';
import { Module, type Parameter } from '../nn/module.js';
import { Linear, Sequential } from '../nn/layers.js';
import type { ParamGroupInput } from '../optim/optimizer.js';

export interface HeadRef {
  /** The head's dotted name (fc, or classifier.1 for transformers' ResNetForImageClassification). */
  name: string;
  linear: Linear;
  /** Replace it in the model (same place in the state dict). */
  set(l: Linear): void;
}

/** The classification head: a Linear `fc` (torchvision) or the Linear at the end of a Sequential `classifier` (HF). */
export function headOf(model: Module): HeadRef {
  const m = model as unknown as Record<string, unknown>;
  if (m.fc instanceof Linear) return { name: 'fc', linear: m.fc, set: (l) => { m.fc = l; } };
  if (m.classifier instanceof Sequential) {
    const seq = m.classifier as unknown as Record<string, unknown>;
    const kids = m.classifier.namedChildren();
    const last = kids[kids.length - 1];
    if (last && last[1] instanceof Linear) return { name: `classifier.${last[0]}`, linear: last[1], set: (l) => { seq[last[0]] = l; } };
  }
  throw new TypeError(`${model.constructor.name} has no classification head to find (expected a Linear fc, or a Sequential classifier ending in a Linear)`);
}

/**
 * model.fc = Linear(model.fc.inFeatures, numClasses) (or the HF classifier's Linear), freshly initialised with
 * PyTorch's default init from `generator` (or a Generator seeded with `seed`, default 0). An HF model's
 * config.numLabels follows (its id2label becomes LABEL_i unless `labels` names the classes).
 */
export function replaceHead(model: Module, numClasses: number, o: { generator?: Generator; seed?: number; labels?: readonly string[] } = {}): Linear {
  const head = headOf(model);
  const g = o.generator ?? new Generator(o.seed ?? 0);
  const l = new Linear(head.linear.inFeatures, numClasses, { generator: g, bias: head.linear.bias !== null });
  head.set(l);
  const config = (model as unknown as { config?: { numLabels: number; id2label: Record<string, string>; label2id: Record<string, number> | null } }).config;
  if (config && typeof config === 'object' && 'numLabels' in config) {
    config.numLabels = numClasses;
    if (o.labels && o.labels.length === numClasses) {
      config.id2label = Object.fromEntries(o.labels.map((c, i) => [String(i), c]));
      config.label2id = Object.fromEntries(o.labels.map((c, i) => [c, i]));
    }
  }
  return l;
}

/** Parameters of the head (headOf) and of everything else. */
export function splitParameters(model: Module): { head: Parameter[]; backbone: Parameter[] } {
  const head = new Set<Parameter>(headOf(model).linear.parameters());
  const all = model.parameters();
  return { head: all.filter((p) => head.has(p)), backbone: all.filter((p) => !head.has(p)) };
}

/** requiresGrad false on every parameter but the head's; returns the parameter element counts. */
export function freezeBackbone(model: Module): { frozen: number; trainable: number } {
  const { head, backbone } = splitParameters(model);
  for (const p of backbone) p.requiresGrad_(false);
  for (const p of head) p.requiresGrad_(true);
  const count = (ps: Parameter[]) => ps.reduce((s, p) => s + p.numel, 0);
  return { frozen: count(backbone), trainable: count(head) };
}

/**
 * Optimizer parameter groups: the backbone's trainable parameters with backboneLr (default lr: then one group),
 * then the head's with lr. Frozen parameters are left out (as `filter(lambda p: p.requires_grad, ...)`).
 */
export function paramGroups(model: Module, o: { lr: number; backboneLr?: number }): ParamGroupInput[] {
  const { head, backbone } = splitParameters(model);
  const b = backbone.filter((p) => p.requiresGrad), h = head.filter((p) => p.requiresGrad);
  if (o.backboneLr === undefined || o.backboneLr === o.lr) {
    const all = model.parameters().filter((p) => p.requiresGrad);
    if (all.length === 0) throw new RangeError('every parameter of the model is frozen: nothing to train');
    return [{ params: all, lr: o.lr }];
  }
  const groups: ParamGroupInput[] = [];
  if (b.length) groups.push({ params: b, lr: o.backboneLr });
  if (h.length) groups.push({ params: h, lr: o.lr });
  if (groups.length === 0) throw new RangeError('every parameter of the model is frozen: nothing to train');
  return groups;
}
