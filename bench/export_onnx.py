"""Exports a torchvision ResNet with seeded random weights for bench/ort.bench.ts, so that onnxruntime-node and
resnet-ts run the same network with the same weights:
  OUT/<arch>.onnx            torch.onnx.export, opset 13, dynamic batch
  OUT/<arch>.safetensors     the same state dict, for resnet-ts
  OUT/<arch>.check.safetensors  an input batch and PyTorch's eval logits, to check both engines agree
Usage: /usr/bin/python3 bench/export_onnx.py ARCH OUT_DIR"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "fixtures"))
from common import randomize_bn, write_safetensors  # noqa: E402

arch, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = getattr(torchvision.models, arch)()
randomize_bn(model, lambda g: torch.randn(2, 3, 96, 96, generator=g))
model.eval()
x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    logits = model(x)
write_safetensors(os.path.join(out, f"{arch}.safetensors"), model.state_dict())
write_safetensors(os.path.join(out, f"{arch}.check.safetensors"), {"input": x, "logits": logits})
torch.onnx.export(model, x[:1], os.path.join(out, f"{arch}.onnx"), input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
print(f"exported {arch} to {out}")
