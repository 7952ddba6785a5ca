// Tests for src/io/hub.ts against a local HTTP server on 127.0.0.1 (no internet): downloads that succeed, fail
// (wrong hash, truncated body, 404, stall) and recover (500 / 429 then success, resume after a cut, stall then
// success, redirect); two processes downloading one file; a process SIGKILLed mid-download and the rerun; the torch.hub
// checkpoint cache (a corrupt cached file is reported, not loaded); the Hugging Face cache layout, offline mode and
// paths that try to escape the cache. Every failure case checks that no file and no temp file is left behind.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromArray } from '../../src/tensor/creation.js';
import { serializePth } from '../../src/io/pth-write.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { TensorFileError } from '../../src/io/tensor-bytes.js';
import { DownloadError, downloadUrlToFile, hashPrefixFromFileName, hfHubCacheDir, hfHubDownload, loadStateDictFromUrl, torchHubDir } from '../../src/io/hub.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'hub-child.js');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks);

const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'resnet-hub-'));
  temps.push(d);
  return d;
}
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** Files in `dir` (recursively) whose names mark them as temp files. */
function tempFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.partial'));
}

// ---- the server ---------------------------------------------------------------------------------------------------

const PAYLOAD = randomBytes(300_000);
const NAME = `weights-${sha256(PAYLOAD).slice(0, 8)}.bin`;
const files = new Map<string, Buffer>([[NAME, PAYLOAD]]);
const hits = new Map<string, number>(); // "<route>/<name>?<query>" -> requests so far
const seen: { method: string; url: string; range: string | undefined }[] = [];
const waiting = new Map<string, (() => void)[]>(); // barrier for /slow
let server: Server;
let base = '';

interface HfFile { content: Buffer; lfs: boolean; etag?: string }
interface HfRepo { commit: string; files: Map<string, HfFile>; commitHeader?: string; etagHeader?: string }
const hfRepos = new Map<string, HfRepo>();
const byBlob = new Map<string, Buffer>(); // sha256 -> content, the "CDN"

function gitSha1(b: Buffer): string {
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

function serve(res: ServerResponse, body: Buffer, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': String(body.length), 'content-type': 'application/octet-stream', ...headers });
  res.end(body);
}

function hfRoute(req: IncomingMessage, res: ServerResponse, path: string): boolean {
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
  if (!m) return false;
  const [, repoId, rev, file] = m.map(decodeURIComponent);
  if (repoId === 'old/model') { // a renamed repo: huggingface_hub follows relative redirects in its HEAD
    res.writeHead(307, { location: `/org/model/resolve/${encodeURIComponent(rev)}/${file}`, 'content-length': '0' });
    return void res.end(), true;
  }
  const repo = hfRepos.get(repoId);
  if (!repo) {
    serve(res, Buffer.from('not found'), 404, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
    return true;
  }
  if (rev === 'flaky') {
    serve(res, Buffer.from('busy'), 503, { 'retry-after': '0' });
    return true;
  }
  const f = repo.files.get(file);
  if (!f) {
    serve(res, Buffer.from('not found'), 404, { 'x-error-code': 'EntryNotFound', 'x-error-message': `${file} does not exist` });
    return true;
  }
  const common = { 'x-repo-commit': repo.commitHeader ?? repo.commit };
  if (f.lfs) {
    const sha = sha256(f.content);
    byBlob.set(sha, f.content);
    res.writeHead(302, { ...common, location: `${base}/cdn/${sha}`, 'x-linked-etag': repo.etagHeader ?? `"${f.etag ?? sha}"`, 'x-linked-size': String(f.content.length), 'content-length': '0' });
    res.end();
  } else {
    res.writeHead(200, { ...common, etag: repo.etagHeader ?? `"${gitSha1(f.content)}"`, 'content-length': String(f.content.length) });
    res.end(req.method === 'HEAD' ? undefined : f.content);
  }
  return true;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? '/', base);
  seen.push({ method: req.method ?? '', url: u.pathname + u.search, range: req.headers.range });
  const key = u.pathname + u.search;
  const n = (hits.get(key) ?? 0) + 1;
  hits.set(key, n);
  const [, route, ...rest] = u.pathname.split('/');
  const name = decodeURIComponent(rest.join('/'));
  const body = files.get(name);
  if (route === 'cdn') {
    const b = byBlob.get(name);
    return b ? serve(res, b) : serve(res, Buffer.from('no such blob'), 404);
  }
  if (hfRoute(req, res, u.pathname)) return;
  if (!body) return serve(res, Buffer.from('not found'), 404);
  const half = body.subarray(0, body.length >> 1);
  const stall = () => {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.flushHeaders(); // then silence until the client gives up
  };
  const truncate = () => {
    res.writeHead(200, { 'content-length': String(body.length), etag: '"v1"', 'accept-ranges': 'bytes' });
    res.write(half, () => setTimeout(() => res.socket?.destroy(), 20));
  };
  switch (route) {
    case 'files':
      return serve(res, body);
    case 'wrong':
      return serve(res, randomBytes(body.length));
    case 'truncated':
      return truncate();
    case 'truncated-once': {
      if (n === 1) return truncate();
      const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (!r || req.headers['if-range'] !== '"v1"') return serve(res, body);
      const from = Number(r[1]);
      return serve(res, body.subarray(from), 206, { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` });
    }
    case 'flaky':
      return n === 1 ? serve(res, Buffer.from('oops'), 500) : serve(res, body);
    case 'busy':
      return n === 1 ? serve(res, Buffer.from('slow down'), 429, { 'retry-after': '0' }) : serve(res, body);
    case 'stall':
      return stall();
    case 'stall-once':
      return n === 1 ? stall() : serve(res, body);
    case 'redirect':
      res.writeHead(302, { location: `/files/${encodeURIComponent(name)}` });
      return void res.end();
    case 'hang': // the first 64 KB, then nothing
      res.writeHead(200, { 'content-length': String(body.length) });
      return void res.write(body.subarray(0, 65536));
    case 'slow': {
      // wait until `n` clients asked (so they really overlap), then send in 20 chunks 15 ms apart
      const want = Number(u.searchParams.get('n') ?? 1);
      const q = waiting.get(key) ?? [];
      const go = () => {
        res.writeHead(200, { 'content-length': String(body.length) });
        let i = 0;
        const step = Math.ceil(body.length / 20);
        const tick = () => {
          if (i >= body.length) return void res.end();
          res.write(body.subarray(i, (i += step)));
          setTimeout(tick, 15);
        };
        tick();
      };
      q.push(go);
      waiting.set(key, q);
      if (q.length >= want) for (const f of q.splice(0)) f();
      return;
    }
    default:
      return serve(res, Buffer.from('not found'), 404);
  }
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function runChild(url: string, dst: string, hash = ''): { done: Promise<{ code: number | null; signal: string | null; out: string }>; kill: () => void } {
  const p = spawn(process.execPath, [CHILD, url, dst, hash], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const done = new Promise<{ code: number | null; signal: string | null; out: string }>((res) => p.on('close', (code, signal) => res({ code, signal, out })));
  return { done, kill: () => p.kill('SIGKILL') };
}

async function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<Error> {
  let err: Error | undefined;
  try {
    await p;
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, 'expected a rejection');
  for (const s of parts) {
    if (typeof s === 'string') assert.ok(err.message.includes(s), `expected ${JSON.stringify(s)} in: ${err.message}`);
    else assert.match(err.message, s);
  }
  return err;
}

// ---- downloadUrlToFile --------------------------------------------------------------------------------------------

test('a good file arrives whole, hash checked, with no temp file left', async () => {
  const dir = tempDir();
  const dst = join(dir, NAME);
  await downloadUrlToFile(`${base}/files/${NAME}`, dst, { hashPrefix: hashPrefixFromFileName(NAME), progress: false, expectedSize: PAYLOAD.length });
  assert.equal(sha256(readFileSync(dst)), sha256(PAYLOAD));
  assert.deepEqual(readdirSync(dir), [NAME]);
  // the whole sha256 works as a prefix too, and a nested destination folder is created
  const nested = join(dir, 'a', 'b', 'x.bin');
  await downloadUrlToFile(`${base}/files/${NAME}`, nested, { hashPrefix: sha256(PAYLOAD), progress: false });
  assert.equal(sha256(readFileSync(nested)), sha256(PAYLOAD));
});

test('torchvision check_hash convention for file names', () => {
  assert.equal(hashPrefixFromFileName('resnet18-f37072fd.pth'), 'f37072fd');
  assert.equal(hashPrefixFromFileName('wide_resnet50_2-9ba9bcbe.pth'), '9ba9bcbe');
  assert.equal(hashPrefixFromFileName('resnext101_32x8d-110c445d.pth'), '110c445d');
  assert.equal(hashPrefixFromFileName('model.safetensors'), undefined);
  assert.equal(hashPrefixFromFileName('resnet-50.pth'), undefined);
});

test('a wrong hash is reported with the URL and leaves nothing at dst', async () => {
  const dir = tempDir();
  const url = `${base}/wrong/${NAME}`;
  const err = await rejectsWith(downloadUrlToFile(url, join(dir, NAME), { hashPrefix: hashPrefixFromFileName(NAME), progress: false }), 'invalid hash value', hashPrefixFromFileName(NAME)!, url);
  assert.ok(err instanceof DownloadError);
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(hits.get(`/wrong/${NAME}`), 1, 'a hash mismatch is not retried');
});

test('a truncated body is retried, then reported; nothing is left', async () => {
  const dir = tempDir();
  const url = `${base}/truncated/${NAME}`;
  await rejectsWith(downloadUrlToFile(url, join(dir, NAME), { retries: 1, progress: false }), url, 'after 2 attempts');
  assert.equal(hits.get(`/truncated/${NAME}`), 2);
  assert.deepEqual(readdirSync(dir), []);
});

test('a cut download resumes with a Range request', async () => {
  const dir = tempDir();
  await downloadUrlToFile(`${base}/truncated-once/${NAME}`, join(dir, NAME), { hashPrefix: hashPrefixFromFileName(NAME), progress: false });
  assert.equal(sha256(readFileSync(join(dir, NAME))), sha256(PAYLOAD));
  const reqs = seen.filter((s) => s.url === `/truncated-once/${NAME}`);
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1].range, `bytes=${PAYLOAD.length >> 1}-`);
  assert.deepEqual(readdirSync(dir), [NAME]);
});

test('500 then success: retried', async () => {
  const dir = tempDir();
  await downloadUrlToFile(`${base}/flaky/${NAME}`, join(dir, NAME), { progress: false });
  assert.equal(hits.get(`/flaky/${NAME}`), 2);
  assert.equal(sha256(readFileSync(join(dir, NAME))), sha256(PAYLOAD));
});

test('429 then success: Retry-After is honoured instead of the default backoff', async () => {
  const dir = tempDir();
  const t0 = Date.now();
  await downloadUrlToFile(`${base}/busy/${NAME}`, join(dir, NAME), { progress: false });
  assert.ok(Date.now() - t0 < 700, `Retry-After: 0 should retry at once (default backoff is >= 800 ms), took ${Date.now() - t0} ms`);
  assert.equal(hits.get(`/busy/${NAME}`), 2);
  assert.equal(sha256(readFileSync(join(dir, NAME))), sha256(PAYLOAD));
});

test('a stalled connection times out, is retried, then reported', async () => {
  const dir = tempDir();
  const url = `${base}/stall/${NAME}`;
  const t0 = Date.now();
  await rejectsWith(downloadUrlToFile(url, join(dir, NAME), { stallTimeoutMs: 300, retries: 1, progress: false }), 'stall', url);
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(hits.get(`/stall/${NAME}`), 2);
  assert.deepEqual(readdirSync(dir), []);
  // a stall then a good answer succeeds
  await downloadUrlToFile(`${base}/stall-once/${NAME}`, join(dir, NAME), { stallTimeoutMs: 300, progress: false });
  assert.equal(sha256(readFileSync(join(dir, NAME))), sha256(PAYLOAD));
});

test('redirects are followed', async () => {
  const dir = tempDir();
  await downloadUrlToFile(`${base}/redirect/${NAME}`, join(dir, 'r.bin'), { hashPrefix: hashPrefixFromFileName(NAME), progress: false });
  assert.equal(sha256(readFileSync(join(dir, 'r.bin'))), sha256(PAYLOAD));
});

test('a 404 is not retried and says the status and URL', async () => {
  const dir = tempDir();
  const url = `${base}/files/nothing-here.bin`;
  const err = await rejectsWith(downloadUrlToFile(url, join(dir, 'x.bin'), { progress: false }), 'HTTP 404', url, 'not retried');
  assert.ok(err instanceof DownloadError);
  assert.equal(err.status, 404);
  assert.equal(err.url, url);
  assert.equal(hits.get('/files/nothing-here.bin'), 1);
  assert.deepEqual(readdirSync(dir), []);
});

test('a size that differs from expectedSize, a refused connection, an abort and bad options fail cleanly', async () => {
  const dir = tempDir();
  await rejectsWith(downloadUrlToFile(`${base}/files/${NAME}`, join(dir, 'a'), { expectedSize: 10, progress: false }), 'expected 10 bytes', 'announces 300000');
  const closed = createServer();
  await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((res) => closed.close(() => res()));
  await rejectsWith(downloadUrlToFile(`http://127.0.0.1:${port}/x`, join(dir, 'b'), { retries: 0, progress: false }), 'ECONNREFUSED', `127.0.0.1:${port}/x`);
  const ac = new AbortController();
  const p = downloadUrlToFile(`${base}/stall/${NAME}`, join(dir, 'c'), { signal: ac.signal, progress: false });
  setTimeout(() => ac.abort(), 100);
  await rejectsWith(p, 'aborted');
  await assert.rejects(downloadUrlToFile('ftp://example.com/x', join(dir, 'd')), /http\(s\) URL/);
  await assert.rejects(downloadUrlToFile(`${base}/files/${NAME}`, join(dir, 'e'), { hashPrefix: 'xyz' }), /hashPrefix/);
  assert.deepEqual(readdirSync(dir), []);
});

test('two processes downloading the same file both end with one good file', async () => {
  const dir = tempDir();
  const dst = join(dir, NAME);
  const url = `${base}/slow/${NAME}?n=2`;
  const [a, b] = await Promise.all([runChild(url, dst, hashPrefixFromFileName(NAME)).done, runChild(url, dst, hashPrefixFromFileName(NAME)).done]);
  assert.equal(a.code, 0, a.out);
  assert.equal(b.code, 0, b.out);
  assert.equal(hits.get(`/slow/${NAME}?n=2`), 2, 'both really downloaded at the same time');
  assert.equal(sha256(readFileSync(dst)), sha256(PAYLOAD));
  assert.deepEqual(readdirSync(dir), [NAME]);
});

test('a process killed mid-download leaves nothing at dst; the rerun succeeds and clears the stale temp file', async () => {
  const dir = tempDir();
  const dst = join(dir, NAME);
  const child = runChild(`${base}/hang/${NAME}`, dst);
  const t0 = Date.now();
  for (;;) {
    const part = tempFiles(dir);
    if (part.length === 1 && statSync(join(dir, part[0])).size >= 65536) break;
    assert.ok(Date.now() - t0 < 10_000, 'the child never started writing');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill();
  const { signal } = await child.done;
  assert.equal(signal, 'SIGKILL');
  assert.ok(!existsSync(dst), 'no file at dst after a kill');
  const [left] = tempFiles(dir);
  assert.match(left, new RegExp(`^\\.${NAME.replace(/\./g, '\\.')}\\.\\d+\\.[0-9a-f]+\\.partial$`));
  // a fresh temp file from a possibly live process is kept; an hour-old one is removed by the next download
  await downloadUrlToFile(`${base}/files/${NAME}`, dst, { hashPrefix: hashPrefixFromFileName(NAME), progress: false });
  assert.equal(sha256(readFileSync(dst)), sha256(PAYLOAD));
  assert.deepEqual(tempFiles(dir), [left]);
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(join(dir, left), old, old);
  rmSync(dst);
  await downloadUrlToFile(`${base}/files/${NAME}`, dst, { hashPrefix: hashPrefixFromFileName(NAME), progress: false });
  assert.equal(sha256(readFileSync(dst)), sha256(PAYLOAD));
  assert.deepEqual(readdirSync(dir), [NAME]);
});

// ---- torch.hub cache ----------------------------------------------------------------------------------------------

test('torchHubDir and hfHubCacheDir follow the environment as torch and huggingface_hub do', () => {
  const keep = { ...process.env };
  try {
    for (const k of ['TORCH_HOME', 'XDG_CACHE_HOME', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE']) delete process.env[k];
    assert.match(torchHubDir(), /\.cache[/\\]torch[/\\]hub$/);
    assert.match(hfHubCacheDir(), /\.cache[/\\]huggingface[/\\]hub$/);
    process.env.XDG_CACHE_HOME = '/x/cache';
    assert.equal(torchHubDir(), join('/x/cache', 'torch', 'hub'));
    assert.equal(hfHubCacheDir(), join('/x/cache', 'huggingface', 'hub'));
    process.env.TORCH_HOME = '/t';
    process.env.HF_HOME = '/h';
    assert.equal(torchHubDir(), join('/t', 'hub'));
    assert.equal(hfHubCacheDir(), join('/h', 'hub'));
    process.env.HF_HUB_CACHE = '/c';
    assert.equal(hfHubCacheDir(), '/c');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in keep)) delete process.env[k];
    Object.assign(process.env, keep);
  }
});

test('loadStateDictFromUrl caches, reloads offline, detects a corrupt cached file and reads safetensors', async () => {
  const w = fromArray([[1, 2, 3], [4, 5, 6]]);
  const pth = Buffer.from(serializePth(new Map([['module.fc.weight', w]])));
  const pthName = `tiny-${sha256(pth).slice(0, 8)}.pth`;
  files.set(pthName, pth);
  const modelDir = tempDir();
  const url = `${base}/files/${pthName}`;

  const sd = await loadStateDictFromUrl(url, { modelDir, checkHash: true, progress: false });
  assert.deepEqual([...sd.keys()], ['fc.weight']); // extractStateDict strips DataParallel's prefix
  assert.deepEqual(sd.get('fc.weight')!.toArray(), [1, 2, 3, 4, 5, 6]);
  const cached = join(modelDir, pthName);
  assert.equal(sha256(readFileSync(cached)), sha256(pth));
  assert.equal(hits.get(`/files/${pthName}`), 1);
  await loadStateDictFromUrl(url, { modelDir, checkHash: true, offline: true });
  assert.equal(hits.get(`/files/${pthName}`), 1, 'the cached file is used');

  // a flipped byte in the tensor data parses fine: only checkHash catches it
  const bad = Buffer.from(pth);
  const at = bad.indexOf(Buffer.from(new Float32Array([1, 2, 3]).buffer));
  bad[at + 1] ^= 0xff;
  writeFileSync(cached, bad);
  const err = await rejectsWith(loadStateDictFromUrl(url, { modelDir, checkHash: true }), cached, 'corrupt', 'delete it', hashPrefixFromFileName(pthName)!);
  assert.ok(err instanceof TensorFileError);
  // a truncated cached file fails to parse: the error names it and says to delete it
  writeFileSync(cached, pth.subarray(0, 100));
  await rejectsWith(loadStateDictFromUrl(url, { modelDir }), cached, 'delete it');
  rmSync(cached);
  await rejectsWith(loadStateDictFromUrl(url, { modelDir, offline: true }), cached, 'offline');
  await rejectsWith(loadStateDictFromUrl(`${base}/files/plain.pth`, { modelDir, checkHash: true }), 'checkHash');

  // a safetensors file, told apart by its content; fileName picks the cache name
  const st = Buffer.from(serializeSafetensors(new Map([['conv1.weight', fromArray([0.5, -1])]])));
  files.set('model.safetensors', st);
  const sd2 = await loadStateDictFromUrl(`${base}/files/model.safetensors`, { modelDir, fileName: 'r-model.safetensors' });
  assert.deepEqual(sd2.get('conv1.weight')!.toArray(), [0.5, -1]);
  assert.ok(existsSync(join(modelDir, 'r-model.safetensors')));
  await assert.rejects(loadStateDictFromUrl(url, { modelDir, fileName: '../escape.pth' }), /plain file name/);
  assert.deepEqual(tempFiles(modelDir), []);
});

// ---- Hugging Face cache -------------------------------------------------------------------------------------------

const COMMIT = 'a'.repeat(8) + createHash('sha1').update('c1').digest('hex').slice(8);
const WEIGHTS = randomBytes(50_000);
const CONFIG = Buffer.from('{"model_type": "resnet"}\n');
hfRepos.set('org/model', {
  commit: COMMIT,
  files: new Map([
    ['model.safetensors', { content: WEIGHTS, lfs: true }],
    ['config.json', { content: CONFIG, lfs: false }],
    ['sub/dir/extra.json', { content: Buffer.from('{}'), lfs: false }],
  ]),
});
hfRepos.set('org/badlfs', { commit: COMMIT, files: new Map([['model.safetensors', { content: WEIGHTS, lfs: true, etag: 'f'.repeat(64) }]]) });
hfRepos.set('evil/commit', { commit: COMMIT, commitHeader: '../../../../escaped', files: new Map([['config.json', { content: CONFIG, lfs: false }]]) });
hfRepos.set('evil/etag', { commit: COMMIT, etagHeader: '"../../../escaped"', files: new Map([['config.json', { content: CONFIG, lfs: false }]]) });

test('hfHubDownload builds the huggingface_hub layout: blobs, snapshots (relative symlinks), refs', async () => {
  const cacheDir = tempDir();
  const o = { cacheDir, endpoint: base, progress: false };
  const p = await hfHubDownload('org/model', 'model.safetensors', o);
  const repo = join(cacheDir, 'models--org--model');
  assert.equal(p, join(repo, 'snapshots', COMMIT, 'model.safetensors'));
  assert.equal(sha256(readFileSync(p)), sha256(WEIGHTS));
  assert.ok(lstatSync(p).isSymbolicLink());
  assert.equal(readlinkSync(p), join('..', '..', 'blobs', sha256(WEIGHTS)));
  assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), COMMIT);
  assert.equal(sha256(readFileSync(join(repo, 'blobs', sha256(WEIGHTS)))), sha256(WEIGHTS));

  const c = await hfHubDownload('org/model', 'config.json', o); // not LFS: the blob is named by the git sha1 ETag
  assert.deepEqual(readFileSync(c), CONFIG);
  assert.ok(existsSync(join(repo, 'blobs', gitSha1(CONFIG))));
  const x = await hfHubDownload('org/model', 'sub/dir/extra.json', o);
  assert.equal(x, join(repo, 'snapshots', COMMIT, 'sub', 'dir', 'extra.json'));
  assert.equal(readFileSync(x, 'utf8'), '{}');

  // cached: one HEAD, no download
  const cdn = `/cdn/${sha256(WEIGHTS)}`;
  assert.equal(hits.get(cdn), 1);
  assert.equal(await hfHubDownload('org/model', 'model.safetensors', o), p);
  assert.equal(hits.get(cdn), 1);
  assert.equal(seen.filter((s) => s.url === '/org/model/resolve/main/model.safetensors' && s.method === 'HEAD').length >= 2, true);

  // offline: hits come from the cache with no request; misses say so clearly
  const before = seen.length;
  assert.equal(await hfHubDownload('org/model', 'model.safetensors', { ...o, offline: true }), p);
  assert.equal(await hfHubDownload('org/model', 'config.json', { ...o, revision: COMMIT, endpoint: 'http://127.0.0.1:9' }), c, 'a commit revision already cached needs no network');
  process.env.HF_HUB_OFFLINE = '1';
  try {
    assert.equal(await hfHubDownload('org/model', 'config.json', o), c);
    await rejectsWith(hfHubDownload('org/model', 'missing.bin', o), 'missing.bin', 'not cached', 'offline', repo);
    await rejectsWith(hfHubDownload('org/model', 'config.json', { ...o, revision: 'v2' }), 'not cached', 'v2');
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }
  assert.equal(seen.length, before, 'offline mode made no request');

  // the hub unreachable (503 after retries): the cached copy of the revision is used, as huggingface_hub does
  const flakyRef = join(repo, 'refs', 'flaky');
  writeFileSync(flakyRef, COMMIT);
  assert.equal(await hfHubDownload('org/model', 'config.json', { ...o, revision: 'flaky' }), c);
  assert.deepEqual(tempFiles(cacheDir), []);
});

test('hfHubDownload verifies LFS files against their sha256 ETag and reports hub errors', async () => {
  const cacheDir = tempDir();
  const o = { cacheDir, endpoint: base, progress: false };
  await rejectsWith(hfHubDownload('org/badlfs', 'model.safetensors', o), 'invalid hash value', 'f'.repeat(64));
  assert.deepEqual(readdirSync(join(cacheDir, 'models--org--badlfs', 'blobs')), []);
  await rejectsWith(hfHubDownload('org/model', 'nope.bin', o), 'HTTP 404', 'EntryNotFound', '/org/model/resolve/main/nope.bin');
  await rejectsWith(hfHubDownload('org/nothing', 'config.json', o), 'HTTP 404', 'RepoNotFound');
  const renamed = await hfHubDownload('old/model', 'model.safetensors', o); // cached under the name asked for
  assert.equal(renamed, join(cacheDir, 'models--old--model', 'snapshots', COMMIT, 'model.safetensors'));
  assert.equal(sha256(readFileSync(renamed)), sha256(WEIGHTS));
});

test('repo ids, revisions, file names and server headers can never escape the cache', async () => {
  const parent = tempDir();
  const cacheDir = join(parent, 'hub');
  const o = { cacheDir, endpoint: base, progress: false };
  for (const id of ['../x', 'a/../b', 'a/b/c', 'a\\b', 'a/..', '..', 'a--b/c', '/abs', 'a/b.git', '', 'a/ b']) {
    await assert.rejects(hfHubDownload(id, 'config.json', o), /repo id/, `repo id ${JSON.stringify(id)}`);
  }
  for (const f of ['../x', '/etc/passwd', 'a/../../x', 'a\\b', '', 'a//b', './x', 'x/..', 'C:/x', 'a\0b']) {
    await assert.rejects(hfHubDownload('org/model', f, o), /filename/, `filename ${JSON.stringify(f)}`);
  }
  for (const r of ['..', '../../x', 'a/../..', '/main', 'a\\b', 'ma in']) {
    await assert.rejects(hfHubDownload('org/model', 'config.json', { ...o, revision: r }), /revision/, `revision ${JSON.stringify(r)}`);
  }
  await rejectsWith(hfHubDownload('evil/commit', 'config.json', o), 'X-Repo-Commit');
  await rejectsWith(hfHubDownload('evil/etag', 'config.json', o), 'refusing the ETag');
  assert.deepEqual(readdirSync(parent).filter((f) => f !== 'hub'), [], 'nothing was written beside the cache');
  assert.ok(!existsSync(join(tmpdir(), 'escaped')));
});
