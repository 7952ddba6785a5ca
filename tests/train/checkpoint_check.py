# PyTorch's side of tests/train/checkpoint.test.ts: for every case in <dir>/manifest.json, load the checkpoint the
# TypeScript side wrote with torch.load(weights_only=True), build the same torchvision model the way a PyTorch user
# would (seed 004: resnet18(); model.fc = nn.Linear(num_ftrs, k); load_state_dict(ckpt['model_state_dict']), or the
# documented cifar stem), compare its eval-mode logits on the saved input with ours, and load optimizer_state_dict
# into torch.optim.SGD and take a step with it. Prints one JSON object per case.
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision


def build(case, ckpt):
    spec = ckpt.get('model_spec')
    if spec is None:  # the tutorial's flow
        m = getattr(torchvision.models, case['arch'])()
        num_ftrs = m.fc.in_features
        m.fc = nn.Linear(num_ftrs, case['num_classes'])
        return m
    m = getattr(torchvision.models, spec['arch'])(num_classes=spec['num_classes'])
    if spec['stem'] in ('cifar', 'small'):
        m.conv1 = nn.Conv2d(spec['in_channels'], m.conv1.out_channels, 3, 1, 1, bias=False)
        if spec['stem'] == 'cifar':
            m.maxpool = nn.Identity()
    elif spec['in_channels'] != 3:
        m.conv1 = nn.Conv2d(spec['in_channels'], m.conv1.out_channels, 7, 2, 3, bias=False)
    return m


def scalar(v):
    return v.item() if isinstance(v, torch.Tensor) else v


def check(d, case):
    out = {'name': case['name']}
    ckpt = torch.load(os.path.join(d, case['file']), weights_only=True)
    out['keys'] = list(ckpt.keys())
    m = build(case, ckpt)
    m.load_state_dict(ckpt['model_state_dict'])
    m.eval()
    x = torch.from_numpy(np.load(os.path.join(d, case['input'])))
    ref = torch.from_numpy(np.load(os.path.join(d, case['logits'])))
    with torch.no_grad():
        y = m(x)
    out['logits_max_abs_diff'] = float((y - ref).abs().max())
    out['logits_scale'] = float(ref.abs().max())
    out['argmax_equal'] = bool((y.argmax(1) == ref.argmax(1)).all())
    for k in ('epoch', 'loss', 'lr_note'):
        if k in ckpt:
            v = ckpt[k]
            out[k] = {'type': type(v).__name__, 'dtype': str(v.dtype) if isinstance(v, torch.Tensor) else None, 'value': scalar(v)}
    if 'optimizer_state_dict' in ckpt:
        sd = ckpt['optimizer_state_dict']
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=123.0)
        opt.load_state_dict(sd)
        g = opt.param_groups[0]
        out['optim'] = {'lr': scalar(g['lr']), 'momentum': scalar(g['momentum']), 'weight_decay': scalar(g['weight_decay']),
                        'groups': len(opt.param_groups), 'state_entries': len(opt.state)}
        bufs = [opt.state[p]['momentum_buffer'] for p in params if p in opt.state]
        out['optim']['buffers_match_params'] = all(b.shape == p.shape for b, p in zip(bufs, params))
        # the loaded optimizer steps: gradient of a sum, one SGD update, parameters change and stay finite
        before = [p.detach().clone() for p in params]
        m.train()
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()
        out['optim']['stepped'] = any(not torch.equal(b, p) for b, p in zip(before, params))
        out['optim']['finite'] = all(bool(torch.isfinite(p).all()) for p in params)
    return out


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    manifest = json.load(open(os.path.join(d, 'manifest.json')))
    for case in manifest['cases']:
        try:
            print(json.dumps(check(d, case)))
        except Exception as ex:  # reported to the test, which fails with the message
            print(json.dumps({'name': case['name'], 'error': '%s: %s' % (type(ex).__name__, ex)}))


main()
