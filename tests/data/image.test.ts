// Image decoding (src/data/image.ts) against PIL 9.4 (fixtures: scripts/fixtures/make_images.py ->
// tests/fixtures/gen/images/): every file in files/ decodes to PIL's Image.open(f).convert('RGB') (PNG 8/16-bit, grey,
// grey+alpha, 1-bit, palette with and without tRNS, RGBA, CMYK JPEG, GIF first frame, TIFF, WebP, JPEG); the EXIF
// orientation policy both ways; content sniffing over file names; and bad files (empty, truncated JPEG/PNG, corrupt
// JPEG data, text renamed .jpg, BMP, a 30000x30000 pixel bomb) each an ImageDecodeError naming the file, while the
// good files of the same batch still decode.
//
// Lossless formats must be bit-exact. JPEG and lossy WebP go through two builds of the same decoders (PIL: Debian's
// libjpeg-turbo / libwebp; sharp: its bundled mozjpeg / libwebp), which may round the IDCT or the YUV conversion
// differently on another platform: they are allowed max 2, mean 0.05 (0..255 units); the measured figures are printed.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { ImageDecodeError, MAX_IMAGE_PIXELS, SharpLoadError, loadSharp, readImage, sniffImageFormat, type RgbImage } from '../../src/data/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fixture } from '../helpers.js';

const file = (name: string) => fixture('images', 'files', name);
const badFile = (name: string) => fixture('images', 'bad', name);
const decoded = readSafetensorsSync(fixture('images', 'decode.safetensors')).tensors;
const LOSSY = /\.jpg$|^chelsea\.webp$/;

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'resnet-img-'));
  temps.push(d);
  return d;
}

function diff(img: RgbImage, ref: Tensor, what: string): { max: number; mean: number } {
  assert.deepEqual([img.height, img.width, 3], [...ref.shape], `${what}: size ${img.width}x${img.height} vs PIL ${ref.shape[1]}x${ref.shape[0]}`);
  const r = ref.contiguousData() as Uint8Array;
  let max = 0, sum = 0;
  for (let i = 0; i < r.length; i++) {
    const d = Math.abs(img.data[i] - r[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / r.length };
}

const names = [...decoded.keys()].filter((k) => !k.endsWith('.exif'));

test('every fixture file decodes to PIL\'s convert(\'RGB\') (lossless formats bit-exact)', async (t) => {
  assert.ok(names.length >= 20, `decode.safetensors has ${names.length} files`);
  for (const name of names) {
    const img = await readImage(file(name));
    const { max, mean } = diff(img, decoded.get(name)!, name);
    t.diagnostic(`${name}: max ${max} mean ${mean.toFixed(4)} (0..255 units)`);
    if (LOSSY.test(name)) {
      assert.ok(max <= 2 && mean < 0.05, `${name}: lossy decode differs from PIL by max ${max}, mean ${mean}`);
    } else {
      assert.equal(max, 0, `${name}: lossless decode differs from PIL by up to ${max} (mean ${mean})`);
    }
  }
});

test('bytes in: the same pixels, errors carry the given name', async () => {
  const bytes = new Uint8Array(readFileSync(file('chelsea.png')));
  const img = await readImage(bytes);
  assert.equal(diff(img, decoded.get('chelsea.png')!, 'bytes').max, 0);
  await assert.rejects(readImage(new Uint8Array(0), { name: 'upload-7' }), (e: unknown) => e instanceof ImageDecodeError && e.file === 'upload-7' && /upload-7: the file is empty/.test(e.message));
  await assert.rejects(readImage(new Uint8Array(10)), /<buffer>: the content is not an image \(starts with bytes 00 00/);
});

test('EXIF orientation: ignored by default (as PIL and torchvision), applied with orientation "exif"', async () => {
  const name = 'chelsea_exif6.jpg';
  const plain = await readImage(file(name));
  assert.equal(diff(plain, decoded.get(name)!, name).max, 0);
  assert.deepEqual([plain.width, plain.height], [451, 300]);
  const upright = await readImage(file(name), { orientation: 'exif' });
  assert.deepEqual([upright.width, upright.height], [300, 451], 'orientation 6 rotates a 451x300 image to 300x451');
  assert.equal(diff(upright, decoded.get(`${name}.exif`)!, `${name} exif`).max, 0, 'equals PIL\'s ImageOps.exif_transpose');
  // an image without EXIF is unchanged by the option
  assert.equal(diff(await readImage(file('chelsea.png'), { orientation: 'exif' }), decoded.get('chelsea.png')!, 'png').max, 0);
  await assert.rejects(readImage(file(name), { orientation: 'auto' as never }), /Expected 'ignore' or 'exif' for orientation but received auto/);
});

test('16-bit: PIL 9.4 clips 16-bit grey (mode I) to 255; depth16 "high-byte" keeps the high byte instead', async () => {
  const bright = await readImage(file('chelsea_grey16_bright.png'));
  assert.ok(bright.data.every((v) => v === 255), 'PIL\'s rule: values above 255 clip to white');
  const hi = await readImage(file('chelsea_grey16_bright.png'), { depth16: 'high-byte' });
  // the maker wrote v * 257 + noise(-300..300) for the grey value v: the high byte is within 2 of v
  assert.ok(diff(hi, decoded.get('chelsea_L.png')!, 'high-byte').max <= 2);
});

test('content is sniffed, never trusted from the extension', async () => {
  const d = tempDir();
  writeFileSync(join(d, 'photo.jpg'), readFileSync(file('chelsea.png'))); // a PNG named .jpg
  assert.equal(diff(await readImage(join(d, 'photo.jpg')), decoded.get('chelsea.png')!, 'png as .jpg').max, 0);
  writeFileSync(join(d, 'cat.png'), readFileSync(file('coffee.jpg'))); // a JPEG named .png
  assert.equal(diff(await readImage(join(d, 'cat.png')), decoded.get('coffee.jpg')!, 'jpg as .png').max <= 2, true);
  const magic: [string, string | null][] = [['chelsea.png', 'png'], ['chelsea.jpg', 'jpeg'], ['chelsea.gif', 'gif'], ['chelsea.webp', 'webp'], ['chelsea.tif', 'tiff']];
  for (const [n, fmt] of magic) assert.equal(sniffImageFormat(new Uint8Array(readFileSync(file(n)))), fmt, n);
  assert.equal(sniffImageFormat(new Uint8Array(readFileSync(badFile('chelsea.bmp')))), null);
  assert.equal(sniffImageFormat(new Uint8Array([0xff, 0xd8])), null, 'two bytes are not a JPEG');
});

/** Each bad file: an ImageDecodeError whose message names the file and matches the reason. */
const BAD: [string, RegExp][] = [
  ['empty.jpg', /the file is empty \(0 bytes\)/],
  ['truncated.jpg', /cannot decode the JPEG image \(damaged or truncated file\?\): .*premature end of JPEG/],
  ['truncated.png', /cannot decode the PNG image \(damaged or truncated file\?\): .*(read error|truncat|end of)/i],
  ['corrupt.jpg', /cannot decode the JPEG image \(damaged or truncated file\?\): .*Corrupt JPEG data/],
  ['text.jpg', /the content is text \("This is a text file, not a JPEG/],
  ['chelsea.bmp', /the content is a BMP image, which is not supported; expected JPEG, PNG, WebP, GIF or TIFF/],
  ['bomb.png', /the image is 30000x30000 = 900000000 pixels, more than the limit of 89478485 .*decompression bomb/],
];

for (const [name, reason] of BAD) {
  test(`bad file ${name}: a clear ImageDecodeError naming the file`, async () => {
    const path = badFile(name);
    const t0 = Date.now();
    await assert.rejects(readImage(path), (e: unknown) => {
      assert.ok(e instanceof ImageDecodeError, `expected ImageDecodeError, got ${String(e)}`);
      assert.equal(e.file, path);
      assert.ok(e.message.startsWith(`${path}: `), e.message);
      assert.match(e.message, reason);
      return true;
    });
    if (name === 'bomb.png') assert.ok(Date.now() - t0 < 2000, `the bomb is refused from its header (took ${Date.now() - t0} ms)`);
  });
}

test('a batch with bad files: the good files still decode, each failure names its own file', async () => {
  const paths = [file('chelsea.png'), badFile('truncated.jpg'), file('coffee.jpg'), badFile('text.jpg'), badFile('bomb.png'), file('chelsea_P.png')];
  const res = await Promise.allSettled(paths.map((p) => readImage(p)));
  assert.deepEqual(res.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
  res.forEach((r, i) => {
    if (r.status === 'rejected') assert.equal((r.reason as ImageDecodeError).file, paths[i]);
  });
  assert.equal(diff((res[2] as PromiseFulfilledResult<RgbImage>).value, decoded.get('coffee.jpg')!, 'coffee').max <= 2, true);
});

test('pixel limit: maxPixels (default PIL\'s MAX_IMAGE_PIXELS) is inclusive', async () => {
  assert.equal(MAX_IMAGE_PIXELS, 89478485);
  const ok = await readImage(file('chelsea.png'), { maxPixels: 451 * 300 });
  assert.equal(ok.width, 451);
  await assert.rejects(readImage(file('chelsea.png'), { maxPixels: 451 * 300 - 1 }), /451x300 = 135300 pixels, more than the limit of 135299/);
  await assert.rejects(readImage(file('chelsea.png'), { maxPixels: 0 }), /Expected a positive number for maxPixels but received 0/);
});

test('a missing file is an ImageDecodeError naming it', async () => {
  const p = join(tempDir(), 'nope.jpg');
  await assert.rejects(readImage(p), (e: unknown) => e instanceof ImageDecodeError && e.file === p && /cannot read the file \(ENOENT/.test(e.message));
});

test('when sharp cannot load, the error says how to fix it', async () => {
  await assert.rejects(loadSharp('resnet-ts-no-such-sharp'), (e: unknown) => {
    assert.ok(e instanceof SharpLoadError);
    assert.match(e.message, /the sharp module \(libvips\) did not load \(Cannot find (package|module) 'resnet-ts-no-such-sharp'/);
    assert.match(e.message, /npm install --include=optional sharp/);
    assert.match(e.message, /npm rebuild sharp \(platform \w+-\w+/);
    return true;
  });
});
