"""Makes examples/chelsea-224.npy, the input of the README's main job: skimage's chelsea.png (a real photo of a
cat, shipped by Debian's python3-skimage) through torchvision's ImageNet inference preset (resize 256, center crop
224, ImageNet mean/std), as a float32 (1, 3, 224, 224) array. Run: /usr/bin/python3 scripts/make_example.py"""
import os

import numpy as np
import skimage.data
import torch
from PIL import Image
from torchvision.models import ResNet50_Weights

here = os.path.dirname(os.path.abspath(__file__))
img = Image.fromarray(skimage.data.chelsea()).convert("RGB")
x = ResNet50_Weights.IMAGENET1K_V1.transforms()(img).unsqueeze(0).contiguous()
assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
np.save(os.path.join(here, "..", "examples", "chelsea-224.npy"), x.numpy())
print("wrote examples/chelsea-224.npy", tuple(x.shape))
