import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

// Tessera's JSON logs (pino): one line per event, with reqId, jobId and taskId where they apply.
// Whatever a field holds, these paths are censored, so a key, token, secret or password that ends
// up in an object being logged is never written out.

export const REDACTED_PATHS = [
  'authorization',
  'apiKey',
  'token',
  'secretKey',
  'password',
  '*.authorization',
  '*.apiKey',
  '*.token',
  '*.secretKey',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export function createLogger(level: string, destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}
