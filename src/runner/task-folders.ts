import { chownSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { TaskFolders } from './runtime.js';

// A task's folders belong to the user its process runs as, so it may write them: its scratch folder
// and the stage folders in it (the files the worker put there stay the worker's, readable), and its
// account's cache. Only a root worker runs tasks as another user; otherwise nothing changes.

/** Caches already handed over by this process (a cache folder is never removed by Tessera). */
const handedCaches = new Set<string>();
const HANDED_CACHES_KEPT = 10_000;

export function handOverTaskFolders(folders: TaskFolders, user: { uid: number; gid: number }): void {
  if (process.getuid?.() !== 0) return;
  chownSync(folders.root, user.uid, user.gid);
  for (const entry of readdirSync(folders.root, { withFileTypes: true })) if (entry.isDirectory()) chownSync(path.join(folders.root, entry.name), user.uid, user.gid);
  if (folders.userCache && !handedCaches.has(folders.userCache)) {
    chownSync(folders.userCache, user.uid, user.gid);
    if (handedCaches.size >= HANDED_CACHES_KEPT) handedCaches.clear();
    handedCaches.add(folders.userCache);
  }
}
