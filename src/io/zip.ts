// The zip container of PyTorch checkpoints (PKWARE APPNOTE 6.3.x, the subset torch.save writes), read and written.
//
//   [local header + name + extra (padding "FB" field) + data (+ data descriptor)] ...  central directory
//   [zip64 end of central directory + locator]  end of central directory
//
// The reader trusts only the central directory: local headers give the data start and must repeat the entry's name
// and method; sizes come from the central directory (torch writes zeros plus a data descriptor). Every offset and size
// is checked against the bytes present before use; entries may not overlap, names must be unique and relative
// without `..`/`.`/empty segments or backslashes; encrypted and multi-disk archives are refused. Data is STORED;
// DEFLATE is inflated only up to a cap the caller sets (for small metadata records), so a zip bomb cannot expand.
// CRC-32 is verified when an entry is read. The writer emits STORED entries with data aligned (64 bytes, as torch).
// This file is not a general zip tool: no compression when writing, no streaming, no comments, no extraction to disk.

import { crc32, inflateRawSync } from 'node:zlib';
import { TensorFileError } from './tensor-bytes.js';

export interface ZipEntry {
  name: string;
  /** 0 STORED, 8 DEFLATE. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the local header and of the (compressed) data in the archive. */
  headerOffset: number;
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50, SIG_CENTRAL = 0x02014b50, SIG_EOCD = 0x06054b50, SIG_EOCD64 = 0x06064b50, SIG_LOC64 = 0x07064b50;
const U32 = 0xffffffff, U16 = 0xffff;

/** The entries of the zip archive in `buf`, in central-directory order, keyed by name. `file` names it in errors. */
export function readZipEntries(buf: Uint8Array, file: string): Map<string, ZipEntry> {
  const fail = (msg: string, key?: string) => new TensorFileError(file, msg, key);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u64 = (off: number, what: string): number => {
    const v = dv.getUint32(off + 4, true) * 2 ** 32 + dv.getUint32(off, true);
    if (v > Number.MAX_SAFE_INTEGER) throw fail(`expected a zip ${what} below 2^53 but it is ${v}; the archive is corrupt`);
    return v;
  };

  // end of central directory: the last 22-byte record whose comment runs exactly to the end of the file
  let eocd = -1;
  for (let p = buf.length - 22; p >= 0 && p >= buf.length - 22 - U16; p--) {
    if (dv.getUint32(p, true) === SIG_EOCD && p + 22 + dv.getUint16(p + 20, true) === buf.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw fail('expected a zip end-of-central-directory record at the end of the file but found none; is the file truncated?');
  let disk = dv.getUint16(eocd + 4, true), cdDisk = dv.getUint16(eocd + 6, true);
  let count = dv.getUint16(eocd + 10, true), cdSize = dv.getUint32(eocd + 12, true), cdOffset = dv.getUint32(eocd + 16, true);
  let cdLimit = eocd; // the central directory must end before this
  const loc = eocd - 20;
  if (loc >= 0 && dv.getUint32(loc, true) === SIG_LOC64) {
    const at = u64(loc + 8, 'zip64 record offset');
    if (at + 56 > loc || dv.getUint32(at, true) !== SIG_EOCD64) throw fail(`expected a zip64 end-of-central-directory record at byte ${at} but found none; the archive is corrupt`);
    const d64 = dv.getUint32(at + 16, true), cd64 = dv.getUint32(at + 20, true);
    const n64 = u64(at + 32, 'entry count'), size64 = u64(at + 40, 'central directory size'), off64 = u64(at + 48, 'central directory offset');
    const agree = (classic: number, sat: number, v: number) => classic === sat || classic === v;
    if (!agree(count, U16, n64) || !agree(cdSize, U32, size64) || !agree(cdOffset, U32, off64)) {
      throw fail('expected the zip and zip64 end records to agree on the central directory but they differ; the archive is corrupt');
    }
    [disk, cdDisk, count, cdSize, cdOffset, cdLimit] = [d64, cd64, n64, size64, off64, at];
  }
  if (disk !== 0 || cdDisk !== 0) throw fail('multi-disk (split) zip archives are not supported');
  if (cdOffset + cdSize > cdLimit) throw fail(`expected the central directory (${cdSize} bytes at ${cdOffset}) to end before byte ${cdLimit} but it does not; is the file truncated?`);
  if (count * 46 > cdSize) throw fail(`expected at most ${Math.floor(cdSize / 46)} entries in a ${cdSize}-byte central directory but the archive claims ${count}`);

  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdOffset + cdSize || dv.getUint32(p, true) !== SIG_CENTRAL) throw fail(`expected central directory entry ${i} at byte ${p} but found none; the archive is corrupt`);
    const flags = dv.getUint16(p + 8, true), method = dv.getUint16(p + 10, true), crc = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true), size = dv.getUint32(p + 24, true);
    const nlen = dv.getUint16(p + 28, true), xlen = dv.getUint16(p + 30, true), clen = dv.getUint16(p + 32, true);
    let eDisk = dv.getUint16(p + 34, true), offset = dv.getUint32(p + 42, true);
    const end = p + 46 + nlen + xlen + clen;
    if (end > cdOffset + cdSize) throw fail(`expected central directory entry ${i} to fit in the central directory but it runs past its end; the archive is corrupt`);
    const rawName = buf.subarray(p + 46, p + 46 + nlen);
    let name: string;
    try {
      name = utf8.decode(rawName);
    } catch {
      throw fail(`expected zip entry ${i} to have a UTF-8 name but it does not`);
    }
    // zip64 extended information: the 8-byte values of the fields saturated in the fixed record, in this order
    for (let x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen; ) {
      const id = dv.getUint16(x, true), len = dv.getUint16(x + 2, true);
      if (x + 4 + len > p + 46 + nlen + xlen) throw fail('expected the extra fields to fit their declared length but they do not', name);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (what: string) => {
          if (q + 8 > x + 4 + len) throw fail(`expected the zip64 extra field to hold the ${what} but it is too short`, name);
          const v = u64(q, what);
          q += 8;
          return v;
        };
        if (size === U32) size = take('size');
        if (csize === U32) csize = take('compressed size');
        if (offset === U32) offset = take('local header offset');
        if (eDisk === U16) eDisk = q + 4 <= x + 4 + len ? dv.getUint32(q, true) : eDisk;
      }
      x += 4 + len;
    }
    p = end;
    checkName(name, fail);
    if (entries.has(name)) throw fail('expected unique entry names but this name appears twice in the archive', name);
    if (flags & 0x41) throw fail('the entry is encrypted; encrypted archives are not supported', name);
    if (eDisk !== 0) throw fail('multi-disk (split) zip archives are not supported', name);
    if (method !== 0 && method !== 8) throw fail(`expected compression method 0 (stored) or 8 (deflate) but received ${method}`, name);
    if (method === 0 && csize !== size) throw fail(`expected a stored entry's compressed size (${csize}) to equal its size (${size}) but they differ`, name);

    if (offset + 30 > cdOffset || dv.getUint32(offset, true) !== SIG_LOCAL) throw fail(`expected a local file header at byte ${offset} but found none; the archive is corrupt`, name);
    const lnlen = dv.getUint16(offset + 26, true), lxlen = dv.getUint16(offset + 28, true);
    const dataOffset = offset + 30 + lnlen + lxlen;
    if (lnlen !== nlen || !bytesEqual(buf.subarray(offset + 30, offset + 30 + lnlen), rawName)) {
      throw fail(`expected the local header at byte ${offset} to repeat the entry's name but it names something else`, name);
    }
    if (dv.getUint16(offset + 8, true) !== method) throw fail('expected the local header and the central directory to agree on the compression method but they differ', name);
    if (dataOffset + csize > cdOffset) throw fail(`expected ${csize} bytes of data at byte ${dataOffset} before the central directory (byte ${cdOffset}) but they run past it; is the file truncated?`, name);
    entries.set(name, { name, method, crc, compressedSize: csize, size, headerOffset: offset, dataOffset });
  }
  if (p !== cdOffset + cdSize) throw fail(`expected ${count} entries to fill the ${cdSize}-byte central directory but ${cdOffset + cdSize - p} bytes are left over; the archive is corrupt`);

  // entries may not overlap (a classic zip-bomb trick: many names, one payload)
  const sorted = [...entries.values()].sort((a, b) => a.headerOffset - b.headerOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].headerOffset < prev.dataOffset + prev.compressedSize) {
      throw fail(`expected entries not to overlap but this one starts inside ${JSON.stringify(prev.name)}`, sorted[i].name);
    }
  }
  return entries;
}

/**
 * The bytes of `e`, CRC-checked: a view into `buf` when STORED; when DEFLATE, inflated only if the declared size is
 * at most `maxInflated` bytes (0, the default, refuses compression) and the output may not exceed it.
 */
export function readZipEntry(buf: Uint8Array, e: ZipEntry, file: string, maxInflated = 0): Uint8Array {
  const fail = (msg: string) => new TensorFileError(file, msg, e.name);
  const raw = buf.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
  let out = raw;
  if (e.method === 8) {
    if (e.size > maxInflated) {
      throw fail(maxInflated === 0 ? 'expected a stored (uncompressed) entry, as torch.save writes, but it is DEFLATE-compressed' : `expected a compressed entry to inflate to at most ${maxInflated} bytes but it declares ${e.size}`);
    }
    try {
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      throw fail(`cannot inflate the entry (declared size ${e.size} bytes): ${(err as Error).message}`);
    }
    if (out.length !== e.size) throw fail(`expected the entry to inflate to ${e.size} bytes but it gave ${out.length}`);
  }
  const got = crc32(out) >>> 0;
  if (got !== e.crc >>> 0) throw fail(`expected CRC-32 ${hex8(e.crc)} but the data has ${hex8(got)}; the archive is corrupt`);
  return out;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Names must be relative paths without tricks; directory entries (ending in '/') are allowed. */
function checkName(name: string, fail: (msg: string, key?: string) => TensorFileError): void {
  const bad = (why: string) => fail(`expected a relative entry name without path tricks but it ${why}`, name);
  if (name.length === 0) throw bad('is empty');
  if (/[\u0000-\u001f\\]/.test(name)) throw bad('contains a backslash or a control character');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('is absolute');
  const segs = name.endsWith('/') ? name.slice(0, -1).split('/') : name.split('/');
  for (const s of segs) if (s === '' || s === '.' || s === '..') throw bad(`has a ${s === '' ? 'empty' : JSON.stringify(s)} path segment`);
}

// ---- writing ------------------------------------------------------------------------------------------------

export interface ZipWriteOptions {
  /** Align each entry's data to this many bytes with an "FB" padding extra field, as torch does (default 64). */
  align?: number;
  /** Write zip64 extra fields for every entry even when no size or offset needs them (for tests). */
  zip64?: boolean;
}

/**
 * A STORED zip archive of `entries` as a list of chunks (headers, then views of the data as given: nothing is
 * copied). Zip64 fields are written where a size or offset needs them; a zip64 end record always, as torch does.
 */
export function zipChunks(entries: readonly { name: string; data: Uint8Array }[], o: ZipWriteOptions = {}): Uint8Array[] {
  const align = o.align ?? 64;
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const { name, data } of entries) {
    const nb = enc.encode(name);
    const crc = crc32(data) >>> 0;
    const big = o.zip64 === true || data.length >= U32 || pos >= U32;
    const z64local = big ? 20 : 0; // id, len, size, compressed size
    const pad = (align - ((pos + 30 + nb.length + z64local + 4) % align)) % align; // + 4: the padding field's own header
    const head = new Uint8Array(30 + nb.length + z64local + 4 + pad);
    const h = new DataView(head.buffer);
    h.setUint32(0, SIG_LOCAL, true);
    h.setUint16(4, big ? 45 : 20, true);
    h.setUint16(8, 0, true); // STORED
    h.setUint32(14, crc, true);
    h.setUint32(18, big ? U32 : data.length, true);
    h.setUint32(22, big ? U32 : data.length, true);
    h.setUint16(26, nb.length, true);
    h.setUint16(28, z64local + 4 + pad, true);
    head.set(nb, 30);
    let x = 30 + nb.length;
    if (big) {
      h.setUint16(x, 0x0001, true);
      h.setUint16(x + 2, 16, true);
      h.setBigUint64(x + 4, BigInt(data.length), true);
      h.setBigUint64(x + 12, BigInt(data.length), true);
      x += 20;
    }
    h.setUint16(x, 0x4246, true); // "FB", torch's padding field
    h.setUint16(x + 2, pad, true);
    head.fill(0x5a, x + 4); // 'Z'
    central.push(centralRecord(nb, crc, data.length, pos, big));
    chunks.push(head, data);
    pos += head.length + data.length;
  }
  const cdOffset = pos;
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const tail = new Uint8Array(56 + 20 + 22);
  const t = new DataView(tail.buffer);
  const n = entries.length;
  t.setUint32(0, SIG_EOCD64, true);
  t.setBigUint64(4, 44n, true);
  t.setUint16(12, 45, true);
  t.setUint16(14, 45, true);
  t.setBigUint64(24, BigInt(n), true);
  t.setBigUint64(32, BigInt(n), true);
  t.setBigUint64(40, BigInt(cdSize), true);
  t.setBigUint64(48, BigInt(cdOffset), true);
  t.setUint32(56, SIG_LOC64, true);
  t.setBigUint64(64, BigInt(cdOffset + cdSize), true);
  t.setUint32(72, 1, true);
  t.setUint32(76, SIG_EOCD, true);
  t.setUint16(84, Math.min(n, U16), true);
  t.setUint16(86, Math.min(n, U16), true);
  t.setUint32(88, Math.min(cdSize, U32), true);
  t.setUint32(92, Math.min(cdOffset, U32), true);
  return [...chunks, ...central, tail];
}

function centralRecord(nb: Uint8Array, crc: number, size: number, offset: number, big: boolean): Uint8Array {
  const z64 = big ? 28 : 0; // id, len, size, compressed size, offset
  const r = new Uint8Array(46 + nb.length + z64);
  const d = new DataView(r.buffer);
  d.setUint32(0, SIG_CENTRAL, true);
  d.setUint16(4, big ? 45 : 20, true);
  d.setUint16(6, big ? 45 : 20, true);
  d.setUint32(16, crc, true);
  d.setUint32(20, big ? U32 : size, true);
  d.setUint32(24, big ? U32 : size, true);
  d.setUint16(28, nb.length, true);
  d.setUint16(30, z64, true);
  d.setUint32(42, big ? U32 : offset, true);
  r.set(nb, 46);
  if (big) {
    const x = 46 + nb.length;
    d.setUint16(x, 0x0001, true);
    d.setUint16(x + 2, 24, true);
    d.setBigUint64(x + 4, BigInt(size), true);
    d.setBigUint64(x + 12, BigInt(size), true);
    d.setBigUint64(x + 20, BigInt(offset), true);
  }
  return r;
}
