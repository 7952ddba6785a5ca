// Downloads and the two on-disk caches people already have: torch.hub's (`<TORCH_HOME>/hub/checkpoints/<file>`, as
// torch.hub.load_state_dict_from_url) and huggingface_hub's (`<HF_HUB_CACHE>/models--org--name/{blobs,snapshots,refs}`,
// as hf_hub_download), so files fetched by Python are reused here and the other way round.
//
// Every download goes to a unique temp file beside its destination (`.<name>.<pid>.<random>.partial`), is checked
// (byte count against Content-Length / expectedSize, sha256 against the expected prefix, MD5 when given), fsynced, then renamed over
// the destination: a reader never sees a partial file at the final path, whatever happens to the writer. Two
// processes fetching the same file both download it and the last rename wins; both files are the same checked bytes,
// so there is no lock to go stale (see "Concurrency" below). Network errors, stalls, 5xx and 429 are retried with
// exponential backoff, resuming with a Range request when the server allows it; 4xx are not retried.
//
// Concurrency: no lock file. A lock would only save bandwidth when two processes start the same download at once,
// and it costs a stale-lock policy: a SIGKILLed holder leaves it behind, and pids mean nothing on a cache shared over
// NFS between machines. Unique temp names + rename(2) already give "one good file at the final path". A temp file left
// by a killed process is removed by a later download of the same file once it is an hour old (a live download writes
// at least every stall timeout, so an hour-old temp file is dead on any host).
//
// This file does not parse formats (pth.ts and safetensors.ts do) and knows nothing about models.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, symlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { extractStateDict, readPth } from './pth.js';
import { looksLikeSafetensors, readSafetensors } from './safetensors.js';
import { ProgressBar } from './progress.js';
import { TensorFileError, writeFileAtomicSync } from './tensor-bytes.js';

/** A download that failed for good: `url` is what was asked for, `status` the HTTP status if there was one. */
export class DownloadError extends Error {
  readonly url: string;
  readonly status: number | undefined;
  constructor(url: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DownloadError';
    this.url = url;
    this.status = status;
  }
}

export interface DownloadOptions {
  /** Expected leading hex digits of the file's sha256 (torchvision's check_hash; 64 digits = the whole hash). */
  hashPrefix?: string;
  /** Draw a progress bar on stderr when it is a TTY (default true, as torch). */
  progress?: boolean;
  /** Expected MD5 of the whole file, 32 hex digits (torchvision's check_integrity, used for its datasets). */
  md5?: string;
  /** Expected size in bytes, checked against Content-Length and the bytes received. */
  expectedSize?: number;
  /** Retries after the first attempt on network errors, stalls, 5xx and 429 (default 3). */
  retries?: number;
  /** Give up on an attempt after this long without a byte (default 30000). */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
}

const USER_AGENT = `resnet-ts/0.1; node/${process.versions.node}`;
const BACKOFF_MS = 1000; // first retry after ~1 s, then 2, 4, ... (x0.8-1.2 jitter), at most 30 s
const MAX_WAIT_MS = 60_000; // a Retry-After longer than this is cut to it
const STALE_PARTIAL_MS = 3600_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal?.aborted) return rej(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      rej(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** A failure worth another attempt (network error, stall, 5xx, 429, short body). */
class Transient extends Error {
  constructor(message: string, readonly retryAfterMs?: number, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The useful part of a fetch error ("fetch failed" alone says nothing; the cause has the errno). */
function describe(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  const c = e?.cause;
  if (c && typeof c === 'object' && c.message) return `${e.message}: ${c.code && !c.message.includes(c.code) ? `${c.code} ` : ''}${c.message}`;
  return String(e?.message ?? err);
}

function retryAfterMs(v: string | null): number | undefined {
  if (v === null) return undefined;
  const ms = /^\s*\d+\s*$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_WAIT_MS) : undefined;
}

function httpFailure(res: Response, url: string, method: string): Transient | DownloadError {
  const code = res.headers.get('x-error-code'), msg = res.headers.get('x-error-message');
  let text = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} for ${method} ${url}`;
  if (res.url && res.url !== url) text += ` (redirected to ${res.url})`;
  if (code || msg) text += ` (${[code, msg].filter(Boolean).join(': ')})`;
  if (res.status === 429 || res.status >= 500) return new Transient(text, retryAfterMs(res.headers.get('retry-after')), res.status);
  if (res.status === 401 || res.status === 403) text += '; access denied: the file may be private or gated (for Hugging Face pass a token with access, o.token or $HF_TOKEN)';
  return new DownloadError(url, `${text}; not retried (client errors are not transient)`, res.status);
}

/** Run `attempt` up to retries + 1 times, waiting between tries; returns its value or throws a DownloadError. */
async function withRetries<T>(url: string, retries: number, signal: AbortSignal | undefined, attempt: () => Promise<T>, onRetry?: (msg: string) => void): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted) throw new DownloadError(url, `download of ${url} aborted`, undefined, { cause: signal.reason });
      if (err instanceof DownloadError) throw err;
      if (!(err instanceof Transient)) throw new DownloadError(url, `${describe(err)} (${url})`, undefined, { cause: err });
      if (i >= retries) {
        throw new DownloadError(url, `download of ${url} failed after ${i + 1} attempt${i === 0 ? '' : 's'}: ${err.message}`, err.status, { cause: err });
      }
      const wait = err.retryAfterMs ?? Math.min(BACKOFF_MS * 2 ** i, 30_000) * (0.8 + 0.4 * Math.random());
      onRetry?.(`${err.message}; retrying in ${(wait / 1000).toFixed(1)} s (${i + 1}/${retries})`);
      await sleep(wait, signal).catch(() => undefined); // an abort during the wait is reported on the next loop turn
      if (signal?.aborted) throw new DownloadError(url, `download of ${url} aborted`, undefined, { cause: signal.reason });
    }
  }
}

function checkOptions(url: string, o: DownloadOptions): { u: URL; retries: number; stallMs: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`Expected an http(s) URL for url but received ${JSON.stringify(url)} of type ${typeof url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`Expected an http(s) URL for url but received ${JSON.stringify(url)} of type string`);
  const bad = (name: string, what: string, v: unknown) => new TypeError(`Expected ${what} for ${name} but received ${String(v)} of type ${typeof v}`);
  if (o.hashPrefix !== undefined && !(typeof o.hashPrefix === 'string' && /^[0-9a-fA-F]{1,64}$/.test(o.hashPrefix))) throw bad('hashPrefix', '1 to 64 hex digits', o.hashPrefix);
  if (o.md5 !== undefined && !(typeof o.md5 === 'string' && /^[0-9a-fA-F]{32}$/.test(o.md5))) throw bad('md5', '32 hex digits', o.md5);
  if (o.expectedSize !== undefined && !(Number.isSafeInteger(o.expectedSize) && o.expectedSize >= 0)) throw bad('expectedSize', 'a non-negative integer', o.expectedSize);
  const retries = o.retries ?? 3;
  if (!(Number.isSafeInteger(retries) && retries >= 0)) throw bad('retries', 'a non-negative integer', o.retries);
  const stallMs = o.stallTimeoutMs ?? 30_000;
  if (!(typeof stallMs === 'number' && stallMs > 0)) throw bad('stallTimeoutMs', 'a positive number', o.stallTimeoutMs);
  return { u, retries, stallMs };
}

/** What survives between attempts of one download, so a retry can resume where the last one stopped. */
interface Received {
  written: number;
  hash: Hash;
  md5: Hash;
  total: number | undefined;
  validator: string | undefined; // strong ETag or Last-Modified of the first response, for If-Range
}

/** One GET: append the body to `fh` from `got.written` (Range when resuming), abort after `stallMs` of silence. */
async function attemptGet(url: string, fh: FileHandle, got: Received, o: DownloadOptions, stallMs: number, headers: Record<string, string>, bar: () => ProgressBar | null): Promise<void> {
  const ac = new AbortController();
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      ac.abort(new Error('stalled'));
    }, stallMs);
  };
  const onUser = () => ac.abort(o.signal!.reason);
  o.signal?.addEventListener('abort', onUser, { once: true });
  arm();
  try {
    const h: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...headers };
    if (got.written > 0 && got.validator) {
      h.range = `bytes=${got.written}-`; // resume only when If-Range can tell us the file did not change meanwhile
      h['if-range'] = got.validator;
    }
    const res = await fetch(url, { headers: h, signal: ac.signal, redirect: 'follow' });
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw httpFailure(res, url, 'GET');
    }
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity'; // Content-Length counts encoded bytes then
    const len = encoded ? undefined : Number(res.headers.get('content-length') ?? NaN);
    const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
    if (res.status === 206 && range && Number(range[1]) === got.written) {
      got.total = Number(range[2]);
    } else {
      if (res.status === 206) throw new Transient(`unexpected Content-Range ${JSON.stringify(res.headers.get('content-range'))} for a resume at byte ${got.written}`);
      if (got.written > 0) {
        await fh.truncate(0); // the server sent the whole file again: start over
        got.written = 0;
        got.hash = createHash('sha256');
        got.md5 = createHash('md5');
      }
      got.total = len !== undefined && Number.isSafeInteger(len) ? len : undefined;
      const etag = res.headers.get('etag');
      got.validator = etag && !etag.startsWith('W/') ? etag : res.headers.get('last-modified') ?? undefined;
    }
    if (got.total !== undefined && o.expectedSize !== undefined && got.total !== o.expectedSize) {
      await res.body?.cancel().catch(() => undefined);
      throw new DownloadError(url, `expected ${o.expectedSize} bytes from ${url} but the server announces ${got.total}`);
    }
    if (!res.body) throw new Transient('the response has no body');
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arm();
      for (let off = 0; off < value.length; ) {
        const { bytesWritten } = await fh.write(value, off, value.length - off, got.written + off).catch((err: Error) => {
          throw new DownloadError(url, `cannot write the download of ${url}: ${err.message}`, undefined, { cause: err });
        });
        off += bytesWritten;
      }
      got.hash.update(value);
      got.md5.update(value);
      got.written += value.length;
      bar()?.update(got.written, got.total);
    }
    if (got.total !== undefined && got.written < got.total) throw new Transient(`connection closed after ${got.written} of ${got.total} bytes`);
  } catch (err) {
    if (stalled) throw new Transient(`no data for ${stallMs} ms (stall timeout)`, undefined, undefined, { cause: err });
    if (err instanceof Transient || err instanceof DownloadError || o.signal?.aborted) throw err;
    const where = got.total !== undefined ? ` after ${got.written} of ${got.total} bytes` : got.written > 0 ? ` after ${got.written} bytes` : '';
    throw new Transient(`${describe(err)}${where}`, undefined, undefined, { cause: err }); // fetch and socket errors
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onUser);
  }
}

/** Remove temp files of `name` left by killed downloads (an hour without a write). */
async function removeStalePartials(dir: string, name: string): Promise<void> {
  const re = /^\.(.+)\.\d+\.[0-9a-f]+\.partial$/;
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (re.exec(f)?.[1] !== name) continue;
    const st = await stat(join(dir, f)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_PARTIAL_MS) await rm(join(dir, f), { force: true });
  }
}

function tempPath(dst: string): string {
  return join(dirname(dst), `.${basename(dst)}.${process.pid}.${randomBytes(6).toString('hex')}.partial`);
}

async function download(url: string, dst: string, o: DownloadOptions, headers: Record<string, string> = {}, label?: string): Promise<void> {
  const { u, retries, stallMs } = checkOptions(url, o);
  dst = resolve(dst);
  await mkdir(dirname(dst), { recursive: true });
  await removeStalePartials(dirname(dst), basename(dst));
  const tmp = tempPath(dst);
  const fh = await open(tmp, 'wx', 0o644);
  let closed = false, renamed = false;
  const ui: { bar: ProgressBar | null } = { bar: null }; // made at the first byte, on a TTY only
  const bar = () => {
    if (!ui.bar && o.progress !== false && process.stderr.isTTY) ui.bar = new ProgressBar(label ?? (basename(u.pathname) || basename(dst)), undefined);
    return ui.bar;
  };
  try {
    const got: Received = { written: 0, hash: createHash('sha256'), md5: createHash('md5'), total: undefined, validator: undefined };
    await withRetries(url, retries, o.signal, () => attemptGet(url, fh, got, o, stallMs, headers, bar), (m) => bar()?.note(m));
    ui.bar?.finish();
    if (o.expectedSize !== undefined && got.written !== o.expectedSize) throw new DownloadError(url, `expected ${o.expectedSize} bytes from ${url} but received ${got.written}`);
    const digest = got.hash.digest('hex');
    if (o.hashPrefix !== undefined && !digest.startsWith(o.hashPrefix.toLowerCase())) {
      throw new DownloadError(url, `invalid hash value (expected "${o.hashPrefix}", got "${digest}") for ${url}: the file was not saved to ${dst}`);
    }
    const md5 = got.md5.digest('hex');
    if (o.md5 !== undefined && md5 !== o.md5.toLowerCase()) {
      throw new DownloadError(url, `invalid MD5 (expected ${o.md5.toLowerCase()}, got ${md5}) for ${url}: the file was not saved to ${dst}`);
    }
    await fh.sync();
    await fh.close();
    closed = true;
    await rename(tmp, dst);
    renamed = true;
  } finally {
    if (!closed) await fh.close().catch(() => undefined);
    if (!renamed) await rm(tmp, { force: true });
  }
}

/**
 * Download `url` to `dst`, as torch.hub.download_url_to_file: the file appears at `dst` only complete and checked,
 * never partially. Throws a DownloadError naming the URL (and the HTTP status) when it cannot.
 */
export function downloadUrlToFile(url: string, dst: string, o: DownloadOptions = {}): Promise<void> {
  return download(url, dst, o);
}

/** sha256 of a file, streamed. */
async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---- torch.hub ----------------------------------------------------------------------------------------------

const expandHome = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

/** torch.hub.get_dir(): $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub. */
export function torchHubDir(): string {
  const home = process.env.TORCH_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'torch');
  return join(expandHome(home), 'hub');
}

/** torchvision's check_hash convention: the hex digits after the last '-' of the file name, before its extension. */
export function hashPrefixFromFileName(name: string): string | undefined {
  return /-([0-9a-f]{8,64})\.[^-]*$/.exec(name)?.[1];
}

export interface LoadFromUrlOptions {
  /** Where checkpoints are cached (default `<torchHubDir()>/checkpoints`). */
  modelDir?: string;
  progress?: boolean;
  /** Verify the sha256 prefix in the file name, on download and again on every load of the cached file. */
  checkHash?: boolean;
  /** Cache file name (default the URL's basename). */
  fileName?: string;
  /** Use the cache only; a missing file is an error. */
  offline?: boolean;
}

/**
 * torch.hub.load_state_dict_from_url: the state dict in the checkpoint at `url`, cached in `modelDir`. The file may be
 * a torch.save checkpoint or safetensors (told apart by content).
 */
export async function loadStateDictFromUrl(url: string, o: LoadFromUrlOptions = {}): Promise<Map<string, Tensor>> {
  const dir = resolve(o.modelDir ?? join(torchHubDir(), 'checkpoints'));
  let name = o.fileName;
  if (name === undefined) {
    try {
      name = basename(new URL(url).pathname);
    } catch {
      throw new TypeError(`Expected an http(s) URL for url but received ${JSON.stringify(url)} of type ${typeof url}`);
    }
  }
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name)) throw new TypeError(`Expected a plain file name for fileName but received ${JSON.stringify(name)} of type string`);
  const file = join(dir, name);
  const prefix = o.checkHash ? hashPrefixFromFileName(name) : undefined;
  if (o.checkHash && prefix === undefined) {
    throw new TypeError(`checkHash needs a file name of the form <name>-<8 or more hex digits of its sha256>.<ext> (torchvision's convention) but received ${JSON.stringify(name)}`);
  }
  if (!existsSync(file)) {
    if (o.offline) throw new DownloadError(url, `${file} is not in the cache and offline mode is on: download ${url} there, or load once without offline`);
    await downloadUrlToFile(url, file, { hashPrefix: prefix, progress: o.progress });
  } else if (prefix !== undefined) {
    const digest = await sha256File(file);
    if (!digest.startsWith(prefix)) {
      throw new TensorFileError(file, `the cached file is corrupt or truncated: its sha256 is ${digest} but the file name says it starts with ${prefix}; delete it and load again to download a fresh copy from ${url}`);
    }
  }
  try {
    return await readStateDict(file);
  } catch (err) {
    let msg = (err as Error).message;
    if (msg.startsWith(`${file}: `)) msg = msg.slice(file.length + 2);
    throw new TensorFileError(file, `cannot load the checkpoint downloaded from ${url} (${msg}); if the cached file is corrupt or truncated, delete it and load again to download a fresh copy`);
  }
}

/** A state dict from a .pth or safetensors file, told apart by the first bytes. */
async function readStateDict(file: string): Promise<Map<string, Tensor>> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(9);
  try {
    await fh.read(head, 0, 9, 0);
  } finally {
    await fh.close();
  }
  if (looksLikeSafetensors(head)) return (await readSafetensors(file)).tensors;
  return extractStateDict((await readPth(file)).object, file);
}

// ---- Hugging Face hub -----------------------------------------------------------------------------------------

const COMMIT_RE = /^[0-9a-f]{40}$/;
const isTrue = (v: string | undefined) => v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());

/** huggingface_hub's cache: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hfHubCacheDir(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE) return expandHome((env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE)!);
  return join(expandHome(env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface')), 'hub');
}

export interface HfDownloadOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  cacheDir?: string;
  /** Default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Cache only (also $HF_HUB_OFFLINE=1). */
  offline?: boolean;
  progress?: boolean;
  /** Bearer token for private or gated repos (default $HF_TOKEN). */
  token?: string;
}

function checkRepoId(id: string): void {
  const part = /^\w(?:[\w.-]*\w)?$/; // huggingface_hub's validate_repo_id
  const parts = typeof id === 'string' ? id.split('/') : [];
  if (typeof id !== 'string' || id.length > 96 || parts.length > 2 || !parts.every((p) => part.test(p)) || id.includes('--') || id.includes('..') || id.endsWith('.git')) {
    throw new TypeError(`Expected a Hugging Face repo id like "microsoft/resnet-50" (letters, digits, '_', '-', '.'; no '--' or '..') for repoId but received ${JSON.stringify(id)} of type ${typeof id}`);
  }
}

/** A relative '/'-separated path with no '.', '..' or empty segments, no backslash or control characters. */
function checkRelPath(name: string, what: string, allowed = /^[^\\\0-\x1f]+$/): string[] {
  const segs = typeof name === 'string' ? name.split('/') : [];
  if (typeof name !== 'string' || !allowed.test(name) || isAbsolute(name) || /^[A-Za-z]:/.test(name) || segs.some((s) => s === '' || s === '.' || s === '..')) {
    throw new TypeError(`Expected a relative path inside the repository (no '..', no leading '/', no backslash) for ${what} but received ${JSON.stringify(name)} of type ${typeof name}`);
  }
  return segs;
}

/** root/...parts, refused unless it stays inside root (the last guard against names that escape the cache). */
function inside(root: string, ...parts: string[]): string {
  const p = resolve(root, ...parts);
  if (!p.startsWith(root + sep)) throw new Error(`refusing the path ${p}: it is outside the cache ${root}`);
  return p;
}

interface HfMeta {
  commit: string;
  etag: string;
  location: string;
  size: number | undefined;
}

/** huggingface_hub's get_hf_file_metadata: a HEAD that follows relative redirects only (an absolute one is the CDN). */
async function hfMetadata(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<HfMeta> {
  let cur = url;
  for (let hop = 0; ; hop++) {
    const res = await withRetries(cur, 3, signal, async () => {
      let r: Response;
      try {
        r = await fetch(cur, { method: 'HEAD', headers: { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...headers }, redirect: 'manual', signal: signal ?? AbortSignal.timeout(30_000) });
      } catch (err) {
        throw new Transient(describe(err), undefined, undefined, { cause: err });
      }
      if (r.status >= 400) throw httpFailure(r, cur, 'HEAD');
      return r;
    });
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc && !/^([a-z][a-z0-9+.-]*:)?\/\//i.test(loc) && hop < 10) {
      cur = new URL(loc, cur).href;
      continue;
    }
    const commit = res.headers.get('x-repo-commit');
    const rawEtag = res.headers.get('x-linked-etag') ?? res.headers.get('etag');
    if (!commit || !rawEtag) {
      throw new DownloadError(url, `${url} did not answer like the Hugging Face hub (no ${commit ? 'ETag' : 'X-Repo-Commit'} header): check the endpoint (o.endpoint, $HF_ENDPOINT) and any proxy`, res.status);
    }
    const etag = rawEtag.replace(/^W\//, '').replace(/^"|"$/g, '');
    if (!COMMIT_RE.test(commit)) throw new DownloadError(url, `expected a 40-digit commit hash in X-Repo-Commit from ${url} but received ${JSON.stringify(commit)}`);
    if (!/^[\w.-]{1,128}$/.test(etag) || etag === '.' || etag === '..') throw new DownloadError(url, `refusing the ETag ${JSON.stringify(rawEtag)} from ${url}: it cannot name a cache blob`);
    const size = Number(res.headers.get('x-linked-size') ?? (res.status < 300 ? res.headers.get('content-length') : null) ?? NaN);
    return { commit, etag, location: loc ? new URL(loc, cur).href : cur, size: Number.isSafeInteger(size) ? size : undefined };
  }
}

/** Point `pointer` at `blob` with a relative symlink (a copy where symlinks are not allowed), atomically. */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const tmp = tempPath(pointer);
  try {
    try {
      await symlink(relative(dirname(pointer), blob), tmp);
    } catch {
      await copyFile(blob, tmp);
    }
    await rename(tmp, pointer);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * huggingface_hub's hf_hub_download for model repos: the local path of `filename` from `repoId` at `revision`,
 * downloaded into (or found in) the shared Hugging Face cache. Returns `.../snapshots/<commit>/<filename>`.
 */
export async function hfHubDownload(repoId: string, filename: string, o: HfDownloadOptions = {}): Promise<string> {
  checkRepoId(repoId);
  const revision = o.revision ?? 'main';
  const revSegs = checkRelPath(revision, 'revision', /^[\w./-]{1,256}$/);
  const fileSegs = checkRelPath(filename, 'filename');
  const root = resolve(o.cacheDir ?? hfHubCacheDir());
  const storage = inside(root, `models--${repoId.replace('/', '--')}`);
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const offline = o.offline ?? (isTrue(process.env.HF_HUB_OFFLINE) || isTrue(process.env.TRANSFORMERS_OFFLINE));
  const what = `"${filename}" of ${repoId} at revision "${revision}"`;

  const cached = (): string | null => {
    let commit = revision;
    if (!COMMIT_RE.test(revision)) {
      try {
        commit = readFileSync(inside(storage, 'refs', ...revSegs), 'utf8').trim();
      } catch {
        return null;
      }
      if (!COMMIT_RE.test(commit)) return null;
    }
    const p = inside(storage, 'snapshots', commit, ...fileSegs);
    return existsSync(p) ? p : null;
  };
  if (COMMIT_RE.test(revision) || offline) {
    const hit = cached();
    if (hit) return hit;
    if (offline) {
      throw new DownloadError(`${endpoint}/${repoId}`, `${what} is not cached in ${storage} and offline mode is on (HF_HUB_OFFLINE=1 or offline: true): download it once online, or turn offline mode off`);
    }
  }

  const url = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${fileSegs.map(encodeURIComponent).join('/')}`;
  const token = o.token ?? process.env.HF_TOKEN;
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let meta: HfMeta;
  try {
    meta = await hfMetadata(url, auth);
  } catch (err) {
    // as huggingface_hub: when the hub cannot be reached (network, 5xx), a cached copy of the revision is used
    const status = err instanceof DownloadError ? err.status : undefined;
    const hit = status === undefined || status >= 500 || status === 429 ? cached() : null;
    if (hit) return hit;
    throw err;
  }
  const blob = inside(storage, 'blobs', meta.etag);
  const pointer = inside(storage, 'snapshots', meta.commit, ...fileSegs);
  if (!existsSync(pointer)) {
    if (!existsSync(blob)) {
      const sameOrigin = new URL(meta.location).origin === new URL(url).origin; // no token to a CDN
      await download(meta.location, blob, {
        hashPrefix: /^[0-9a-f]{64}$/.test(meta.etag) ? meta.etag : undefined, // an LFS file's etag is its sha256
        expectedSize: meta.size,
        progress: o.progress,
      }, sameOrigin ? auth : {}, basename(filename));
    }
    await linkPointer(blob, pointer);
  }
  if (revision !== meta.commit) {
    const ref = inside(storage, 'refs', ...revSegs);
    await mkdir(dirname(ref), { recursive: true });
    writeFileAtomicSync(ref, [Buffer.from(meta.commit)]);
  }
  return pointer;
}
