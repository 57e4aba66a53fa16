import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { TesseraError } from '../domain/errors.js';
import { createClient } from './client.js';
import type { ClientOptions } from './client.js';
import { lockHome } from './home-lock.js';

// `tessera key`: an account's keys through the API (list, create, revoke; a running server and a
// key are all it needs), and, for an operator bootstrapping a deployment, `key create` straight in
// the database (no --server or --key given: the home's embedded database, or DATABASE_URL).

type Options = ClientOptions & { json?: boolean };

function out(options: { json?: boolean }, value: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

interface KeyView {
  id: string;
  prefix: string;
  scope: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `key create` in the database: the operator's way in before any server runs (or for a new account). */
async function createInDatabase(options: { home?: string; json?: boolean; account?: string; newAccount?: boolean; worker?: boolean; operator?: boolean }): Promise<void> {
  if (options.operator && (options.worker || options.account || options.newAccount)) {
    throw new TesseraError('INVALID_ARGUMENT', '--operator makes an operator key: it takes no --worker, --account or --new-account', { hint: 'a shared worker\'s token: tessera key create --worker' });
  }
  const config = loadConfig({ home: options.home });
  const unlock = config.databaseUrl ? () => {} : lockHome(config.home);
  const [{ openDb }, { migrate }, { createKey }] = await Promise.all([import('../store/db.js'), import('../store/migrate.js'), import('../engine/accounts.js')]);
  const db = await openDb({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: path.join(config.home, 'db') });
  try {
    await migrate(db);
    const scope = options.operator ? 'operator' : options.worker ? 'worker' : 'customer';
    const key = await createKey(db, { ...(options.account ? { accountId: options.account } : {}), ...(options.newAccount ? { newAccount: true } : {}), scope });
    // A worker token names no account: the shared fleet's; with --account, that account's own pool.
    const pool = options.account || options.newAccount ? `account ${key.accountId}'s own workers` : 'the shared fleet, serving every account';
    if (options.operator) out(options, { operatorKey: key.apiKey, keyId: key.keyId }, `operator key (shown only this once; for /v1/operator):\n  ${key.apiKey}`);
    else if (options.worker) out(options, { token: key.apiKey, keyId: key.keyId, accountId: key.accountId, pool: options.account || options.newAccount ? key.accountId : 'shared' }, `worker token for ${pool} (shown only this once; for tessera worker --token):\n  ${key.apiKey}`);
    else out(options, { accountId: key.accountId, apiKey: key.apiKey, keyId: key.keyId }, `API key for account ${key.accountId} (shown only this once):\n  ${key.apiKey}`);
  } finally {
    await db.close();
    unlock();
  }
}

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('API keys and worker tokens');
  const client = (command: Command) =>
    command
      .option('--server <url>', 'Tessera server (TESSERA_URL, default http://127.0.0.1:8080)')
      .option('--key <key>', 'API key or access token (TESSERA_API_KEY)')
      .option('--json', 'print machine-readable JSON');

  key
    .command('create')
    .description('make a key (printed once; only a hash is stored): through the API with --server or --key, else straight in the database')
    .option('--server <url>', 'make it through this server, as the account of --key (TESSERA_API_KEY)')
    .option('--key <key>', 'API key of the account to add a key to (with --server, or TESSERA_URL)')
    .option('--worker', 'a worker token (for tessera worker --token): a shared worker\'s, or with --account that account\'s own')
    .option('--operator', 'an operator key (for /v1/operator: accounts, quotas, every worker); through the API, --key must be one, and --worker then makes a shared worker\'s token')
    .option('--home <dir>', 'without --server/--key: the home whose embedded database gets the key (TESSERA_HOME)')
    .option('--account <id>', 'without --server/--key: the account to add the key to (default: the first one)')
    .option('--new-account', 'without --server/--key: make a new account for the key')
    .option('--json', 'print machine-readable JSON')
    .action(async (options: Options & { home?: string; account?: string; newAccount?: boolean; worker?: boolean; operator?: boolean }) => {
      if (options.server === undefined && options.key === undefined) return createInDatabase(options);
      // Through an operator key (--operator, its own keys): another operator key, or with --worker a shared worker's token.
      const made = options.operator
        ? await createClient(options).call<{ key: KeyView; apiKey: string }>('POST', '/v1/operator/keys', { scope: options.worker ? 'worker' : 'operator' })
        : await createClient(options).call<{ key: KeyView; apiKey: string }>('POST', '/v1/auth/keys', { scope: options.worker ? 'worker' : 'customer' });
      const what = made.key.scope === 'worker' ? (options.operator ? 'shared worker token' : 'worker token for this account\'s own workers') : made.key.scope === 'operator' ? 'operator key' : 'API key';
      out(options, made, `${what} ${made.key.id} (shown only this once):\n  ${made.apiKey}`);
    });

  // With --operator, the operator's own keys and the shared workers' tokens (--key an operator key).
  const keysRoute = (options: { operator?: boolean }) => (options.operator ? '/v1/operator/keys' : '/v1/auth/keys');
  const operatorOption = (command: Command) => command.option('--operator', 'the operator\'s keys and shared workers\' tokens (--key an operator key)');

  operatorOption(client(key.command('list').description("this account's keys and worker tokens (never their secrets)"))).action(async (options: Options & { operator?: boolean }) => {
    const { keys } = await createClient(options).call<{ keys: KeyView[] }>('GET', keysRoute(options));
    const rows = keys.map((row) => `${row.id}  ${row.prefix}…  ${row.scope.padEnd(8)}  created ${row.createdAt}  ${row.revokedAt ? `revoked ${row.revokedAt}` : `last used ${row.lastUsedAt ?? 'never'}`}`);
    out(options, { keys }, rows.join('\n') || 'no keys');
  });

  operatorOption(client(key.command('revoke').argument('<keyId>', 'the key to revoke (tessera key list)').description('revoke a key: it and every access token made from it stop working (a worker token\'s workers stop)'))).action(async (keyId: string, options: Options & { operator?: boolean }) => {
    const answer = await createClient(options).call<{ message: string }>('DELETE', `${keysRoute(options)}/${encodeURIComponent(keyId)}`);
    out(options, answer, answer.message);
  });
}
