import { TesseraError } from '../domain/errors.js';
import type { ErrorCode } from '../domain/errors.js';
import { loadClientConfig } from '../config/config.js';
import { cliHint } from './hints.js';

// The CLI's side of the public API: one server URL and key (flags, else TESSERA_URL and
// TESSERA_API_KEY), JSON calls whose failures become TesseraErrors carrying the server's message
// and hint, and a reader for the server-sent event streams.

export interface ClientOptions {
  server?: string;
  key?: string;
}

/** gRPC code numbers (rpcStatus.code) as names. */
const CODES: Record<number, ErrorCode> = { 1: 'CANCELLED', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED' };

export interface Client {
  server: string;
  call<T = any>(method: string, route: string, body?: unknown): Promise<T>;
  /** Reads a text/event-stream until it ends or `onEvent` returns false. */
  stream(route: string, onEvent: (event: string, data: any) => boolean | void): Promise<void>;
}

export function createClient(options: ClientOptions): Client {
  const config = loadClientConfig({ server: options.server, key: options.key });
  const server = config.serverUrl.split(',')[0]!;
  const key = config.apiKey;
  if (!key) throw new TesseraError('UNAUTHENTICATED', 'no API key given', { hint: 'pass --key or set TESSERA_API_KEY (tessera up prints the first one; tessera key create makes more)' });
  const headers = (body: boolean) => ({ authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) });

  async function send(method: string, route: string, body: unknown, accept?: string): Promise<Response> {
    try {
      return await fetch(`${server}${route}`, { method, headers: { ...headers(body !== undefined), ...(accept ? { accept } : {}) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (error) {
      throw new TesseraError('UNAVAILABLE', `cannot reach ${server}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`, { hint: 'start it with `tessera up`, or pass --server / set TESSERA_URL' });
    }
  }

  async function failure(response: Response, method: string, route: string): Promise<TesseraError> {
    const text = await response.text();
    let body: { code?: number; message?: string; details?: { metadata?: { hint?: string } }[] } = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text.slice(0, 300) };
    }
    const code = (typeof body.code === 'number' ? CODES[body.code] : undefined) ?? (response.status === 404 ? 'NOT_FOUND' : 'INTERNAL');
    const hint = Array.isArray(body.details) ? body.details.find((detail) => detail?.metadata?.hint)?.metadata?.hint : undefined;
    // The server's message ends with " (hint)"; the CLI prints the hint on its own line instead.
    const message = (hint && body.message?.endsWith(` (${hint})`) ? body.message.slice(0, -hint.length - 3) : body.message) || `${method} ${route} answered HTTP ${response.status}`;
    const shown = cliHint(hint);
    // Said as the client sees it: which key was refused, and by whom.
    if (code === 'UNAUTHENTICATED') return new TesseraError(code, `${server} refused the API key from ${config.keySource}: ${message}`, shown ? { hint: shown } : {});
    return new TesseraError(code, message, shown ? { hint: shown } : {});
  }

  return {
    server,
    async call(method, route, body) {
      const response = await send(method, route, body);
      if (!response.ok) throw await failure(response, method, route);
      return response.json() as never;
    },
    async stream(route, onEvent) {
      const response = await send('GET', route, undefined, 'text/event-stream');
      if (!response.ok || !response.body) throw await failure(response, 'GET', route);
      const decoder = new TextDecoder();
      let buffer = '';
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length === 0) continue;
            const parsed = JSON.parse(data.join('\n'));
            if (onEvent(event, parsed.result?.data ?? parsed) === false) return;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    },
  };
}
