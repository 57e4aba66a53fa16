import { invalidArgument, quote } from './errors.js';

// Many small output files in one request body (POST /v1/worker/tasks/{taskId}/files): a
// partitioner's thousands of small chunks would otherwise cost one upload request each. Each file
// is framed as
//   uint32 index | uint16 name length | uint32 size | name (UTF-8) | bytes
// (big-endian), one after the other; the body ends exactly after the last file.

export interface BundledFile {
  /** The file's place in the task's outputs (as `PUT …/files/{index}`). */
  index: number;
  name: string;
  bytes: Uint8Array;
}

const HEADER_BYTES = 10;

/** The longest name a file may have (as for a single upload). */
export const MAX_BUNDLED_NAME_BYTES = 1024;

/** A bundle's largest body: bigger files go up one at a time. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export function encodeBundle(files: BundledFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const name = Buffer.from(file.name, 'utf8');
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(file.index, 0);
    header.writeUInt16BE(name.length, 4);
    header.writeUInt32BE(file.bytes.length, 6);
    parts.push(header, name, Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.length));
  }
  return Buffer.concat(parts);
}

/** The files of a bundle; INVALID_ARGUMENT naming the file and what is wrong with it when the framing is broken. */
export function decodeBundle(body: Buffer): BundledFile[] {
  const files: BundledFile[] = [];
  const seen = new Set<number>();
  const hint = 'frame each file as uint32 index, uint16 name length, uint32 size (big-endian), then the name and the bytes';
  for (let offset = 0; offset < body.length; ) {
    const what = `file ${files.length} of the bundle (at byte ${offset})`;
    if (body.length - offset < HEADER_BYTES) throw invalidArgument('body', `${what}: its header needs ${HEADER_BYTES} bytes and ${body.length - offset} are left`, hint);
    const index = body.readUInt32BE(offset);
    const nameBytes = body.readUInt16BE(offset + 4);
    const size = body.readUInt32BE(offset + 6);
    offset += HEADER_BYTES;
    if (nameBytes === 0 || nameBytes > MAX_BUNDLED_NAME_BYTES) throw invalidArgument('body', `${what}: its name is ${nameBytes} bytes long; names are 1 to ${MAX_BUNDLED_NAME_BYTES}`, hint);
    if (body.length - offset < nameBytes + size) {
      throw invalidArgument('body', `${what}: its name and bytes need ${nameBytes + size} bytes and ${body.length - offset} are left (the body ends early)`, hint);
    }
    const raw = body.subarray(offset, offset + nameBytes);
    const name = raw.toString('utf8');
    offset += nameBytes;
    // Invalid UTF-8 decodes to replacement characters, which do not encode back to the same bytes.
    if (!Buffer.from(name, 'utf8').equals(raw)) throw invalidArgument('body', `${what}: its name ${quote(name)} is not valid UTF-8 text`, hint);
    if (name.includes('\u0000')) throw invalidArgument('body', `${what}: its name ${quote(name)} holds a NUL character`, hint);
    if (seen.has(index)) throw invalidArgument('body', `${what}: index ${index} appears twice`, 'send each output index once');
    seen.add(index);
    files.push({ index, name, bytes: body.subarray(offset, offset + size) });
    offset += size;
  }
  return files;
}
