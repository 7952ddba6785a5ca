# PyTorch's side of tests/models/model-folder.test.ts: build the model the folder's README (model card) describes,
# with plain torch and torchvision, load its model.safetensors (float16 storage widened to float32, read here with
# numpy: Debian has no python3-safetensors), and compare its eval logits on the test's input with ours.
# Usage: model_folder_check.py DIR x.npy y.npy; prints one JSON object.
#        model_folder_check.py DIR --images A.png B.png ...: classifies the images through the model card's
#        torchvision transforms (from config.json's preprocess) and prints {"top1": [...], "prob": [...]}.
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

ST = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64}

d = sys.argv[1]
cfg = json.load(open(os.path.join(d, 'config.json')))
spec = cfg['model_spec']
assert spec['family'] == 'torchvision' and spec['stem'] in ('cifar', 'small'), spec

with open(os.path.join(d, 'model.safetensors'), 'rb') as f:
    raw = f.read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
header.pop('__metadata__', None)
sd, dtypes = {}, set()
for key, e in header.items():
    a, b = e['data_offsets']
    arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=ST[e['dtype']]).reshape(e['shape'])
    dtypes.add(e['dtype'])
    sd[key] = torch.from_numpy(arr.astype(np.float32) if arr.dtype == np.float16 else arr.copy())

m = getattr(torchvision.models, spec['arch'])(num_classes=spec['num_classes'])
m.conv1 = torch.nn.Conv2d(spec['in_channels'], m.conv1.out_channels, 3, 1, 1, bias=False)
if spec['stem'] == 'cifar':
    m.maxpool = torch.nn.Identity()
m.load_state_dict(sd)
m.eval()
if sys.argv[2] == '--images':
    from PIL import Image
    import torchvision.transforms as T
    steps = []
    for t in cfg['preprocess']:
        if t['name'] == 'Normalize':
            steps += [T.ToTensor(), T.Normalize(t['mean'], t['std'])]
        elif t['name'] == 'Grayscale':
            steps.append(T.Grayscale(t.get('numOutputChannels', 1)))
        else:
            steps.append(getattr(T, t['name'])(t['size']))
    tf = T.Compose(steps)
    x = torch.stack([tf(Image.open(p).convert('RGB')) for p in sys.argv[3:]])
    with torch.no_grad():
        p = m(x).softmax(1)
    print(json.dumps({'top1': p.argmax(1).tolist(), 'prob': p.max(1).values.tolist(), 'dtypes': sorted(dtypes)}))
    sys.exit(0)
xpath, ypath = sys.argv[2:4]
x = torch.from_numpy(np.load(xpath))
ref = torch.from_numpy(np.load(ypath))
with torch.no_grad():
    y = m(x)
print(json.dumps({'max_abs_diff': float((y - ref).abs().max()), 'scale': float(ref.abs().max()),
                  'argmax_equal': bool((y.argmax(1) == ref.argmax(1)).all()), 'dtypes': sorted(dtypes)}))
