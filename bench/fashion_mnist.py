"""The shipped Fashion-MNIST model's training recipe in PyTorch 1.13, for its wall time on the same machine (and its
accuracy as a cross-check). The resnet-ts run it mirrors (docs/FASHION-MNIST.md):

  resnet train --data fashion-mnist --arch resnet18 --stem small --epochs 13 --batch-size 128 --lr 0.1 --nesterov \\
               --scheduler onecycle --out runs/fmnist-r18

The same recipe, step for step:
  data       the 60000 training images (Debian's dataset-fashion-mnist IDX files), shuffled, batches of 128 (the last
             one 96); RandomCrop(28, padding=4), RandomHorizontalFlip, ToTensor, Normalize(0.2860, 0.3530); the 10000
             test images (Normalize only) evaluated after every epoch. Transforms run in the main process, as ours.
  model      torchvision resnet18(num_classes=10) with conv1 = Conv2d(1, 64, 3, 1, 1, bias=False) (kaiming normal,
             fan_out, like torchvision's other convs) and the max pool kept (our 'small' stem)
  optimizer  SGD(lr 0.1, momentum 0.9, nesterov, weight_decay 5e-4 on every parameter), cross-entropy
  schedule   OneCycleLR(max_lr 0.1, total_steps epochs * 469, pct_start 0.3; momentum cycled 0.85..0.95), stepped
             after every batch

Prints one line per epoch and a JSON summary (wall time, per-epoch seconds, test accuracy) last.

  /usr/bin/python3 bench/fashion_mnist.py [--epochs 13] [--threads 2] [--root /usr/share/datasets/fashion-mnist]
                                          [--limit-train N] [--seed 0]
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision import transforms as T

MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


class FashionMNIST(torch.utils.data.Dataset):
    def __init__(self, root, train, transform):
        split = 'train' if train else 't10k'
        self.images = read_idx(os.path.join(root, f'{split}-images-idx3-ubyte.gz'))
        self.labels = read_idx(os.path.join(root, f'{split}-labels-idx1-ubyte.gz')).astype(np.int64)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i], mode='L')), int(self.labels[i])


def build_model():
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(m.conv1.weight, mode='fan_out', nonlinearity='relu')
    return m


def evaluate(model, loader):
    model.eval()
    correct = n = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction='sum').item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
    return loss / n, correct / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--epochs', type=int, default=13)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--root', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--limit-train', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    train_tf = T.Compose([T.RandomCrop(28, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((MEAN,), (STD,))])
    eval_tf = T.Compose([T.ToTensor(), T.Normalize((MEAN,), (STD,))])
    train_ds = FashionMNIST(a.root, True, train_tf)
    if a.limit_train:
        train_ds = torch.utils.data.Subset(train_ds, range(a.limit_train))
    test_ds = FashionMNIST(a.root, False, eval_tf)
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=128, shuffle=True)
    test_dl = torch.utils.data.DataLoader(test_ds, batch_size=128)

    model = build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=a.epochs * len(train_dl), pct_start=0.3)

    t_start = time.time()
    epochs = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        for x, y in train_dl:
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        t_train = time.time() - t0
        val_loss, val_acc = evaluate(model, test_dl)
        row = {'epoch': epoch, 'train_loss': loss_sum / seen, 'train_accuracy': correct / seen, 'val_loss': val_loss,
               'val_accuracy': val_acc, 'train_seconds': t_train, 'seconds': time.time() - t0, 'images_per_second': seen / t_train}
        epochs.append(row)
        print(f"epoch {epoch}/{a.epochs}  train_loss {row['train_loss']:.4f}  train_acc {100 * row['train_accuracy']:.2f}%  "
              f"val_loss {val_loss:.4f}  val_acc {100 * val_acc:.2f}%  {row['seconds']:.1f} s  {row['images_per_second']:.1f} img/s", flush=True)
    total = time.time() - t_start
    print(json.dumps({'torch': torch.__version__, 'threads': a.threads, 'epochs': a.epochs, 'wall_seconds': total,
                      'final_val_accuracy': epochs[-1]['val_accuracy'], 'best_val_accuracy': max(e['val_accuracy'] for e in epochs),
                      'load_average': os.getloadavg(), 'per_epoch': epochs}))


if __name__ == '__main__':
    main()
