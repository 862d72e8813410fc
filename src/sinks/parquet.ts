/**
 * ParquetSink: scored rows to Parquet files, one open file per (source, partition),
 * published durably and retried through file-system failures. The files' layout, the
 * writer, the rows, recovery and the retry policy each have a module beside this one.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, SinkError } from '../errors.js';
import { makeDirectoryDurably } from '../fs/durable.js';
import { padOffset, parquetFileName, partitionDirectory, TEMP_SUFFIX, type ParquetLayout } from './parquet-layout.js';
import { backoffDelayMs, retryableFsCode, type SinkRetryInfo } from './parquet-retry.js';
import { extractRows, outputSchema, type ExtractedRows } from './parquet-rows.js';
import { ParquetCompressions, ParquetFileWriter, type ParquetColumn, type ParquetCompression } from './parquet-writer.js';
import type { DurableFile, ScoredBatch, Sink, SinkCallOptions } from './sink.js';

export interface ParquetSinkOptions {
  dir: string;
  pipeline: string;
  /** Finish a file after this many rows. Default 10 000. */
  rotateRows?: number;
  /** Also finish files older than this (checked on each write), so slow partitions commit. Default: never. */
  maxFileAgeMs?: number | null;
  /** Default SNAPPY. */
  compression?: ParquetCompression;
  /** Add the message text as a column. Default false. */
  includeText?: boolean;
  /** Rows per row group (parquetjs-lite holds one row group in memory). Default 4096. */
  rowGroupRows?: number;
  /** Clock for file age; tests pass their own. */
  now?: () => number;
  /**
   * Backoff between attempts when the file system fails with a code in RETRYABLE_FS_CODES:
   * `initialDelayMs` (default 100) doubling up to `maxDelayMs` (default 30 000). Such a
   * failure is retried until it clears or `signal` aborts; `write` (and `flush`) stay
   * blocked meanwhile, so nothing is committed and the source backs up.
   */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Hears every failed attempt before its backoff (for a log line and a metric). */
  onRetry?: (info: SinkRetryInfo) => void;
  /** Aborting stops retrying (shutdown): the pending call rejects and open files are discarded. See also SinkCallOptions. */
  signal?: AbortSignal;
}

interface ResolvedOptions {
  layout: ParquetLayout;
  rotateRows: number;
  maxFileAgeMs: number | null;
  compression: ParquetCompression;
  includeText: boolean;
  rowGroupRows: number;
  now: () => number;
  initialDelayMs: number;
  maxDelayMs: number;
  onRetry: ((info: SinkRetryInfo) => void) | null;
  signal: AbortSignal | null;
}

interface OpenFile {
  source: string;
  partition: number;
  dir: string;
  /** null until the first row, and after a failed attempt until the next one rewrites the file. */
  writer: ParquetFileWriter | null;
  /** The temporary file of the current (or last failed) attempt. */
  tempPath: string | null;
  /** Every row of the file so far, so that a failed attempt can be redone from the start. */
  rows: Record<string, unknown>[];
  firstOffset: bigint;
  lastOffset: bigint;
  openedAtMs: number;
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Writes scored rows to Parquet, one open file per (source, partition). Files are written
 * under a hidden temporary name and published (fsync, rename, fsync directory) after
 * `rotateRows` rows, on `flush`/`close`, or when older than `maxFileAgeMs`. The final name
 * carries the first and last offset written, so re-processing the same range replaces
 * the file instead of adding a duplicate.
 *
 * Offsets must increase within a (source, partition) while a file is open.
 *
 * A file-system failure that can clear (RETRYABLE_FS_CODES: a read-only or full disk, an
 * I/O error, …) is retried inside the call with exponential backoff, and the attempt
 * starts the file over: its temporary file is deleted and the rows held in memory (at
 * most `rotateRows` per open file) are written to a new one, so no row is lost or
 * written twice and a fsync that failed is never trusted. The call returns only once the
 * rows are written; meanwhile the caller is blocked, commits nothing, and stops pulling
 * from its source. When a call fails for good (another error, or `signal` aborted), every
 * open file is discarded: rows not yet in a durable file must be sent again (Kafka: from
 * the committed offset). `canRetry` on the error says whether sending them again could
 * succeed. Calls are serialized, so overlapping calls cannot interleave rows.
 */
export class ParquetSink implements Sink {
  readonly #opts: ResolvedOptions;
  readonly #columns: Record<string, ParquetColumn>;
  readonly #open = new Map<string, OpenFile>();
  /** Temporary files of failed attempts that could not be deleted yet (a read-only directory). */
  readonly #orphans = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** What stops retries in the call under way: the sink's signal and the call's own. */
  #signal: AbortSignal | null = null;

  constructor(options: ParquetSinkOptions) {
    this.#opts = resolveOptions(options);
    this.#columns = outputSchema(this.#opts.includeText);
  }

  get layout(): ParquetLayout {
    return this.#opts.layout;
  }

  write(scored: ScoredBatch, options: SinkCallOptions = {}): Promise<DurableFile[]> {
    return this.#serial(options, async () => {
      this.#assertOpen();
      const rows = extractRows(scored, this.#opts.includeText);
      this.#validate(rows);
      const durable: DurableFile[] = [];
      try {
        for (let i = 0; i < rows.length; i++) {
          const row = rows.at(i);
          const key = fileKey(row.source, row.partition);
          let file = this.#open.get(key);
          if (!file) {
            file = this.#newFile(row.source, row.partition, row.offset);
            this.#open.set(key, file);
          }
          await this.#append(file, row.values);
          file.lastOffset = row.offset;
          if (file.rows.length >= this.#opts.rotateRows) durable.push(await this.#finish(key, file));
        }
        if (this.#opts.maxFileAgeMs !== null) {
          const now = this.#opts.now();
          for (const [key, file] of [...this.#open]) {
            if (now - file.openedAtMs >= this.#opts.maxFileAgeMs) durable.push(await this.#finish(key, file));
          }
        }
      } catch (err) {
        await this.#discardAll();
        throw wrap(err, 'writing Parquet rows failed; open files were discarded');
      }
      return durable;
    });
  }

  flush(options: SinkCallOptions = {}): Promise<DurableFile[]> {
    return this.#serial(options, async () => {
      if (this.#closed) return [];
      return this.#finishAll();
    });
  }

  close(): Promise<DurableFile[]> {
    return this.#serial({}, async () => {
      if (this.#closed) return [];
      try {
        return await this.#finishAll();
      } finally {
        this.#closed = true;
      }
    });
  }

  discard(): Promise<void> {
    return this.#serial({}, () => this.#discardAll());
  }

  abort(): Promise<void> {
    return this.#serial({}, async () => {
      this.#closed = true;
      await this.#discardAll();
    });
  }

  /** Temporary files of failed attempts that could not be deleted yet; retried after each success. */
  get orphanedTempFiles(): string[] {
    return [...this.#orphans];
  }

  async #finishAll(): Promise<DurableFile[]> {
    const durable: DurableFile[] = [];
    try {
      for (const [key, file] of [...this.#open]) durable.push(await this.#finish(key, file));
    } catch (err) {
      await this.#discardAll();
      throw wrap(err, 'finishing Parquet files failed; open files were discarded');
    }
    return durable;
  }

  #newFile(source: string, partition: number, firstOffset: bigint): OpenFile {
    const dir = partitionDirectory(this.#opts.layout, source, partition);
    return { source, partition, dir, writer: null, tempPath: null, rows: [], firstOffset, lastOffset: firstOffset, openedAtMs: this.#opts.now() };
  }

  async #append(file: OpenFile, values: Record<string, unknown>): Promise<void> {
    file.rows.push(values);
    // A rewrite writes every held row, this one included.
    await this.#attempt(file, async (writer, rewritten) => {
      if (!rewritten) await writer.append(values);
    });
  }

  async #finish(key: string, file: OpenFile): Promise<DurableFile> {
    const finalPath = path.join(file.dir, parquetFileName(file.firstOffset, file.lastOffset));
    // If a failure comes after the rename (the directory fsync), the next attempt
    // replaces the file with the same rows under the same name.
    const { bytes } = await this.#attempt(file, (writer) => writer.finish(finalPath));
    file.writer = null;
    this.#open.delete(key);
    return {
      path: finalPath,
      source: file.source,
      partition: file.partition,
      firstOffset: file.firstOffset,
      lastOffset: file.lastOffset,
      rows: file.rows.length,
      bytes,
    };
  }

  /**
   * Runs `op` on the file's writer, first (re)writing the file from its held rows when it
   * has none. A failure with a retryable code drops the writer (deleting its temp file),
   * waits, and tries again from scratch; any other failure, or an abort, is thrown.
   */
  async #attempt<T>(file: OpenFile, op: (writer: ParquetFileWriter, rewritten: boolean) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const rewritten = file.writer === null;
        const writer = file.writer ?? (await this.#rewrite(file));
        const result = await op(writer, rewritten);
        if (attempt > 1) await this.#removeOrphans();
        return result;
      } catch (err) {
        await this.#dropWriter(file);
        const code = retryableFsCode(err);
        if (code === null) throw wrap(err, `writing ${file.tempPath ?? file.dir} failed`, false);
        const error = err as Error;
        const signal = this.#signal;
        if (signal?.aborted) throw abortedWhileRetrying(file, error);
        const delayMs = backoffDelayMs(attempt, this.#opts.initialDelayMs, this.#opts.maxDelayMs);
        this.#opts.onRetry?.({
          attempt,
          delayMs,
          error,
          code,
          file: file.tempPath ?? file.dir,
          source: file.source,
          partition: file.partition,
          rows: file.rows.length,
        });
        try {
          await sleep(delayMs, undefined, signal ? { signal } : {});
        } catch {
          throw abortedWhileRetrying(file, error);
        }
      }
    }
  }

  /** A new temporary file holding every row of `file` so far. */
  async #rewrite(file: OpenFile): Promise<ParquetFileWriter> {
    // mkdir -p on every attempt: the directory may be what went missing.
    await makeDirectoryDurably(file.dir);
    // Hidden and not ending in .parquet, so globs like **/*.parquet never pick it up.
    file.tempPath = path.join(file.dir, `.${padOffset(file.firstOffset)}-${randomUUID()}${TEMP_SUFFIX}`);
    const writer = await ParquetFileWriter.open(file.tempPath, this.#columns, {
      compression: this.#opts.compression,
      rowGroupRows: this.#opts.rowGroupRows,
      metadata: { 'textstream.pipeline': this.#opts.layout.pipeline },
    });
    file.writer = writer;
    for (const values of file.rows) await writer.append(values);
    return writer;
  }

  /** Drops the writer of a failed attempt; a temp file that cannot be deleted now is deleted later. */
  async #dropWriter(file: OpenFile): Promise<void> {
    const writer = file.writer;
    file.writer = null;
    if (!writer) return;
    await writer.discard().catch(() => this.#orphans.add(writer.tempPath));
  }

  async #removeOrphans(): Promise<void> {
    for (const orphan of [...this.#orphans]) {
      await rm(orphan, { force: true }).then(
        () => this.#orphans.delete(orphan),
        () => undefined,
      );
    }
  }

  async #discardAll(): Promise<void> {
    const files = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(files.map((f) => this.#dropWriter(f)));
    await this.#removeOrphans();
  }

  /** Rejects a batch before any row is written, so a bad batch leaves open files intact. */
  #validate(rows: ExtractedRows): void {
    const last = new Map<string, bigint>();
    for (const [key, file] of this.#open) last.set(key, file.lastOffset);
    for (let i = 0; i < rows.length; i++) {
      const row = rows.peek(i);
      if (row.offset < 0n || row.offset > MAX_EXACT) {
        // parquetjs-lite writes INT64 through parseInt: beyond 2^53 it would silently round.
        throw new SinkError(`offset ${row.offset} of ${row.source}/${row.partition} is outside 0..2^53-1`, {
          canRetry: false,
        });
      }
      const key = fileKey(row.source, row.partition);
      const previous = last.get(key);
      if (previous !== undefined && row.offset <= previous) {
        throw new SinkError(
          `offsets must increase within ${row.source}/${row.partition} while a file is open: got ${row.offset} after ${previous}`,
          { canRetry: false },
        );
      }
      last.set(key, row.offset);
      const timestamp = rows.timestamp(i);
      if (timestamp !== null && !(Number.isSafeInteger(timestamp) && timestamp >= 0)) {
        // parquetjs-lite rejects these mid-file; Kafka's "no timestamp" (-1) must arrive as null.
        throw new SinkError(`timestamp ${timestamp} of ${row.source}/${row.partition}@${row.offset} is not a time`, {
          canRetry: false,
        });
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new SinkError('the Parquet sink is closed', { canRetry: false });
  }

  #serial<T>(options: SinkCallOptions, fn: () => Promise<T>): Promise<T> {
    const signals = [this.#opts.signal, options.signal].filter((s): s is AbortSignal => s != null);
    const call = async (): Promise<T> => {
      this.#signal = signals.length > 1 ? AbortSignal.any(signals) : (signals[0] ?? null);
      try {
        return await fn();
      } finally {
        this.#signal = null;
      }
    };
    const run = this.#queue.then(call, call);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function fileKey(source: string, partition: number): string {
  return `${partition}\u0000${source}`;
}

function wrap(err: unknown, message: string, canRetry = true): SinkError {
  if (err instanceof SinkError) return err;
  return new SinkError(`${message}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, canRetry });
}

function abortedWhileRetrying(file: OpenFile, error: Error): SinkError {
  // The rows were not published, so sending them again (from the committed offset) is right.
  return new SinkError(`stopped retrying ${file.source}/${file.partition} (aborted): ${error.message}`, { cause: error, canRetry: true });
}

function resolveOptions(o: ParquetSinkOptions): ResolvedOptions {
  const rotateRows = o.rotateRows ?? 10_000;
  const rowGroupRows = o.rowGroupRows ?? 4096;
  const maxFileAgeMs = o.maxFileAgeMs ?? null;
  const compression = o.compression ?? ParquetCompressions.SNAPPY;
  if (!o.dir) throw new ConfigError('sink.dir', 'must not be empty');
  if (!o.pipeline || /[/\\]/u.test(o.pipeline) || o.pipeline === '.' || o.pipeline === '..') {
    throw new ConfigError('sink.pipeline', `must be a single path segment, got ${JSON.stringify(o.pipeline)}`);
  }
  if (!Number.isInteger(rotateRows) || rotateRows <= 0) throw new ConfigError('sink.rotateRows', 'must be > 0');
  if (!Number.isInteger(rowGroupRows) || rowGroupRows <= 0) throw new ConfigError('sink.rowGroupRows', 'must be > 0');
  if (maxFileAgeMs !== null && !(maxFileAgeMs > 0)) throw new ConfigError('sink.maxFileAgeMs', 'must be > 0 or null');
  if (!Object.values(ParquetCompressions).includes(compression)) {
    throw new ConfigError('sink.compression', `must be one of ${Object.values(ParquetCompressions).join(', ')}`);
  }
  const initialDelayMs = o.retry?.initialDelayMs ?? 100;
  const maxDelayMs = o.retry?.maxDelayMs ?? 30_000;
  if (!Number.isFinite(initialDelayMs) || initialDelayMs <= 0) throw new ConfigError('sink.retry.initialDelayMs', 'must be > 0');
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) throw new ConfigError('sink.retry.maxDelayMs', 'must be >= sink.retry.initialDelayMs');
  return {
    layout: { dir: o.dir, pipeline: o.pipeline },
    rotateRows,
    maxFileAgeMs,
    compression,
    includeText: o.includeText ?? false,
    rowGroupRows,
    now: o.now ?? Date.now,
    initialDelayMs,
    maxDelayMs,
    onRetry: o.onRetry ?? null,
    signal: o.signal ?? null,
  };
}
