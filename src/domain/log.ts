// The logging calls Tessera makes. pino's logger satisfies it; tests may pass a silent one.
// Never log a secret: keys, tokens, signatures and database passwords stay out of every message.

type LogCall = (fields: object, message?: string) => void;

export interface Log {
  debug: LogCall;
  info: LogCall;
  warn: LogCall;
  error: LogCall;
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
