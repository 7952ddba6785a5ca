"""Interop half of tests/train/optim.test.ts: optimizer state dicts our .pth writer made must load into torch's
optimizers (torch 1.13) and continue exactly as torch's own run did.

  python3 optim_interop.py FIXTURE_DIR OURS_DIR

For every case in FIXTURE_DIR/cases.json, OURS_DIR/<case>.pth is our optimizer's state dict after step save_at.
It is read with torch.load(weights_only=True); torch 1.13's weights_only unpickler has no BINFLOAT opcode (it
cannot read torch's own optimizer state dicts, whose lr is a float), so on exactly that error the file is read
with torch.load() instead (reported on stdout). The state dict must equal the one torch saved at that step
(<case>.pth in FIXTURE_DIR) and, loaded into a fresh optimizer over the parameters after save_at, the remaining
steps must reproduce torch's parameters within 1e-5 relative.
"""
import json
import os
import sys

import torch


def load(path):
    try:
        return torch.load(path, weights_only=True), 'weights_only'
    except Exception as ex:  # noqa: BLE001
        if 'Unsupported operand 71' not in str(ex):
            raise
        return torch.load(path), 'plain (BINFLOAT)'


def same(a, b, where, errs):
    if torch.is_tensor(a) or torch.is_tensor(b):
        if not (torch.is_tensor(a) and torch.is_tensor(b)):
            errs.append(f'{where}: tensor vs {type(a).__name__}/{type(b).__name__}')
        elif a.dtype != b.dtype or a.shape != b.shape:
            errs.append(f'{where}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}')
        elif not torch.allclose(a, b, rtol=1e-5, atol=1e-7):
            errs.append(f'{where}: values differ by {(a - b).abs().max().item()}')
    elif isinstance(a, dict) and isinstance(b, dict):
        if set(a.keys()) != set(b.keys()):
            errs.append(f'{where}: keys {sorted(map(str, a.keys()))} vs {sorted(map(str, b.keys()))}')
        for k in a:
            if k in b:
                same(a[k], b[k], f'{where}.{k}', errs)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            errs.append(f'{where}: lengths {len(a)} vs {len(b)}')
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f'{where}[{i}]', errs)
    elif a != b or type(a) is bool and type(b) is not bool:
        errs.append(f'{where}: {a!r} vs {b!r}')


def main(fix, ours):
    spec = json.load(open(os.path.join(fix, 'cases.json')))
    steps, save_at, frozen = spec['steps'], spec['save_at'], spec['frozen']
    errs = []
    for c in spec['cases']:
        name = c['name']
        inputs = torch.load(os.path.join(fix, f'{name}.inputs.pt'))
        sd, how = load(os.path.join(ours, f'{name}.pth'))
        print(f'{name}: read with torch.load {how}')
        same(sd, torch.load(os.path.join(fix, f'{name}.pth')), f'{name} state dict', errs)
        ps = [torch.nn.Parameter(t.clone()) for t in inputs['after'][save_at]]
        ps[frozen].requires_grad_(False)
        o1 = {k: tuple(v) if isinstance(v, list) else v for k, v in c['group1'].items()}
        o0 = {k: tuple(v) if isinstance(v, list) else v for k, v in c['group0'].items()}
        opt = getattr(torch.optim, c['optimizer'])([{'params': ps[:2]}, {'params': ps[2:], **o1}], **o0)
        opt.load_state_dict(sd)
        for s in range(save_at + 1, steps + 1):
            opt.zero_grad(set_to_none=True)
            for p, g in zip(ps, inputs['grads'][s]):
                if g is not None:
                    p.grad = g.clone()
            opt.step()
            for i, (p, ref) in enumerate(zip(ps, inputs['after'][s])):
                if not torch.allclose(p.detach(), ref, rtol=1e-5, atol=1e-7):
                    errs.append(f'{name}: p{i} after step {s} differs by {(p.detach() - ref).abs().max().item()}')
    for e in errs:
        print('MISMATCH', e)
    print('OK' if not errs else 'FAILED', len(spec['cases']))
    sys.exit(1 if errs else 0)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
