#!/usr/bin/env node
// Regenerates migrations/schema.txt (the checked-in description of the schema that a test
// compares with the migrations applied to an empty database). Run after adding a migration:
//   npm run build && node scripts/dump-schema.mjs
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDb } from '../dist/src/store/db.js';
import { describeSchema, migrate } from '../dist/src/store/migrate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const db = await openDb({});
await migrate(db);
writeFileSync(path.join(root, 'migrations', 'schema.txt'), await describeSchema(db));
await db.close();
console.log('wrote migrations/schema.txt');
