/**
 * Folders that refuse new entries, renames and deletes: a real write failure for the sink.
 * Root ignores permission bits, so as root this is the immutable attribute (chattr +i,
 * which binds root too), otherwise chmod 0555.
 */
import { execFileSync } from 'node:child_process';

const asRoot = (): boolean => process.getuid?.() === 0;

/** The error code a write into such a folder fails with. */
export const readOnlyCode = (): string => (asRoot() ? 'EPERM' : 'EACCES');

/** Makes the folders read-only (`true`) or writable again; throws when it cannot. */
export function setReadOnly(dirs: readonly string[], readOnly: boolean): void {
  if (dirs.length === 0) return;
  if (asRoot()) execFileSync('chattr', [readOnly ? '+i' : '-i', ...dirs], { stdio: 'pipe' });
  else execFileSync('chmod', [readOnly ? '0555' : '0755', ...dirs]);
}
