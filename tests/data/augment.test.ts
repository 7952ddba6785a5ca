// Training augmentation against torchvision 0.14 on PIL images (scripts/fixtures/make_augment.py): resized_crop with
// fixed boxes (PIL's resize: bilinear, bicubic, nearest; up and down; RGB and grey) byte for byte, pad in every mode
// (including pads wider than the image), hflip, RandomResizedCrop's central-crop fallback; and the parameter rules
// of the random transforms (boxes in bounds, scale and ratio respected, determinism from the generator).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import {
  RandomCrop, RandomHorizontalFlip, RandomResizedCrop, buildTransform, centerCropPixels, crop, grayscale, hflip, pad, pixelsToTensor,
  resizePixels, resizedCrop, type PaddingMode, type Pixels,
} from '../../src/data/augment.js';
import { normalize } from '../../src/data/transforms.js';
import type { PilFilter } from '../../src/data/resample.js';
import { Generator } from '../../src/tensor/random.js';
import { fixture } from '../helpers.js';

const f = readSafetensorsSync(fixture('augment', 'augment.safetensors'));
const cases = JSON.parse(f.metadata!.cases) as {
  resized_crop: { image: string; top: number; left: number; height: number; width: number; size: number[]; interpolation: PilFilter }[];
  pad: { image: string; crop: number[]; padding: number | number[]; fill: number | number[]; mode: PaddingMode }[];
  fallback: { width: number; height: number; ratio: number[]; box: number[] }[];
  resize: { image: string; size: number | [number, number]; max_size: number | null }[];
  center_crop: { image: string; size: number | number[] }[];
};

function image(name: string): Pixels {
  const t = f.tensors.get(`img.${name}`)!;
  return { data: t.contiguousData() as Uint8Array, height: t.shape[0], width: t.shape[1], channels: t.ndim === 3 ? t.shape[2] : 1 };
}

function sameBytes(p: Pixels, key: string, what: string): void {
  const t = f.tensors.get(key)!;
  assert.deepEqual([p.height, p.width, p.channels], [t.shape[0], t.shape[1], t.ndim === 3 ? t.shape[2] : 1], `${what}: size`);
  const want = t.contiguousData() as Uint8Array;
  let bad = 0, first = -1;
  for (let i = 0; i < want.length; i++) if (p.data[i] !== want[i]) { bad++; if (first < 0) first = i; }
  assert.equal(bad, 0, `${what}: ${bad} bytes differ, first at ${first} (${p.data[first]} vs ${want[first]})`);
}

test('resizedCrop equals F.resized_crop on PIL images byte for byte', () => {
  cases.resized_crop.forEach((c, k) => {
    const out = resizedCrop(image(c.image), c.top, c.left, c.height, c.width, c.size, c.interpolation);
    sameBytes(out, `rc.${k}`, `resized_crop ${JSON.stringify(c)}`);
  });
});

test('pad equals F.pad (constant with fills, edge, reflect, symmetric, pads wider than the image); hflip equals F.hflip', () => {
  cases.pad.forEach((c, k) => {
    const [left, top, w, h] = c.crop;
    const small = crop(image(c.image), top, left, h, w);
    sameBytes(pad(small, c.padding, c.fill, c.mode), `pad.${k}`, `pad ${JSON.stringify(c)}`);
  });
  sameBytes(hflip(image('rgb')), 'flip.rgb', 'hflip rgb');
  sameBytes(hflip(image('grey')), 'flip.grey', 'hflip grey');
  assert.throws(() => pad(image('grey'), [1, 2, 3]), /1, 2, or 4 element/);
  assert.throws(() => pad(image('rgb'), 1, [1, 2]), /fill of 3 integer/);
});

test('resizePixels and centerCropPixels (any channel count) equal F.resize and F.center_crop on PIL images', () => {
  cases.resize.forEach((c, k) => sameBytes(resizePixels(image(c.image), c.size, 'bilinear', c.max_size ?? undefined), `resize.${k}`, `resize ${JSON.stringify(c)}`));
  cases.center_crop.forEach((c, k) => sameBytes(centerCropPixels(image(c.image), c.size), `ccrop.${k}`, `center_crop ${JSON.stringify(c)}`));
  const pipe = buildTransform([{ name: 'Resize', size: 40 }, { name: 'CenterCrop', size: 32 }]);
  const t = pipe(image('grey'), new Generator(0));
  const want = pixelsToTensor(centerCropPixels(resizePixels(image('grey'), 40), 32));
  assert.deepEqual(t.toArray(), want.toArray());
  assert.deepEqual([...t.shape], [1, 32, 32]);
  assert.throws(() => buildTransform([{ name: 'Resize', size: 10, maxSize: 5 }]), /max_size = 5 must be strictly greater/);
});

test('RandomResizedCrop: central-crop fallback equals torchvision\'s; boxes in bounds with the scale and ratio rules', () => {
  for (const c of cases.fallback) {
    const box = RandomResizedCrop.getParams(c.width, c.height, [2, 3], c.ratio, new Generator(1));
    assert.deepEqual(box, c.box, `fallback for ${c.width}x${c.height} ratio ${c.ratio}`);
  }
  const g = new Generator(7);
  const sizes = [[451, 300], [300, 451], [28, 28], [17, 5], [224, 224]];
  for (const [W, H] of sizes) {
    const boxes = new Set<string>();
    for (let k = 0; k < 500; k++) {
      const [i, j, h, w] = RandomResizedCrop.getParams(W, H, [0.08, 1], [3 / 4, 4 / 3], g);
      assert.ok(h >= 1 && w >= 1 && i >= 0 && j >= 0 && i + h <= H && j + w <= W, `box ${[i, j, h, w]} outside ${W}x${H}`);
      const area = W * H;
      // w = round(sqrt(A r)), h = round(sqrt(A / r)) with A in [0.08, 1] * area and r in [3/4, 4/3]: allow the rounding
      const central = (i === Math.floor((H - h) / 2) && j === Math.floor((W - w) / 2));
      if (!central || W * H > 1000) {
        assert.ok((w + 0.5) * (h + 0.5) >= 0.08 * area && (w - 0.5) * (h - 0.5) <= area, `area of ${[h, w]} in ${W}x${H}`);
        assert.ok((w + 0.5) / Math.max(h - 0.5, 1e-9) >= 3 / 4 && (w - 0.5) / (h + 0.5) <= 4 / 3, `ratio of ${[h, w]}`);
      }
      boxes.add(`${i},${j},${h},${w}`);
    }
    assert.ok(boxes.size > (W * H > 100 ? 100 : 5), `${W}x${H}: boxes vary (${boxes.size} distinct)`);
  }
  const t = new RandomResizedCrop(32);
  const a = t.apply(image('rgb'), new Generator(3)), b = t.apply(image('rgb'), new Generator(3));
  assert.deepEqual([a.height, a.width, a.channels], [32, 32, 3]);
  assert.deepEqual(a.data, b.data, 'same generator state, same crop');
});

test('RandomCrop: padding then a uniform crop; padIfNeeded; errors', () => {
  const grey = image('grey');
  const rc = new RandomCrop(28, { padding: 4 });
  const positions = new Set<string>();
  for (let s = 0; s < 200; s++) {
    const [i, j] = RandomCrop.getParams(36, 36, [28, 28], new Generator(s));
    assert.ok(i >= 0 && i <= 8 && j >= 0 && j <= 8);
    positions.add(`${i},${j}`);
    const out = rc.apply(grey, new Generator(s));
    assert.deepEqual(out.data, crop(pad(grey, 4), i, j, 28, 28).data, `seed ${s}`);
  }
  assert.ok(positions.size > 60, `crop positions vary (${positions.size} of 81)`);
  const same = new RandomCrop([28, 28]).apply(grey, new Generator(0));
  assert.deepEqual(same.data, grey.data, 'an image of the crop\'s size is returned whole');
  const small = crop(grey, 0, 0, 5, 6);
  const padded = new RandomCrop([8, 9], { padIfNeeded: true, fill: 255 }).apply(small, new Generator(0));
  assert.deepEqual([padded.height, padded.width], [8, 9]);
  const [pi, pj] = RandomCrop.getParams(12, 11, [8, 9], new Generator(0));
  assert.deepEqual(padded.data, crop(pad(small, [3, 3], 255), pi, pj, 8, 9).data, 'padIfNeeded pads both sides by the shortfall, as torchvision');
  assert.throws(() => new RandomCrop(30).apply(grey, new Generator(0)), /Required crop size \[30, 30\] is larger than input image size \[28, 28\]/);
});

test('RandomHorizontalFlip, grayscale, toTensor, normalize and spec pipelines', () => {
  const rgb = image('rgb');
  const flip = new RandomHorizontalFlip();
  const g = new Generator(11);
  let flipped = 0;
  for (let k = 0; k < 400; k++) if (flip.apply(rgb, g) !== rgb) flipped++;
  assert.ok(flipped > 150 && flipped < 250, `p=0.5 flips about half (${flipped}/400)`);
  assert.equal(new RandomHorizontalFlip(0).apply(rgb, g), rgb);
  assert.deepEqual(new RandomHorizontalFlip(1).apply(rgb, g).data, hflip(rgb).data);

  const grey = image('grey');
  const t = pixelsToTensor(grey);
  assert.deepEqual([...t.shape], [1, 28, 28]);
  assert.equal(t.toArray()[300], Math.fround(grey.data[300] / 255));
  const g3 = grayscale(grey, 3);
  assert.deepEqual([g3.channels, g3.data[3 * 300 + 2]], [3, grey.data[300]]);
  const luma = grayscale({ data: new Uint8Array([255, 0, 0, 10, 200, 30]), width: 2, height: 1, channels: 3 });
  assert.deepEqual([...luma.data], [76, 124], 'PIL convert("L") luma');
  const n = normalize(pixelsToTensor(g3), [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]);
  assert.ok(Math.abs(n.toArray()[300] - (grey.data[300] / 255 - 0.5) / 0.25) < 1e-6);

  const pipe = buildTransform([{ name: 'RandomCrop', size: 28, padding: 4 }, { name: 'RandomHorizontalFlip' }, { name: 'Grayscale', numOutputChannels: 3 }, { name: 'ToTensor' }, { name: 'Normalize', mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353] }]);
  const x1 = pipe(grey, new Generator(5)), x2 = pipe(grey, new Generator(5)), x3 = pipe(grey, new Generator(6));
  assert.deepEqual([...x1.shape], [3, 28, 28]);
  assert.deepEqual(x1.toArray(), x2.toArray(), 'same generator, same sample');
  assert.notDeepEqual(x1.toArray(), x3.toArray(), 'another generator, another augmentation');
  assert.throws(() => buildTransform([{ name: 'ToTensor' }, { name: 'RandomHorizontalFlip' }]), /works on pixels but comes after ToTensor/);
  assert.throws(() => buildTransform([{ name: 'Blur' } as never]), /unknown transform/);
});
