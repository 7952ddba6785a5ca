"""Writes src/models/weights-data.ts, the facts behind src/models/weights.ts: every torchvision weight of the ten
ResNet builders (url, hash prefix, meta, inference transform) and the 1000 ImageNet categories, read from the
installed torchvision by introspection (the Weights enums, their `transforms` partials, `_meta._IMAGENET_CATEGORIES`),
never typed by hand. Run once by hand, not by the tests: /usr/bin/python3 scripts/make_registry.py
tests/models/weights.test.ts re-reads the same facts live and compares."""
import inspect
import json
import os
import re
import warnings

import hashlib

import torch
import torch.hub
import torchvision
from torchvision.models import _api, _meta, resnet
from torchvision.transforms._presets import ImageClassification

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "models", "weights-data.ts")
# The Hugging Face ports of the same family (https://huggingface.co/microsoft/resnet-50 etc.), by depth.
HF_DEPTHS = [18, 26, 34, 50, 101, 152]


def transform_data(partial_fn):
    """The inference preset as data: the partial's keywords over ImageClassification's own defaults."""
    assert partial_fn.func is ImageClassification, partial_fn
    params = inspect.signature(ImageClassification.__init__).parameters
    kw = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    kw.update(partial_fn.keywords)
    t = ImageClassification(**partial_fn.keywords)  # what the preset really holds after construction
    assert t.resize_size == [kw["resize_size"]] and t.crop_size == [kw["crop_size"]]
    return {
        "resizeSize": kw["resize_size"],
        "cropSize": kw["crop_size"],
        "interpolation": t.interpolation.value,
        "mean": list(t.mean),
        "std": list(t.std),
        # torchvision 0.14's preset has no `antialias` argument: a PIL image is always resized with antialiasing
        # and later releases make it explicit (antialias=True), so the weights expect an antialiased resize.
        "antialias": bool(kw.get("antialias", True)),
    }


def hash_prefix(url):
    m = torch.hub.HASH_REGEX.search(os.path.basename(url))
    return m.group(1) if m else None


def gflops(builder):
    """torchvision >= 0.15's meta["_ops"]: multiply-adds of every conv and linear at 224x224, in G (3 decimals).
    torchvision 0.14 has no _ops; this reproduces the later numbers (resnet50: 4.089, as in the seed)."""
    model, total = getattr(resnet, builder)().eval(), [0]

    def hook(mod, inp, out):
        k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1] if isinstance(mod, torch.nn.Conv2d) \
            else mod.in_features
        total[0] += out.numel() * k

    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return round(total[0] / 1e9, 3)


def file_size_mb(url):
    """torchvision >= 0.15's meta["_file_size"] (MB of the checkpoint) when the file is in the torch hub cache and
    its sha256 matches the url's prefix; None otherwise (torchvision 0.14 does not record it, and we never download)."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        if not hashlib.sha256(f.read()).hexdigest().startswith(hash_prefix(url) or "-"):
            return None
    return round(os.path.getsize(path) / 1024 / 1024, 3)


def weight_data(w, builder):
    meta = dict(w.meta)
    assert meta.pop("categories") is _meta._IMAGENET_CATEGORIES, w  # stored once, below
    meta["min_size"] = list(meta["min_size"])
    meta.setdefault("_ops", gflops(builder))
    if "_file_size" not in meta and file_size_mb(w.url) is not None:
        meta["_file_size"] = file_size_mb(w.url)
    return {"url": w.url, "hashPrefix": hash_prefix(w.url), "transforms": transform_data(w.transforms), "meta": meta}


def legacy_default(builder):
    """The member the deprecated `pretrained=True` selects (handle_legacy_interface's default), by calling the
    builder with torchvision's _resnet swapped for one that returns the weights it was given (no model, no download)."""
    real = resnet._resnet
    resnet._resnet = lambda block, layers, weights, progress, **kwargs: weights
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(resnet, builder)(pretrained=True).name
    finally:
        resnet._resnet = real


def to_ts(obj):
    """JSON (a valid TS literal) with number lists kept on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return re.sub(r"\[\s*(-?[\d.]+(?:,\s*-?[\d.]+)*)\s*\]", lambda m: "[" + ", ".join(re.split(r",\s*", m.group(1))) + "]", text)


def main():
    enums = {}
    for builder in [n for n in resnet.__all__ if n[0].islower()]:
        enum = _api._get_enum_from_fn(getattr(resnet, builder))
        members = {name: weight_data(w, builder) for name, w in enum.__members__.items() if name == w.name}
        enums[enum.__name__] = {"builder": builder, "default": enum.DEFAULT.name, "pretrained": legacy_default(builder),
                                 "members": members}
    assert list(enums) == [n for n in resnet.__all__ if n.endswith("_Weights")]
    hf = [{"repo": f"microsoft/resnet-{d}", "torchvision": f"resnet{d}" if f"resnet{d}" in resnet.__all__ else None}
          for d in HF_DEPTHS]

    cats, line = [], ""
    for c in _meta._IMAGENET_CATEGORIES:
        item = json.dumps(c) + ","
        if len(line) + len(item) + 1 > 116:
            cats.append(line)
            line = ""
        line = f"{line} {item}" if line else item
    cats.append(line)

    with open(OUT, "w") as f:
        f.write(f"// GENERATED by scripts/make_registry.py from torchvision {torchvision.__version__} "
                "(torchvision/models/resnet.py, _meta.py). Do not edit;\n// re-run the script. "
                "tests/models/weights.test.ts checks every fact against the installed torchvision.\n\n")
        f.write(f"export const TORCHVISION_VERSION = {json.dumps(torchvision.__version__)};\n\n")
        f.write("/** torchvision's _meta._IMAGENET_CATEGORIES: class index -> label. */\n")
        f.write("export const IMAGENET_CATEGORIES: readonly string[] = Object.freeze([\n")
        f.write("".join(f"  {l}\n" for l in cats))
        f.write("]);\n\n")
        f.write("/** Per weights enum: its builder, the member DEFAULT aliases, the member the legacy pretrained=True means,\n * "
                "and each member's facts. */\n")
        f.write(f"export const WEIGHTS_DATA = {to_ts(enums)} as const;\n\n")
        f.write("/** Hugging Face's ResNet checkpoints and the torchvision builder of the same depth (null: none). */\n")
        f.write(f"export const HF_RESNET = {to_ts(hf)} as const;\n")
    print("wrote", os.path.relpath(OUT), len(enums), "enums,", sum(len(e["members"]) for e in enums.values()),
          "weights,", len(_meta._IMAGENET_CATEGORIES), "categories")


if __name__ == "__main__":
    main()
