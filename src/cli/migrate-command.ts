import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { TesseraError } from '../domain/errors.js';
import { lockHome } from './home-lock.js';

// `tessera migrate`: applies this version's migrations and exits (a deployment's migration step,
// run once before the servers of a new version start). `--wait SECONDS` applies nothing: it waits
// until another process has applied them all, so a server never starts on an older schema.

interface MigrateOptions {
  home?: string;
  wait?: string;
  json?: boolean;
}

const POLL_MS = 2000;

async function migrateCommand(options: MigrateOptions): Promise<void> {
  const waitSeconds = options.wait === undefined ? undefined : Number(options.wait);
  if (waitSeconds !== undefined && !(Number.isInteger(waitSeconds) && waitSeconds >= 0 && waitSeconds <= 86_400)) {
    throw new TesseraError('INVALID_ARGUMENT', `--wait ${JSON.stringify(options.wait)}: expected whole seconds from 0 to 86400`, { hint: 'for example --wait 600' });
  }
  const config = loadConfig({ home: options.home });
  const unlock = config.databaseUrl ? () => {} : lockHome(config.home);
  const [{ openDb, databaseUnavailable }, { migrate, pendingMigrations }] = await Promise.all([import('../store/db.js'), import('../store/migrate.js')]);
  const db = await openDb({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: path.join(config.home, 'db'), poolSize: 1 });
  const out = (value: Record<string, unknown>, text: string) => process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  try {
    if (waitSeconds === undefined) {
      const applied = await migrate(db);
      out({ applied }, applied.length ? `applied ${applied.join(', ')}` : 'the database is up to date');
      return;
    }
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      // A database still starting is waited for like a migration not yet made.
      const pending = await pendingMigrations(db).catch((error: unknown) => {
        if (databaseUnavailable(error)) return [{ name: `(the database: ${(error as Error).message})` }];
        throw error;
      });
      if (pending.length === 0) {
        out({ pending: [] }, 'the database is up to date');
        return;
      }
      if (Date.now() >= deadline) {
        throw new TesseraError('DEADLINE_EXCEEDED', `after ${waitSeconds} s the database still lacks ${pending.map((migration) => migration.name).join(', ')}`, { hint: 'run `tessera migrate` with this version (in Kubernetes: its migration Job), then start again' });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  } finally {
    await db.close();
    unlock();
  }
}

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply this version\'s database migrations and exit (DATABASE_URL, or the home\'s embedded database)')
    .option('--home <dir>', 'folder of the embedded database (TESSERA_HOME)')
    .option('--wait <seconds>', 'apply nothing: wait until every migration of this version has been applied, at most this long')
    .option('--json', 'print machine-readable JSON')
    .action(migrateCommand);
}
