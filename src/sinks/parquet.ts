import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Data, DataType, Int8, Int32, Int64, RecordBatch, TimestampMillisecond, Utf8, Vector } from 'apache-arrow';
import { Columns } from '../batch/schema.js';
import { ConfigError, SinkError } from '../errors.js';
import { predictedLabel } from '../model/evaluation.js';
import type { DurableFile, ScoredBatch, Sink, SinkCallOptions } from './sink.js';

// parquetjs-lite ships no type declarations; this is the small part of its API we use.
interface ParquetJsWriter {
  appendRow(row: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
  setMetadata(key: string, value: string): void;
}
interface ParquetJsLite {
  ParquetSchema: new (fields: Record<string, ParquetJsField>) => object;
  ParquetWriter: {
    openStream(
      schema: object,
      stream: Writable,
      opts: { rowGroupSize: number; pageSize: number; useDataPageV2: boolean },
    ): Promise<ParquetJsWriter>;
  };
}
interface ParquetJsField {
  type: ParquetColumnType;
  optional?: boolean;
  compression: ParquetCompression;
  statistics?: boolean;
}
const requireCjs = createRequire(import.meta.url);
const parquetjs = requireCjs('parquetjs-lite') as ParquetJsLite;

// The Thrift structures parquetjs-lite writes its footer with (also without type declarations).
interface ThriftSchemaElement {
  write: (this: ThriftSchemaElement, output: unknown) => unknown;
  converted_type?: number | null;
  logicalType?: unknown;
}
interface ParquetThrift {
  SchemaElement: { prototype: ThriftSchemaElement };
  ConvertedType: Record<string, number>;
  LogicalType: new (args: object) => object;
  TimestampType: new (args: object) => object;
  TimeUnit: new (args: object) => object;
  MilliSeconds: new () => object;
}

/**
 * parquetjs-lite annotates timestamps with the legacy converted type TIMESTAMP_MILLIS only,
 * which DuckDB reads as a TIMESTAMP without time zone. The format defines that converted
 * type as an instant (UTC-adjusted) in milliseconds, so every such column also gets the
 * matching logical type, as parquet-mr and Arrow write both. Done once, on the prototype
 * parquetjs-lite's footer encoder instantiates: it offers no hook for logical types.
 */
function annotateTimestampsAsInstants(thrift: ParquetThrift): void {
  const write = thrift.SchemaElement.prototype.write;
  const millis = thrift.ConvertedType.TIMESTAMP_MILLIS;
  thrift.SchemaElement.prototype.write = function (this: ThriftSchemaElement, output: unknown) {
    if (this.converted_type === millis && this.logicalType == null) {
      const unit = new thrift.TimeUnit({ MILLIS: new thrift.MilliSeconds() });
      this.logicalType = new thrift.LogicalType({ TIMESTAMP: new thrift.TimestampType({ isAdjustedToUTC: true, unit }) });
    }
    return write.call(this, output);
  };
}
annotateTimestampsAsInstants(requireCjs('parquetjs-lite/gen-nodejs/parquet_types') as ParquetThrift);

export const ParquetCompressions = {
  UNCOMPRESSED: 'UNCOMPRESSED',
  SNAPPY: 'SNAPPY',
  GZIP: 'GZIP',
} as const;
/** The codecs parquetjs-lite can write (LZO, BROTLI, ZSTD are not in the lite build). */
export type ParquetCompression = (typeof ParquetCompressions)[keyof typeof ParquetCompressions];

export type ParquetColumnType = 'UTF8' | 'BYTE_ARRAY' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE' | 'TIMESTAMP_MILLIS';

export interface ParquetColumn {
  type: ParquetColumnType;
  optional?: boolean;
  /** Min/max statistics; worth it for offsets and times, wasted on free text and ids. */
  statistics?: boolean;
}

export interface ParquetFileWriterOptions {
  compression: ParquetCompression;
  /** Rows buffered in memory before a row group is written. */
  rowGroupRows: number;
  /** Rows per data page (parquetjs-lite counts pages in rows, not bytes). */
  pageRows?: number;
  /** Key/value metadata stored in the footer. */
  metadata?: Record<string, string>;
}

/**
 * One Parquet file written under a temporary name and published atomically: `finish`
 * closes the writer, fsyncs the file, renames it into place and fsyncs the directory,
 * so a reader (or a crash) never sees a half-written file under a final name.
 *
 * parquetjs-lite duplicates rows when `appendRow` calls overlap (it awaits the row-group
 * write before resetting its buffer), so appends are chained here one at a time even if
 * a caller forgets to await.
 *
 * A failed disk write (ENOSPC, EIO, …) fails the next `append` or `finish` with the
 * file system's error (its `code` intact); the file is then garbage: discard it.
 */
export class ParquetFileWriter {
  readonly tempPath: string;
  #handle: FileHandle | null;
  readonly #output: FileOutput;
  readonly #writer: ParquetJsWriter;
  #pending: Promise<void> = Promise.resolve();
  #rows = 0;

  private constructor(tempPath: string, handle: FileHandle, output: FileOutput, writer: ParquetJsWriter) {
    this.tempPath = tempPath;
    this.#handle = handle;
    this.#output = output;
    this.#writer = writer;
  }

  /** Creates `tempPath` (which must not exist) and starts a Parquet file in it. */
  static async open(
    tempPath: string,
    columns: Readonly<Record<string, ParquetColumn>>,
    opts: ParquetFileWriterOptions,
  ): Promise<ParquetFileWriter> {
    const fields: Record<string, ParquetJsField> = {};
    for (const [name, column] of Object.entries(columns)) {
      fields[name] = {
        type: column.type,
        optional: column.optional ?? false,
        compression: opts.compression,
        statistics: column.statistics ?? true,
      };
    }
    const schema = new parquetjs.ParquetSchema(fields);
    // 'wx': a temp name is unique, so an existing file means something else owns it.
    const handle = await open(tempPath, 'wx');
    const output = new FileOutput(handle);
    try {
      const writer = await parquetjs.ParquetWriter.openStream(schema, output, {
        rowGroupSize: opts.rowGroupRows,
        pageSize: opts.pageRows ?? 8192,
        // Version-1 data pages: the format every reader (pyarrow, DuckDB, Spark, older
        // parquet-mr) supports; parquetjs-lite would default to v2 pages.
        useDataPageV2: false,
      });
      for (const [key, value] of Object.entries(opts.metadata ?? {})) writer.setMetadata(key, value);
      return new ParquetFileWriter(tempPath, handle, output, writer);
    } catch (err) {
      await endAndRelease(output, handle);
      // Report the first error; a temp file that cannot be deleted is a crash leftover's twin.
      await rm(tempPath, { force: true }).catch(() => undefined);
      throw asError(err);
    }
  }

  get rows(): number {
    return this.#rows;
  }

  /** Appends one row; rows are buffered until a row group fills. */
  append(row: Record<string, unknown>): Promise<void> {
    const done = this.#pending.then(async () => {
      await this.#writer.appendRow(row);
      this.#output.throwIfFailed();
    });
    this.#pending = done.then(
      () => undefined,
      () => undefined,
    );
    this.#rows++;
    return done.catch((err: unknown) => {
      throw asError(err);
    });
  }

  /** Writes the footer, fsyncs, renames to `finalPath` (replacing it) and fsyncs its directory. */
  async finish(finalPath: string): Promise<{ bytes: number }> {
    const handle = this.#handle;
    if (!handle) throw new Error(`${this.tempPath} is already finished or discarded`);
    await this.#pending;
    try {
      await this.#writer.close().catch((err: unknown) => {
        throw asError(err);
      });
      this.#output.throwIfFailed();
      // A failed fsync is not retried on the same file: Linux may drop the dirty pages and
      // report the error only once (PostgreSQL's "fsyncgate"), so the caller rewrites the file.
      await handle.sync();
      const { size } = await handle.stat();
      this.#handle = null;
      await handle.close();
      await rename(this.tempPath, finalPath);
      await fsyncDirectory(path.dirname(finalPath));
      return { bytes: size };
    } catch (err) {
      // The first error is the one worth reporting; a failing delete shows up on the
      // caller's own discard (the sink retries it).
      await this.discard().catch(() => undefined);
      throw err;
    }
  }

  /** Drops the file without publishing it. Safe to call twice; fails only when the temp file cannot be deleted. */
  async discard(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    await endAndRelease(this.#output, handle);
    await rm(this.tempPath, { force: true });
  }
}

/**
 * The byte stream parquetjs-lite writes into: appends to a file handle, one write at a
 * time. It never hands a write error back to parquetjs-lite: the library does not await
 * its header write (a failing one would be an unhandled rejection, which ends the
 * process) and a Writable that fails emits 'error', which nobody listens to in there.
 * The first error is kept instead, later writes are dropped (the file is garbage by
 * then), and ParquetFileWriter throws the error at the next append or at finish.
 */
class FileOutput extends Writable {
  readonly #handle: FileHandle;
  #error: Error | null = null;

  constructor(handle: FileHandle) {
    super();
    this.#handle = handle;
    // Only a write after end can fail the stream itself; keep that too rather than crash.
    this.on('error', (err) => {
      this.#error ??= err;
    });
  }

  throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#error) {
      callback();
      return;
    }
    writeFully(this.#handle, chunk).then(
      () => callback(),
      (err: unknown) => {
        this.#error ??= asError(err);
        callback();
      },
    );
  }
}

/** FileHandle.write may write less than asked (a signal, a nearly full disk): loop. */
async function writeFully(handle: FileHandle, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset, null);
    if (bytesWritten === 0) throw Object.assign(new Error('write wrote 0 bytes'), { code: 'EIO' });
    offset += bytesWritten;
  }
}

/**
 * Ends the output stream, then closes its file handle. End rather than destroy: parquetjs-lite
 * does not await its header write, and a destroyed stream would reject that write with
 * nobody listening (an unhandled rejection); the bytes land in a file that is deleted
 * next anyway (FileOutput never fails a write, so ending cannot stall on an error).
 */
async function endAndRelease(output: Writable, handle: FileHandle | null): Promise<void> {
  if (!output.destroyed && !output.writableFinished) {
    await new Promise<void>((resolve) => {
      output.once('finish', resolve);
      output.once('error', () => resolve());
      output.once('close', resolve);
      output.end();
    });
  }
  output.destroy();
  if (handle) await handle.close().catch(() => undefined);
}

/** parquetjs-lite throws plain strings; give them a stack and a message. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Makes a rename or a new directory entry durable (Linux: fsync on the directory). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `mkdir -p` that also fsyncs the parent of every directory it creates. */
export async function makeDirectoryDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Every directory from `first` down to `dir` is new; its entry lives in its parent.
  let current = path.resolve(dir);
  const stop = path.dirname(path.resolve(first));
  while (current !== stop) {
    const parent = path.dirname(current);
    await fsyncDirectory(parent);
    if (parent === current) break;
    current = parent;
  }
}

// ---------------------------------------------------------------------------------------
// Layout of a pipeline's output folder `<dir>/<pipeline>/`, which pandas, pyarrow, DuckDB
// and Spark read as one dataset:
//
//   input=<source>/partition-<p>/<firstOffset>-<lastOffset>.parquet   published files
//   input=<source>/partition-<p>/.<…>.parquet.inprogress               a file being written
//   _quarantine/input=<source>/partition-<p>/<name>.<ms>.quarantined   invalid files moved aside
//
// `input=` is a Hive partition: Spark reads nested folders only below one, and readers add
// an `input` column from it. The partition folder is not one: `partition=<p>` would add a
// column that clashes with the files' own `partition` (pandas refuses int32 against
// dictionary<int32>, DuckDB makes it BIGINT). All four readers skip names that start with
// `_` or `.`, which is where state lives (checkpoints and dead letters too, see
// runtime/run-state.ts).

/** Where a pipeline's files live: `<dir>/<pipeline>/`. */
export interface ParquetLayout {
  dir: string;
  pipeline: string;
}

/**
 * Offsets are zero-padded to 20 digits (as Kafka names its log segments) so that file
 * names sort in offset order; 20 digits hold any non-negative int64.
 */
const OFFSET_DIGITS = 20;
const FINAL_NAME = /^(\d{20})-(\d{20})\.parquet$/;
const TEMP_SUFFIX = '.parquet.inprogress';
const PARQUET_EXTENSION = '.parquet';
/** The Hive partition key of a source's folder (a replayed file or a Kafka topic). */
export const INPUT_KEY = 'input';

export function padOffset(offset: bigint): string {
  return offset.toString().padStart(OFFSET_DIGITS, '0');
}

export function parquetFileName(firstOffset: bigint, lastOffset: bigint): string {
  return `${padOffset(firstOffset)}-${padOffset(lastOffset)}.parquet`;
}

/**
 * Escapes a source name for use in a path: anything outside [A-Za-z0-9._-] becomes %XX
 * (UTF-8), so a file name like `a b/c` cannot add a path level, and a leading `_` or `.`
 * too, which readers would skip as hidden. Kafka topic names are almost always unchanged.
 */
export function escapePathSegment(value: string): string {
  if (value === '') throw new SinkError('a source name must not be empty', { canRetry: false });
  // Escaping a leading `.` also keeps `.` and `..` from walking the directory tree.
  return value.replace(/[^A-Za-z0-9._-]|^[._]/gu, percentEncode);
}

/** The escaping of the legacy layout: a leading `_` or `.` was kept, `.` and `..` were not. */
function escapeLegacyPathSegment(value: string): string {
  const escaped = value.replace(/[^A-Za-z0-9._-]/gu, percentEncode);
  return escaped === '.' || escaped === '..' ? escaped.replaceAll('.', '%2E') : escaped;
}

function percentEncode(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/**
 * A source's name in paths: escaped, without a `.parquet` extension, so that globbing for
 * Parquet files never returns a folder (`spamassassin.parquet` → `spamassassin`).
 */
export function sourceDirectoryName(source: string): string {
  const escaped = escapePathSegment(source);
  const bare = escaped.endsWith(PARQUET_EXTENSION) ? escaped.slice(0, -PARQUET_EXTENSION.length) : escaped;
  return bare === '' ? escaped : bare;
}

export function partitionDirectory(layout: ParquetLayout, source: string, partition: number): string {
  return path.join(layout.dir, layout.pipeline, `${INPUT_KEY}=${sourceDirectoryName(source)}`, `partition-${partition}`);
}

/**
 * The layout before output folders became datasets: `<key>=<source>/partition=<p>/`, with
 * key `topic` (Kafka) or `file` (replay) and the source's full name. Recovery moves what
 * it finds there into partitionDirectory (see recoverPartitionOutput).
 */
export function legacyPartitionDirectory(layout: ParquetLayout, key: LegacyKey, source: string, partition: number): string {
  return path.join(layout.dir, layout.pipeline, `${key}=${escapeLegacyPathSegment(source)}`, `partition=${partition}`);
}

export type LegacyKey = 'topic' | 'file';

const PARQUET_MAGIC = Buffer.from('PAR1', 'latin1');
/** 'PAR1', then at the end: footer length (uint32 LE) and 'PAR1'. */
const MIN_PARQUET_BYTES = 12;

/**
 * Why `file` is not a complete Parquet file, or null when it looks complete: 'PAR1' at
 * both ends and a footer length that fits between them. Reads 12 bytes whatever the
 * size (a truncated or zero-filled file fails it; its rows are not decoded). Throws
 * only when the file cannot be read at all.
 */
export async function checkParquetFile(file: string): Promise<string | null> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) return 'not a regular file';
    if (info.size < MIN_PARQUET_BYTES) return `${info.size} bytes, shorter than any Parquet file (truncated)`;
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(8);
    await handle.read(head, 0, 4, 0);
    await handle.read(tail, 0, 8, info.size - 8);
    if (!head.equals(PARQUET_MAGIC)) return 'does not start with the Parquet magic PAR1';
    if (!tail.subarray(4).equals(PARQUET_MAGIC)) return `does not end with the Parquet magic PAR1 (truncated at ${info.size} bytes?)`;
    const footer = tail.readUInt32LE(0);
    if (footer === 0 || footer > info.size - MIN_PARQUET_BYTES) return `footer length ${footer} does not fit in ${info.size} bytes`;
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') return 'not a regular file';
    throw err;
  } finally {
    await handle.close();
  }
}

/** A final-named file that failed checkParquetFile and was moved out of the partition. */
export interface QuarantinedFile {
  /** Where it was. */
  path: string;
  /** Where it is now: `<dir>/<pipeline>/_quarantine/input=<source>/partition-<p>/<name>.<ms>.quarantined`. */
  movedTo: string;
  reason: string;
  firstOffset: bigint;
  lastOffset: bigint;
  bytes: number;
}

/** What recoverPartitionOutput found and did. */
export interface PartitionRecovery {
  /** The last offset in a valid final file (what findLastOffsetOnDisk returns now), or null. */
  lastOffset: bigint | null;
  /** Temporary files of a crashed writer, deleted. */
  removedTempFiles: string[];
  /**
   * Temporary files that could not be deleted (a read-only or failing disk), with the
   * error code. Harmless where they are: a temporary name is never read as output, and
   * the next start tries again.
   */
  tempFilesLeft: { path: string; code: string }[];
  /**
   * Invalid final files above the last valid one, highest first. Their offsets are not
   * in the output any more: resuming after `lastOffset` writes them again, but only if
   * the consumer is not already past them (see the worker's recovery).
   */
  quarantined: QuarantinedFile[];
  /** Files of the legacy layout moved into the partition's folder (see legacyPartitionDirectory). */
  migrated: string[];
}

interface FinalFile {
  name: string;
  firstOffset: bigint;
  lastOffset: bigint;
}

/** Final-named entries of a partition directory, highest last offset first; null when there is no directory. */
async function listFinalFiles(dir: string): Promise<FinalFile[] | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SinkError(`cannot list ${dir}`, { cause: err });
  }
  const files: FinalFile[] = [];
  for (const name of names) {
    const match = FINAL_NAME.exec(name);
    if (match) files.push({ name, firstOffset: BigInt(match[1]!), lastOffset: BigInt(match[2]!) });
  }
  return files.sort((a, b) => (a.lastOffset === b.lastOffset ? (b.firstOffset > a.firstOffset ? 1 : -1) : b.lastOffset > a.lastOffset ? 1 : -1));
}

/**
 * Walks the final files from the highest offset down and returns the first valid one;
 * each invalid one on the way goes to `onInvalid`. Only files above the end are checked
 * (one or two reads each): a crash cannot leave a final name on a partial file (publish
 * is write temp → fsync → rename), so an invalid one is rare — a disk error or a bad copy.
 */
async function findLastValidFile(
  dir: string,
  onInvalid: (file: FinalFile, reason: string) => Promise<void>,
): Promise<FinalFile | null> {
  for (const file of (await listFinalFiles(dir)) ?? []) {
    let reason: string | null;
    try {
      reason = await checkParquetFile(path.join(dir, file.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // replaced or moved meanwhile
      throw new SinkError(`cannot check ${path.join(dir, file.name)}`, { cause: err });
    }
    if (reason === null) return file;
    await onInvalid(file, reason);
  }
  return null;
}

/**
 * The last offset already in a durable file for (source, partition), found by listing
 * final file names (temporary files are ignored: they were never published) and checking
 * the footer of the highest ones: a final file that is not a complete Parquet file
 * (truncated by a disk error or a copy) never counts as the end. A consumer resumes after
 * max(committed offset, this) so a crash between rename and commit does not write the
 * same rows twice (Kafka Connect's HDFS sink recovers the same way). Returns null when
 * nothing valid has been written. Changes nothing on disk: see recoverPartitionOutput.
 */
export async function findLastOffsetOnDisk(
  layout: ParquetLayout,
  source: string,
  partition: number,
): Promise<bigint | null> {
  const last = await findLastValidFile(partitionDirectory(layout, source, partition), async () => {});
  return last === null ? null : last.lastOffset;
}

/**
 * Deletes temporary files a crashed writer left in (source, partition); returns how many.
 * Call it only for a partition this worker owns (e.g. on Kafka partition assignment):
 * another live writer's temp file looks the same.
 */
export async function removeStaleTempFiles(layout: ParquetLayout, source: string, partition: number): Promise<number> {
  return (await removeTempFiles(partitionDirectory(layout, source, partition))).removed.length;
}

async function removeTempFiles(dir: string): Promise<{ removed: string[]; left: { path: string; code: string }[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed: [], left: [] };
    throw new SinkError(`cannot list ${dir}`, { cause: err });
  }
  const stale = names.filter((n) => n.startsWith('.') && n.endsWith(TEMP_SUFFIX)).map((n) => path.join(dir, n));
  const removed: string[] = [];
  const left: { path: string; code: string }[] = [];
  // unlink, not rm: rm answers EPERM on a read-only folder by treating the file as a
  // folder, and fails with a misleading ENOTDIR.
  await Promise.all(
    stale.map((file) =>
      unlink(file).then(
        () => removed.push(file),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') removed.push(file);
          else left.push({ path: file, code: err.code ?? 'unknown' });
        },
      ),
    ),
  );
  return { removed, left };
}

const QUARANTINE_DIR = '_quarantine';
/** Not `.parquet`: globs of published files (DuckDB read_parquet, inspect, report) must not read it. */
const QUARANTINE_SUFFIX = '.quarantined';

/** `<dir>/<pipeline>/_quarantine/input=<source>/partition-<p>`: beside the data, never read as data. */
export function quarantineDirectory(layout: ParquetLayout, source: string, partition: number): string {
  return partitionDirectory({ dir: path.join(layout.dir, layout.pipeline), pipeline: QUARANTINE_DIR }, source, partition);
}

export interface RecoveryOptions {
  /** Also move the partition's files of the legacy layout, with this key, into place first. */
  legacyKey?: LegacyKey;
  /** Clock for quarantined names; tests pass their own. */
  now?: () => number;
}

/**
 * Start-up recovery of a partition this worker now owns: moves its files of the legacy
 * layout into place, deletes a crashed writer's temporary files, moves final files that
 * fail checkParquetFile (from the highest offset down to the first valid one) to
 * quarantineDirectory, and returns the last offset of a valid file. Call it only for an
 * owned partition, before writing to it.
 */
export async function recoverPartitionOutput(
  layout: ParquetLayout,
  source: string,
  partition: number,
  options: RecoveryOptions = {},
): Promise<PartitionRecovery> {
  const now = options.now ?? Date.now;
  const dir = partitionDirectory(layout, source, partition);
  const migrated = options.legacyKey === undefined ? [] : await migrateLegacyPartition(legacyPartitionDirectory(layout, options.legacyKey, source, partition), dir);
  const temp = await removeTempFiles(dir);
  const quarantined: QuarantinedFile[] = [];
  const last = await findLastValidFile(dir, async (file, reason) => {
    const from = path.join(dir, file.name);
    const target = quarantineDirectory(layout, source, partition);
    const movedTo = path.join(target, `${file.name}.${now()}${QUARANTINE_SUFFIX}`);
    try {
      const { size } = await stat(from);
      await makeDirectoryDurably(target);
      await rename(from, movedTo);
      await fsyncDirectory(dir);
      await fsyncDirectory(target);
      quarantined.push({ path: from, movedTo, reason, firstOffset: file.firstOffset, lastOffset: file.lastOffset, bytes: size });
    } catch (err) {
      // Left in place it would count as the partition's end on the next start.
      throw new SinkError(`cannot quarantine ${from} (${reason}) to ${movedTo}`, { cause: err });
    }
  });
  return { lastOffset: last === null ? null : last.lastOffset, removedTempFiles: temp.removed, tempFilesLeft: temp.left, quarantined, migrated };
}

/**
 * Moves the final files of a legacy partition folder into `dir` (a rename: same disk,
 * atomic per file), deletes its temporary files, and removes the folder and its source
 * folder once empty. Returns the new paths. A name already in `dir` is left where it is
 * and stops the move: two copies of one range need a person to look (`textstream inspect`).
 */
async function migrateLegacyPartition(legacy: string, dir: string): Promise<string[]> {
  const files = await listFinalFiles(legacy);
  if (files === null) return [];
  await removeTempFiles(legacy);
  await makeDirectoryDurably(dir);
  const moved: string[] = [];
  for (const { name } of files) {
    const to = path.join(dir, name);
    if (await stat(to).then(() => true, () => false)) {
      throw new SinkError(`cannot move ${path.join(legacy, name)} to ${to}: a file of that name is already there`, { canRetry: false });
    }
    await rename(path.join(legacy, name), to);
    moved.push(to);
  }
  await fsyncDirectory(dir);
  // Only empty folders go: anything else left there stays for a person to see.
  for (const folder of [legacy, path.dirname(legacy)]) {
    if ((await readdir(folder)).length > 0) break;
    await rmdir(folder).catch(() => {});
  }
  return moved;
}

// ---------------------------------------------------------------------------------------
// The sink

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

/** The output columns. INT64 columns go through parseInt in parquetjs-lite: exact below 2^53. */
export const OutputColumns = {
  ID: 'id',
  SCORE: 'score',
  PREDICTED: 'predicted',
  LABEL: 'label',
  MODEL_VERSION: 'model_version',
  SOURCE: 'source',
  PARTITION: 'partition',
  OFFSET: 'offset',
  TIMESTAMP: 'timestamp',
  PROCESSED_AT: 'processed_at',
  TEXT: 'text',
} as const;

function outputSchema(includeText: boolean): Record<string, ParquetColumn> {
  const columns: Record<string, ParquetColumn> = {
    [OutputColumns.ID]: { type: 'UTF8', statistics: false },
    // FLOAT: the model's scores are float32; a DOUBLE would show 0.10000000149011612.
    [OutputColumns.SCORE]: { type: 'FLOAT' },
    [OutputColumns.PREDICTED]: { type: 'INT32' },
    [OutputColumns.LABEL]: { type: 'INT32', optional: true },
    [OutputColumns.MODEL_VERSION]: { type: 'INT64' },
    [OutputColumns.SOURCE]: { type: 'UTF8' },
    [OutputColumns.PARTITION]: { type: 'INT32' },
    [OutputColumns.OFFSET]: { type: 'INT64' },
    [OutputColumns.TIMESTAMP]: { type: 'TIMESTAMP_MILLIS', optional: true },
    [OutputColumns.PROCESSED_AT]: { type: 'TIMESTAMP_MILLIS' },
  };
  if (includeText) columns[OutputColumns.TEXT] = { type: 'UTF8', statistics: false };
  return columns;
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
        const delayMs = Math.min(this.#opts.initialDelayMs * 2 ** (attempt - 1), this.#opts.maxDelayMs);
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

// ---------------------------------------------------------------------------------------
// Arrow batch → rows

interface ExtractedRow {
  source: string;
  partition: number;
  offset: bigint;
  values: Record<string, unknown>;
}

interface ExtractedRows {
  length: number;
  /** Position columns only: cheap, for validation. */
  peek(i: number): Omit<ExtractedRow, 'values'>;
  timestamp(i: number): number | null;
  at(i: number): ExtractedRow;
}

function extractRows(scored: ScoredBatch, includeText: boolean): ExtractedRows {
  const { batch, scores } = scored;
  if (scores.length !== batch.numRows) {
    throw new SinkError(`batch has ${batch.numRows} rows but ${scores.length} scores`, { canRetry: false });
  }
  if (!Number.isSafeInteger(scored.processedAtMs) || scored.processedAtMs < 0) {
    throw new SinkError(`processedAtMs ${scored.processedAtMs} is not a time`, { canRetry: false });
  }
  if (!Number.isSafeInteger(scored.modelVersion) || scored.modelVersion < 0) {
    throw new SinkError(`model version ${scored.modelVersion} is not an integer in 0..2^53-1`, { canRetry: false });
  }
  const ids = column<Utf8>(batch, Columns.ID);
  const labels = column<Int8>(batch, Columns.LABEL);
  const sources = column<Utf8>(batch, Columns.SOURCE);
  const partitions = column<Int32>(batch, Columns.PARTITION);
  const offsets = column<Int64>(batch, Columns.OFFSET);
  const timestamps = column<TimestampMillisecond>(batch, Columns.TIMESTAMP);
  const text = includeText ? utf8Bytes(column<Utf8>(batch, Columns.TEXT)) : null;
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) {
      throw new SinkError(`score of row ${String(ids.get(i))} is NaN (model diverged?)`, { canRetry: false });
    }
  }
  const peek = (i: number): Omit<ExtractedRow, 'values'> => ({
    source: sources.get(i)!,
    partition: partitions.get(i)!,
    offset: offsets.get(i)!,
  });
  return {
    length: batch.numRows,
    peek,
    timestamp: (i) => timestamps.get(i),
    at(i) {
      const position = peek(i);
      const score = scores[i]!;
      const values: Record<string, unknown> = {
        [OutputColumns.ID]: ids.get(i),
        [OutputColumns.SCORE]: score,
        [OutputColumns.PREDICTED]: predictedLabel(score),
        [OutputColumns.LABEL]: labels.get(i),
        [OutputColumns.MODEL_VERSION]: scored.modelVersion,
        [OutputColumns.SOURCE]: position.source,
        [OutputColumns.PARTITION]: position.partition,
        // A number, exact because it was checked to be below 2^53 (see #validate).
        [OutputColumns.OFFSET]: Number(position.offset),
        [OutputColumns.TIMESTAMP]: timestamps.get(i),
        [OutputColumns.PROCESSED_AT]: scored.processedAtMs,
      };
      if (text) values[OutputColumns.TEXT] = text(i);
      return { ...position, values };
    },
  };
}

function column<T extends DataType>(batch: RecordBatch, name: string): Vector<T> {
  const vector = batch.getChild(name);
  if (!vector) throw new SinkError(`batch has no ${name} column`, { canRetry: false });
  return vector as Vector<T>;
}

/**
 * The UTF-8 bytes of row i of a single-chunk Utf8 column, without decoding to a JS string
 * and encoding again (texts are the bulk of the bytes).
 */
function utf8Bytes(vector: Vector<Utf8>): (i: number) => Buffer {
  if (vector.data.length !== 1) throw new SinkError('text column must have a single chunk', { canRetry: false });
  const data = vector.data[0] as Data<Utf8>;
  const { valueOffsets, values } = data;
  return (i) => {
    const start = valueOffsets[i]!;
    const end = valueOffsets[i + 1]!;
    return Buffer.from(values.buffer, values.byteOffset + start, end - start);
  };
}
