"""PyTorch half of tests/models/pth-e2e.test.ts: the state dicts resnet-ts wrote, loaded by Debian's torch 1.13 /
torchvision 0.14 exactly as a PyTorch user would, strictly, and run.

  python3 pth_e2e.py        (requests on stdin, one JSON object per line; one JSON answer per line on stdout)

Request {"arch", "pth", "safetensors", "input", "out"}: the .pth is read with torch.load(weights_only=True), the
.safetensors parsed here by hand (Debian has no safetensors package: struct + json, an independent reader), the input
is an .npy. Each state dict goes into torchvision.models.<arch>() with load_state_dict(strict=True), in eval mode.
Answer {"arch", "type", "keys": [[key, dtype, shape], ...], "crc32": {"pth": [...], "safetensors": [...]} (CRC-32 of
each tensor's little-endian bytes, in order)} and, in the "out" folder, logits.npy (from the .pth) and logits_st.npy
(from the .safetensors), float32.
Request {"f64": true, "input", "out"}: logits_f64.npy, the last model (the .pth's weights) run in float64, the exact
answer the test needs only for deep networks whose float32 rounding PyTorch itself cannot keep within the logits rule.
Any failure answers {"error": "..."} and the next request is served.
"""
import contextlib
import json
import mmap
import os
import struct
import sys
import traceback
import zlib

import numpy as np
import torch
import torchvision

ST_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "bool"}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # private and writable: torch.frombuffer views it
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    end = 0
    for key, e in header.items():  # json keeps the file's order: the writer's
        a, b = e["data_offsets"]
        dtype = ST_DTYPES[e["dtype"]]
        count = (b - a) // torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(raw, dtype=dtype, count=count, offset=base + a) if count else torch.empty(0, dtype=dtype)
        out[key] = t.reshape(e["shape"])
        end = max(end, b)
    assert base + end == len(raw), f"{path}: {len(raw) - base - end} bytes after the last tensor"
    return out


def crcs(sd):
    return [zlib.crc32(v.contiguous().numpy()) for v in sd.values()]


@contextlib.contextmanager
def no_random_init():
    """Build without torchvision's random initial values (as torch.nn.utils.skip_init, which ResNet cannot take: it
    has no device argument): load_state_dict(strict=True) then overwrites every parameter and buffer anyway."""
    names = ("kaiming_normal_", "kaiming_uniform_", "uniform_", "normal_")
    saved = {k: getattr(torch.nn.init, k) for k in names}
    for k in names:
        setattr(torch.nn.init, k, lambda t, *a, **kw: t)
    try:
        yield
    finally:
        for k, f in saved.items():
            setattr(torch.nn.init, k, f)


last = {}


@torch.no_grad()
def serve(req):
    if req.get("f64"):
        x = torch.from_numpy(np.load(req["input"])).double()
        np.save(os.path.join(req["out"], "logits_f64.npy"), last["model"].double()(x).numpy())
        last["model"].float()
        return {"f64": True}
    arch = req["arch"]
    sd = torch.load(req["pth"], weights_only=True)
    st = read_safetensors(req["safetensors"])
    with no_random_init():
        model = getattr(torchvision.models, arch)().eval()
    assert list(model.state_dict().keys()) == list(sd.keys()), "state-dict keys are not in torchvision's order"
    x = torch.from_numpy(np.load(req["input"]))
    model.load_state_dict(st, strict=True)
    np.save(os.path.join(req["out"], "logits_st.npy"), model(x).numpy())
    model.load_state_dict(sd, strict=True)
    np.save(os.path.join(req["out"], "logits.npy"), model(x).numpy())
    last["model"] = model
    return {"arch": arch, "type": type(sd).__name__, "keys": [[k, NAMES[v.dtype], list(v.shape)] for k, v in sd.items()],
            "crc32": {"pth": crcs(sd), "safetensors": crcs(st)}}


torch.set_num_threads(1)
for line in sys.stdin:
    try:
        answer = serve(json.loads(line))
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
        answer = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
    print(json.dumps(answer), flush=True)
