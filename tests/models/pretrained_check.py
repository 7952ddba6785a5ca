"""PyTorch half of tests/models/pretrained.test.ts: load model folders that resnet-ts's savePretrained wrote, with
PyTorch only, and run them.

  python3 pretrained_check.py X.npy DIR...

For each DIR: config.json -> hf_reference.ResNetConfig, the class named by config.architectures[0], the weights
from model.safetensors / pytorch_model.bin or their shards (the index's weight_map; torch.load(weights_only=True)
for .bin, safetensors parsed by hand: Debian has no safetensors package), load_state_dict(strict=True), eval, and
the logits (or pooler_output) of X written to DIR/torch_out.npy. Prints one JSON line per folder with what it read.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "fixtures"))
from hf_reference import ResNetBackbone, ResNetConfig, ResNetForImageClassification, ResNetModel  # noqa: E402

CLASSES = {c.__name__: c for c in (ResNetForImageClassification, ResNetModel, ResNetBackbone)}
ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    assert meta == {"format": "pt"}, f"{path}: metadata {meta}"
    data = raw[8 + n:]
    out = {}
    for key, e in header.items():
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"])
        out[key] = torch.from_numpy(arr.copy())
    return out


def read_file(path):
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    return torch.load(path, weights_only=True)


def load_weights(d):
    for single, index in (("model.safetensors", "model.safetensors.index.json"), ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        if os.path.exists(os.path.join(d, single)):
            return read_file(os.path.join(d, single)), [single]
        if os.path.exists(os.path.join(d, index)):
            with open(os.path.join(d, index)) as f:
                idx = json.load(f)
            shards = sorted(set(idx["weight_map"].values()))
            sd = {}
            for s in shards:
                part = read_file(os.path.join(d, s))
                assert not set(part) & set(sd), f"{s}: keys in two shards"
                sd.update(part)
            assert set(sd) == set(idx["weight_map"]), "weight_map and shards disagree"
            total = sum(t.numel() * t.element_size() for t in sd.values())
            assert idx["metadata"]["total_size"] == total, (idx["metadata"], total)
            return sd, shards
    raise SystemExit(f"{d}: no weights")


x = torch.from_numpy(np.load(sys.argv[1]))
for d in sys.argv[2:]:
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    arch = cfg["architectures"][0]
    model = CLASSES[arch](ResNetConfig(**cfg)).eval()
    sd, files = load_weights(d)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out = model(x)
    y = out["logits"] if arch == "ResNetForImageClassification" else out["pooler_output"]
    np.save(os.path.join(d, "torch_out.npy"), y.numpy())
    print(json.dumps({"dir": d, "class": arch, "files": files, "tensors": len(sd), "torch_dtype": cfg.get("torch_dtype")}))
