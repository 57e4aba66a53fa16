import { createHash } from 'node:crypto';

// Large deterministic inputs made on the fly (never held whole in memory), with their sha256.

const BLOCK = 1024 * 1024;

/** `parts` streams of `bytesPerPart` each (a multiple of 1 MiB), every 1 MiB block stamped with its number; `sha256()` once all were read. */
export function patternStreams(parts: number, bytesPerPart: number): { streams: ReadableStream<Uint8Array>[]; sha256: () => string } {
  const hash = createHash('sha256');
  const base = createHash('sha512').update('tessera').digest();
  const template = Buffer.alloc(BLOCK);
  for (let offset = 0; offset < BLOCK; offset += base.length) base.copy(template, offset);
  const blocksPerPart = Math.ceil(bytesPerPart / BLOCK);
  let next = 0;
  const streams = Array.from({ length: parts }, () => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === blocksPerPart) return controller.close();
        const block = Buffer.from(template);
        block.writeUInt32BE(next++, 0);
        hash.update(block);
        sent++;
        controller.enqueue(block);
      },
    }, { highWaterMark: 0 }); // Nothing is made before it is read: bytes are hashed in the order they are sent.
  });
  return { streams, sha256: () => hash.digest('hex') };
}

/** PUTs a body (a string or a stream) to a URL; the status and the parsed JSON answer. */
export async function put(url: string, body: string | ReadableStream, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { method: 'PUT', body, headers, duplex: 'half' } as RequestInit);
  return { status: response.status, body: await response.json() };
}
