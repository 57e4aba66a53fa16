import type { Queryable } from './db.js';

/** Returns the stored value of `key`, storing `make()` first if there is none (the first replica to get here wins). */
export async function getOrCreateSetting(db: Queryable, key: string, make: () => string): Promise<string> {
  await db.query('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, make()]);
  const [row] = await db.query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
  return row!.value;
}
