/**
 * The Parquet sink's retry policy: which file-system errors are worth waiting out, how
 * long to wait before the next attempt, and what a listener hears about each one.
 */

/** One failed attempt that the sink is about to retry. */
export interface SinkRetryInfo {
  /** 1 for the first failure of this operation. */
  attempt: number;
  /** Wait before the next attempt. */
  delayMs: number;
  error: Error;
  /** The file system's error code (one of RETRYABLE_FS_CODES). */
  code: string;
  /** The temporary file the failed attempt was writing (it has been deleted, or will be once it can). */
  file: string;
  source: string;
  partition: number;
  /** Rows held in memory that the next attempt writes again. */
  rows: number;
}

/**
 * File-system errors that an operator, or time, can clear while the worker waits: a
 * read-only or full disk, a quota, an I/O error, a busy or lost network file system, too
 * many open files. Anything else (ENOTDIR, EISDIR, EINVAL, ENAMETOOLONG, EXDEV, EFBIG, a
 * parquetjs-lite error, a bug) fails the call at once: the same rows would fail the same
 * way, so the worker should stop and say so rather than spin. ENOENT is not retried
 * either: the usual cause is a worker that took the partition over after a rebalance and
 * deleted this writer's temporary file; writing it again would publish rows the new owner
 * writes too.
 */
export const RETRYABLE_FS_CODES: ReadonlySet<string> = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'EAGAIN',
  'EBUSY',
  'EINTR',
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'ETIMEDOUT',
  'ESTALE',
]);

/** The code of an error worth retrying, or null. */
export function retryableFsCode(err: unknown): string | null {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && RETRYABLE_FS_CODES.has(code) ? code : null;
}

/** The wait after failed attempt number `attempt` (1 first): doubling from `initialDelayMs`, at most `maxDelayMs`. */
export function backoffDelayMs(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  return Math.min(initialDelayMs * 2 ** (attempt - 1), maxDelayMs);
}
