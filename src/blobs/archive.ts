import { lstat, mkdir, open, readdir, readFile, realpath, rm, stat, symlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { gunzip, gzipSync } from 'node:zlib';
import { constants } from 'node:fs';
import { TesseraError, quote } from '../domain/errors.js';

// Component folders as archives: packed deterministically (the same folder always gives the
// same bytes, so a content hash names it), and unpacked with every check a hostile archive calls
// for. Tar is read here rather than by a library so that each refusal can name the entry and say
// what is wrong, before anything of that entry is written.
//
// Refused: absolute paths, any ".." segment, hard links, symbolic links whose target is absolute
// or leaves the folder, devices and FIFOs, writing through a link made earlier in the archive,
// entries or totals past the limits (judged on the header's declared size, before reading data;
// a gzip stream is inflated with a cap, so a bomb is never expanded in memory), and truncated or
// corrupt archives. On a refusal everything unpacked so far is removed.

export interface UnpackLimits {
  /** Bytes of file data the archive may unpack to. */
  maxBytes: number;
  /** Entries (files, folders, links) it may hold. */
  maxEntries: number;
}

const BLOCK = 512;
const SKIPPED = new Set(['node_modules', '__pycache__', '.git', '.DS_Store']);
const HINT = 'pack the folder again with "tessera app push" (or "tessera engine push"); archives may not contain absolute paths, "..", links out of the folder or special files';

function refuse(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message, { hint: HINT, field: 'data' });
}

// ---- packing ----------------------------------------------------------------------------------

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

function header(name: string, type: '0' | '5' | 'x', size: number, mode: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(0, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A header for `name`, preceded by a PAX record when the name does not fit in 100 bytes. */
function entryHeaders(name: string, type: '0' | '5', size: number, mode: number): Buffer[] {
  if (Buffer.byteLength(name) < 100) return [header(name, type, size, mode)];
  const body = (length: number) => `${length} path=${name}\n`;
  let length = Buffer.byteLength(body(0));
  while (Buffer.byteLength(body(length)) !== length) length = Buffer.byteLength(body(length));
  const record = Buffer.from(body(length));
  return [header('PaxHeader', 'x', record.length, 0o644), record, padding(record.length), header(name.slice(0, 99), type, size, mode)];
}

async function collect(dir: string, prefix: string, out: { name: string; full: string; directory: boolean; mode: number; size: number }[]): Promise<void> {
  for (const entry of (await readdir(dir)).sort()) {
    if (SKIPPED.has(entry)) continue;
    const full = path.join(dir, entry);
    const name = prefix ? `${prefix}/${entry}` : entry;
    const info = await lstat(full);
    if (info.isSymbolicLink()) throw refuse(`${quote(name)} is a symbolic link; a component folder must hold the files themselves`);
    if (info.isDirectory()) {
      out.push({ name: `${name}/`, full, directory: true, mode: 0o755, size: 0 });
      await collect(full, name, out);
    } else if (info.isFile()) {
      out.push({ name, full, directory: false, mode: info.mode & 0o100 ? 0o755 : 0o644, size: info.size });
    }
  }
}

/** A gzip-compressed ustar archive of the folder; the same folder always gives the same bytes. */
export async function packFolder(dir: string): Promise<Buffer> {
  if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new TesseraError('INVALID_ARGUMENT', `${quote(dir)} is not a folder`);
  const entries: { name: string; full: string; directory: boolean; mode: number; size: number }[] = [];
  await collect(dir, '', entries);
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.directory) {
      parts.push(...entryHeaders(entry.name, '5', 0, entry.mode));
      continue;
    }
    const data = await readFile(entry.full);
    parts.push(...entryHeaders(entry.name, '0', data.length, entry.mode), data, padding(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  // mtime 0 in the gzip header too (zlib writes 0), so the bytes depend on the content only.
  return gzipSync(Buffer.concat(parts), { level: 9 });
}

// ---- unpacking --------------------------------------------------------------------------------

function isGzip(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

function gunzipCapped(data: Buffer, maxOutput: number, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(data, { maxOutputLength: maxOutput }, (error, result) => {
      if (!error) return resolve(result);
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
        return reject(refuse(`the archive unpacks to more than the ${maxBytes} bytes allowed (TESSERA_MAX_UNPACKED_BYTES): a size bomb, or simply too big`));
      }
      reject(refuse(`the archive is not valid gzip: ${error.message}`));
    });
  });
}

function text(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
}

function number(block: Buffer, offset: number, length: number): number {
  // GNU base-256 for values octal cannot hold (sizes over 8 GiB).
  if (block[offset]! & 0x80) {
    let value = BigInt(block[offset]! & 0x7f);
    for (let index = offset + 1; index < offset + length; index++) value = (value << 8n) | BigInt(block[index]!);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  }
  const digits = text(block, offset, length).trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) return Number.NaN;
  return parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = number(block, 148, 8);
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 32 : block[index]!;
  return stored === sum;
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (space < 0 || !Number.isSafeInteger(length) || length <= 0 || offset + length > data.length) throw refuse('the archive is truncated or corrupt: a bad PAX header');
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

/** The entry's path as relative segments; refuses absolute paths and "..". */
function segments(name: string): string[] {
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) throw refuse(`archive entry ${quote(name)} is an absolute path`);
  const parts = name.split(/[/\\]/).filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw refuse(`archive entry ${quote(name)} leaves the folder ("..")`);
  if (parts.some((part) => part.includes('\0'))) throw refuse(`archive entry ${quote(name)} holds a NUL character`);
  return parts;
}

/** Every parent of `target` inside `root` must be a real folder (not a link the archive made). */
async function checkParents(root: string, parts: string[], name: string): Promise<void> {
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    const info = await lstat(current).catch(() => null);
    if (info?.isSymbolicLink()) throw refuse(`archive entry ${quote(name)} would be written through the link ${quote(path.relative(root, current))}`);
    if (info && !info.isDirectory()) throw refuse(`archive entry ${quote(name)} needs ${quote(path.relative(root, current))} to be a folder, but it is a file`);
  }
}

/** Unpacks a tar (gzip or plain) into `dest`, refusing anything hostile; nothing is left on a refusal. */
export async function unpackArchive(data: Buffer, dest: string, limits: UnpackLimits): Promise<{ files: number; bytes: number }> {
  await mkdir(dest, { recursive: true });
  const root = await realpath(dest);
  try {
    // Headers and padding need room beyond the file data itself.
    const tar = isGzip(data) ? await gunzipCapped(data, limits.maxBytes + Math.min(limits.maxEntries + 4, 4096) * BLOCK * 4, limits.maxBytes) : data;
    return await extract(tar, root, limits);
  } catch (error) {
    for (const entry of await readdir(root).catch(() => [])) await rm(path.join(root, entry), { recursive: true, force: true });
    throw error instanceof TesseraError ? error : refuse(`the archive could not be unpacked: ${(error as Error).message}`);
  }
}

async function extract(tar: Buffer, root: string, limits: UnpackLimits): Promise<{ files: number; bytes: number }> {
  let offset = 0;
  let entries = 0;
  let files = 0;
  let bytes = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    if (offset + BLOCK > tar.length) throw refuse('the archive is truncated or corrupt: it ends without the closing blocks');
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) return { files, bytes };
    if (!checksumOk(block)) throw refuse(`the archive is truncated or corrupt: bad header checksum at byte ${offset}`);
    const type = String.fromCharCode(block[156] || 0x30);
    const prefix = text(block, 257, 6).startsWith('ustar') ? text(block, 345, 155) : '';
    const headerName = prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100);
    const name = pax.path ?? longName ?? headerName;
    const linkName = pax.linkpath ?? longLink ?? text(block, 157, 100);
    const size = pax.size !== undefined ? Number(pax.size) : number(block, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw refuse(`the archive is truncated or corrupt: entry ${quote(name)} has an unreadable size`);
    const dataStart = offset + BLOCK;
    const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    // Metadata entries describe the next one.
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > 1024 * 1024) throw refuse(`the archive holds a ${size}-byte metadata header; at most 1 MiB is accepted`);
      if (dataStart + size > tar.length) throw refuse('the archive is truncated or corrupt: a metadata header runs past its end');
      const body = tar.subarray(dataStart, dataStart + size);
      if (type === 'x') pax = { ...pax, ...parsePax(body) };
      else if (type === 'L') longName = text(body, 0, body.length);
      else if (type === 'K') longLink = text(body, 0, body.length);
      offset = next;
      continue;
    }
    pax = {};
    longName = undefined;
    longLink = undefined;
    if (++entries > limits.maxEntries) throw refuse(`the archive holds more than ${limits.maxEntries} entries`);
    const parts = segments(name);
    if (type === '0' || type === '\0' || type === '7') {
      if (size > limits.maxBytes || bytes + size > limits.maxBytes) throw refuse(`archive entry ${quote(name)} (${size} bytes) takes the archive past ${limits.maxBytes} bytes unpacked`);
      if (dataStart + size > tar.length) throw refuse(`the archive is truncated or corrupt: entry ${quote(name)} declares ${size} bytes but the archive ends first`);
      if (parts.length === 0) throw refuse(`archive entry ${quote(name)} has no name`);
      await checkParents(root, parts, name);
      const target = path.join(root, ...parts);
      await mkdir(path.dirname(target), { recursive: true });
      // O_NOFOLLOW: an existing link at the very path is not followed either.
      const mode = number(block, 100, 8) & 0o100 ? 0o755 : 0o644;
      const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode).catch((error: NodeJS.ErrnoException) => {
        throw refuse(`archive entry ${quote(name)} could not be written (${error.code ?? error.message})`);
      });
      try {
        await handle.writeFile(tar.subarray(dataStart, dataStart + size));
        await handle.chmod(mode);
      } finally {
        await handle.close();
      }
      files++;
      bytes += size;
    } else if (type === '5') {
      if (parts.length > 0) {
        await checkParents(root, [...parts, ''], name);
        await mkdir(path.join(root, ...parts), { recursive: true });
      }
    } else if (type === '2') {
      if (linkName.startsWith('/') || /^[A-Za-z]:/.test(linkName)) throw refuse(`archive entry ${quote(name)} is a link to the absolute path ${quote(linkName)}`);
      const resolved = path.resolve(path.join(root, ...parts.slice(0, -1)), linkName);
      if (resolved !== root && !resolved.startsWith(root + path.sep)) throw refuse(`archive entry ${quote(name)} is a link to ${quote(linkName)}, which leaves the folder`);
      await checkParents(root, parts, name);
      await mkdir(path.dirname(path.join(root, ...parts)), { recursive: true });
      await symlink(linkName, path.join(root, ...parts));
    } else if (type === '1') {
      throw refuse(`archive entry ${quote(name)} is a hard link (to ${quote(linkName)}); archives may hold only files, folders and links inside the folder`);
    } else {
      const kinds: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO' };
      throw refuse(`archive entry ${quote(name)} is ${kinds[type] ?? `of an unsupported type ${quote(type)}`}; archives may hold only files, folders and links inside the folder`);
    }
    offset = next;
  }
}

// ---- checking an unpacked folder ----------------------------------------------------------------

/**
 * A digest of everything in a folder: every entry's path, type, owner and permission bits, and
 * every file's bytes, in name order. Taken of a component folder as it is unpacked and again before
 * a later use, it shows whether anything was added, removed or changed there meanwhile (nothing is
 * skipped, and a link or any other kind of entry counts as a change).
 */
export async function folderDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (folder: string, prefix: string): Promise<void> => {
    for (const entry of (await readdir(folder)).sort()) {
      const full = path.join(folder, entry);
      const name = prefix ? `${prefix}/${entry}` : entry;
      const info = await lstat(full);
      const kind = info.isDirectory() ? 'd' : info.isFile() ? 'f' : 'other';
      hash.update(`${name}\0${kind}\0${info.uid}\0${(info.mode & 0o7777).toString(8)}\0${info.size}\0`);
      if (info.isDirectory()) await walk(full, name);
      else if (info.isFile()) for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
    }
  };
  await walk(dir, '');
  return hash.digest('hex');
}
