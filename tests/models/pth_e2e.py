"""PyTorch half of tests/models/pth-e2e.test.ts: the state dicts resnet-ts wrote, loaded by Debian's torch 1.13 /
torchvision 0.14 exactly as a PyTorch user would, strictly, and run.

  python3 pth_e2e.py        (requests on stdin, one JSON object per line; one JSON answer per line on stdout)

Request {"arch", "pth", "safetensors", "input", "out"}: the .pth is read with torch.load(weights_only=True), the
.safetensors parsed here by hand (Debian has no safetensors package: struct + json, an independent reader), the input
is an .npy. Each state dict goes into a fresh torchvision.models.<arch>() with load_state_dict(strict=True); the
model runs in eval mode. Answer {"arch", "keys": [[key, dtype, shape], ...], "sha256": {"pth", "safetensors"} (of
every tensor as "key|dtype|shape\\n" + its little-endian bytes, in order), "type"} and, in the "out" folder,
logits.npy (float32, from the .pth), logits_st.npy (float32, from the .safetensors) and logits_f64.npy (the same
model in float64: the exact answer, for deep networks whose float32 rounding PyTorch itself cannot keep within the
logits rule). Any failure answers {"error": "..."} and the next request is served.
"""
import hashlib
import json
import os
import struct
import sys
import traceback

import numpy as np
import torch
import torchvision

ST_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "bool"}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = memoryview(raw)[8 + n:]
    out = {}
    end = 0
    for key, e in header.items():  # json keeps the file's order: the writer's
        a, b = e["data_offsets"]
        dtype = ST_DTYPES[e["dtype"]]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        out[key] = t.reshape(e["shape"])
        end = max(end, b)
    assert end == len(data), f"{path}: {len(data) - end} bytes after the last tensor"
    return out


def digest(sd):
    h = hashlib.sha256()
    for k, v in sd.items():
        h.update(f"{k}|{NAMES[v.dtype]}|{','.join(str(s) for s in v.shape)}\n".encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def run(arch, sd, x):
    model = getattr(torchvision.models, arch)()
    model.load_state_dict(sd, strict=True)
    return model.eval(), model(x)


def serve(req):
    arch = req["arch"]
    sd = torch.load(req["pth"], weights_only=True)
    st = read_safetensors(req["safetensors"])
    assert list(st.keys()) == list(sd.keys()), "the .safetensors and the .pth list different keys"
    for k in sd:
        assert sd[k].dtype == st[k].dtype and torch.equal(sd[k], st[k]), f"{k} differs between the .pth and the .safetensors"
    x = torch.from_numpy(np.load(req["input"]))
    model, y = run(arch, sd, x)
    assert list(model.state_dict().keys()) == list(sd.keys()), "state-dict keys are not in torchvision's order"
    _, y_st = run(arch, st, x)
    with torch.no_grad():
        y64 = model.double()(x.double())
    np.save(os.path.join(req["out"], "logits.npy"), y.numpy())
    np.save(os.path.join(req["out"], "logits_st.npy"), y_st.numpy())
    np.save(os.path.join(req["out"], "logits_f64.npy"), y64.numpy())
    return {"arch": arch, "type": type(sd).__name__, "keys": [[k, NAMES[v.dtype], list(v.shape)] for k, v in sd.items()],
            "sha256": {"pth": digest(sd), "safetensors": digest(st)}}


torch.set_num_threads(1)
for line in sys.stdin:
    try:
        answer = serve(json.loads(line))
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
        answer = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
    print(json.dumps(answer), flush=True)
