import { gzipSync } from 'node:zlib';

// Tar archives built byte by byte, for tests that need what no honest packer would make:
// entries that climb out with "..", absolute paths, links out of the folder, sizes that lie.

export interface RawEntry {
  name: string;
  /** '0' file, '2' symlink, '1' hard link, '3' char device, '5' directory. */
  type?: '0' | '1' | '2' | '3' | '5';
  data?: Buffer | string;
  linkname?: string;
  /** The size the header declares, when it should differ from the data (a lie). */
  declaredSize?: number;
  mode?: number;
}

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

export function tarHeader(entry: RawEntry): Buffer {
  const header = Buffer.alloc(512);
  const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data ?? Buffer.alloc(0);
  const size = entry.declaredSize ?? data.length;
  field(header, 0, 100, entry.name);
  field(header, 100, 8, octal(entry.mode ?? (entry.type === '5' ? 0o755 : 0o644), 8));
  field(header, 108, 8, octal(0, 8));
  field(header, 116, 8, octal(0, 8));
  if (size > 0o77777777777) {
    // GNU base-256: a size octal cannot hold (over 8 GiB).
    header[124] = 0x80;
    let rest = BigInt(size);
    for (let index = 135; index > 124; index--) {
      header[index] = Number(rest & 0xffn);
      rest >>= 8n;
    }
  } else {
    field(header, 124, 12, octal(size, 12));
  }
  field(header, 136, 12, octal(0, 12));
  header.write('        ', 148, 'ascii');
  field(header, 156, 1, entry.type ?? '0');
  field(header, 157, 100, entry.linkname ?? '');
  field(header, 257, 6, 'ustar\0');
  field(header, 263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** A tar of these entries (data padded to 512 bytes), optionally gzip-compressed. */
export function tarArchive(entries: RawEntry[], options: { gzip?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry));
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data ?? Buffer.alloc(0);
    parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const tar = Buffer.concat(parts);
  return options.gzip ? gzipSync(tar) : tar;
}

/** A valid app folder's entries, to which a test adds its hostile one. */
export function appEntries(name: string): RawEntry[] {
  return [
    { name: 'manifest.json', data: JSON.stringify({ name, version: '1.0', entrypoint: 'main.py' }) },
    { name: 'app/', type: '5' },
    { name: 'app/main.py', data: 'print("hello")\n' },
  ];
}
