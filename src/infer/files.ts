// The files a list of command-line arguments names, for `resnet predict` / `resnet embed` and API users:
//   a file        taken as is, whatever its extension (content decides whether it is an image)
//   a directory   its image files (IMAGE_EXTENSIONS, case-insensitive: the formats we decode), sorted by
//                 code point as Python's sorted(), dot-files skipped;
//                 subdirectories too with recursive (depth first, each level sorted)
//   a glob        `*` (any run of characters but '/') and `?` (one character) in the LAST path segment only, matched
//                 against that directory's entries (dot-files only when the pattern starts with '.'), sorted; a glob
//                 that matches nothing is an error, as a missing file is. Quoted globs reach us unexpanded; the
//                 shell has already expanded unquoted ones.
// An argument that names nothing (missing, unreadable, no images, no match) is reported as an InputError beside the
// files found, so the others can still be processed. Everything is read with fs/promises, so listing a large folder
// does not block the event loop. Arguments keep their order; a file named twice is listed twice.

import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { comparePy } from '../data/image-folder.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff'];

/** An argument that names no file: `arg` as given and why. */
export class InputError extends Error {
  constructor(readonly arg: string, reason: string) {
    super(`${arg}: ${reason}`);
    this.name = 'InputError';
  }
}

export interface ExpandOptions {
  /** Descend into subdirectories of directory arguments (default false). */
  recursive?: boolean;
}

const isImageName = (name: string) => !name.startsWith('.') && IMAGE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

export function hasGlob(arg: string): boolean {
  return /[*?]/.test(arg);
}

/** A `*`/`?` pattern (no other specials) as an anchored RegExp. */
export function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

async function listDir(dir: string, recursive: boolean): Promise<string[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => comparePy(a.name, b.name));
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    let kind: 'file' | 'dir' | 'other' = e.isFile() ? 'file' : e.isDirectory() ? 'dir' : 'other';
    if (e.isSymbolicLink()) {
      const s = await stat(p).catch(() => null);
      kind = s?.isFile() ? 'file' : s?.isDirectory() ? 'dir' : 'other';
    }
    if (kind === 'file' && isImageName(e.name)) out.push(p);
    else if (kind === 'dir' && recursive && !e.name.startsWith('.')) out.push(...(await listDir(p, true)));
  }
  return out;
}

async function expandGlob(arg: string): Promise<string[]> {
  const dir = dirname(arg), pattern = basename(arg);
  if (hasGlob(dir)) throw new InputError(arg, 'wildcards (* and ?) are supported in the last path segment only');
  const re = globRegExp(pattern);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new InputError(arg, `cannot list ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const matches = names.filter((n) => re.test(n) && (!n.startsWith('.') || pattern.startsWith('.'))).sort(comparePy);
  const files: string[] = [];
  for (const n of matches) {
    const p = join(dir, n);
    if ((await stat(p).catch(() => null))?.isFile()) files.push(p);
  }
  if (!files.length) throw new InputError(arg, 'no files match');
  return files;
}

export interface Expanded {
  /** The files, in argument order. */
  files: string[];
  /** The arguments that named nothing (a missing path, an unreadable or image-less directory, a glob with no match). */
  errors: InputError[];
}

/** The files the arguments name, in order (see the file header); an argument that names nothing is an error entry. */
export async function expandInputs(args: readonly string[], o: ExpandOptions = {}): Promise<Expanded> {
  const files: string[] = [], errors: InputError[] = [];
  for (const arg of args) {
    try {
      files.push(...(await expandOne(arg, !!o.recursive)));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      errors.push(e);
    }
  }
  return { files, errors };
}

async function expandOne(arg: string, recursive: boolean): Promise<string[]> {
  const s = await stat(arg).catch((e: NodeJS.ErrnoException) => e);
  if (s instanceof Error) {
    if (hasGlob(arg)) return expandGlob(arg);
    throw new InputError(arg, s.code === 'ENOENT' ? 'no such file or directory' : `cannot read (${s.code ?? s.message})`);
  }
  if (!s.isDirectory()) return [arg];
  let files: string[];
  try {
    files = await listDir(arg, recursive);
  } catch (e) {
    throw new InputError(arg, `cannot list the directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!files.length) throw new InputError(arg, `no image files (${IMAGE_EXTENSIONS.join(' ')}) in this directory${recursive ? ' or below' : ' (--recursive to look in subdirectories)'}`);
  return files;
}
