// A stand-in for the Hugging Face hub and for download.pytorch.org on 127.0.0.1, for the tests of fromPretrained,
// `--weights hf:org/name` and registry/URL downloads: serves in-memory files and records every request.
//   /<org>/<name>/resolve/<revision>/<file>  as the hub answers hf_hub_download (X-Repo-Commit, ETag; 404 with
//                                             X-Error-Code EntryNotFound / RepoNotFound)
//   any other path                            a plain file, or 404

import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeHub {
  base: string;
  /** "METHOD /path" of every request so far. */
  requests: string[];
  /** Serve `files` as repo `id` (commit: a hash of the id unless given). Returns the commit. */
  addRepo(id: string, files: Map<string, Uint8Array>, commit?: string): string;
  /** Serve `body` at `path` (e.g. /models/resnet18-0123abcd.pth). */
  addFile(path: string, body: Uint8Array): void;
  close(): Promise<void>;
}

export async function startFakeHub(): Promise<FakeHub> {
  const repos = new Map<string, { commit: string; files: Map<string, Uint8Array> }>();
  const plain = new Map<string, Uint8Array>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const send = (status: number, body: Uint8Array, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-length': String(body.length), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const repo = repos.get(m[1]);
      if (!repo) return send(404, Buffer.from('no repo'), { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
      const f = repo.files.get(m[3]);
      if (!f) return send(404, Buffer.from('no entry'), { 'x-error-code': 'EntryNotFound', 'x-error-message': `${m[3]} does not exist`, 'x-repo-commit': repo.commit });
      const etag = createHash('sha1').update(`blob ${f.length}\0`).update(f).digest('hex');
      return send(200, f, { 'x-repo-commit': repo.commit, etag: `"${etag}"` });
    }
    const body = plain.get(path);
    return body ? send(200, body) : send(404, Buffer.from('not found'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    addRepo(id, files, commit) {
      const c = commit ?? createHash('sha1').update(id).digest('hex');
      repos.set(id, { commit: c, files });
      return c;
    },
    addFile(path, body) {
      plain.set(path, body);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
