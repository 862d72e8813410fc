/**
 * Real file-system faults for the sink tests (no fs mocks). Root ignores permission bits,
 * so "read-only" is the immutable attribute (chattr +i, which binds root too) when running
 * as root, and chmod 0o555 otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setReadOnly } from '../../bench/chaos/read-only.js';

export { readOnlyCode } from '../../bench/chaos/read-only.js';

export type Undo = () => Promise<void> | void;

/**
 * A temporary folder, removed after the test; `undo` steps (unmount, make writable again)
 * run before that, last registered first (node:test runs after-hooks in registration order,
 * and a read-only or mounted folder cannot be removed).
 */
export async function faultDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<{ dir: string; undo: (fn: Undo) => void }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const steps: Undo[] = [];
  t.after(async () => {
    for (const step of steps.reverse()) await step();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, undo: (fn) => steps.push(fn) };
}

/**
 * Makes the folders refuse new entries, renames and deletes; returns how to undo it (also
 * registered with `undo`, so it runs after the test), or why it cannot be done here.
 */
export function makeReadOnly(dirs: readonly string[], undo: (fn: Undo) => void): { restore: () => void } | string {
  try {
    setReadOnly(dirs, true);
  } catch (err) {
    return `cannot make the folders read-only here (${String(err).split('\n')[0]})`;
  }
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    setReadOnly(dirs, false);
  };
  undo(restore);
  return { restore };
}
