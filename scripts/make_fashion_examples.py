"""Makes examples/fashion-mnist/: twelve Fashion-MNIST test images as 28x28 grey PNGs, the input of the README's main
job (the shipped model in models/fashion-mnist-resnet18 classifies them). The images are the first test image of
each of the ten classes, then the next two test images, named <test index>-<true class>.png so a reader sees the
answer. Only the test split is used: the model never trained on these.
Run: /usr/bin/python3 scripts/make_fashion_examples.py [/usr/share/datasets/fashion-mnist]"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

CLASSES = ['t-shirt-top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']
root = sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'


def idx(name):
    with gzip.open(os.path.join(root, name), 'rb') as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


images, labels = idx('t10k-images-idx3-ubyte.gz'), idx('t10k-labels-idx1-ubyte.gz')
picked = [int(np.argmax(labels == c)) for c in range(10)]
picked += [i for i in range(len(labels)) if i not in picked][:2]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'examples', 'fashion-mnist')
os.makedirs(out, exist_ok=True)
for i in sorted(picked):
    name = f'{i:05d}-{CLASSES[labels[i]]}.png'
    Image.fromarray(images[i], mode='L').save(os.path.join(out, name), optimize=True)
    print('wrote', os.path.join('examples', 'fashion-mnist', name))
