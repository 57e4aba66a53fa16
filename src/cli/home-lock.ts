import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TesseraError } from '../domain/errors.js';

// Embedded PGlite keeps its database in one folder that only one process may open: a second
// process opening it would corrupt it. A pid file in --home makes the second one stop with a message.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockHome(home: string): () => void {
  mkdirSync(home, { recursive: true });
  const file = path.join(home, 'tessera.pid');
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new TesseraError('FAILED_PRECONDITION', `another Tessera process (pid ${pid}) is using ${home}`, {
          hint: 'stop it first, or pass a different --home',
        });
      }
      // Left behind by a process that died: take it over.
      rmSync(file, { force: true });
    }
  }
  throw new TesseraError('FAILED_PRECONDITION', `could not lock ${home}`, { hint: `remove ${file} if no Tessera process is running` });
}
