import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Data, DataType, Int8, Int32, Int64, RecordBatch, TimestampMillisecond, Utf8, Vector } from 'apache-arrow';
import { Columns } from '../batch/schema.js';
import { ConfigError, SinkError } from '../errors.js';
import { predictedLabel } from '../model/evaluation.js';
import type { DurableFile, ScoredBatch, Sink } from './sink.js';

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
const parquetjs = createRequire(import.meta.url)('parquetjs-lite') as ParquetJsLite;

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
 */
export class ParquetFileWriter {
  readonly tempPath: string;
  #handle: FileHandle | null;
  readonly #stream: Writable;
  readonly #writer: ParquetJsWriter;
  #pending: Promise<void> = Promise.resolve();
  #rows = 0;

  private constructor(tempPath: string, handle: FileHandle, stream: Writable, writer: ParquetJsWriter) {
    this.tempPath = tempPath;
    this.#handle = handle;
    this.#stream = stream;
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
    // autoClose false: the handle must outlive the stream so that it can be fsynced.
    const stream = handle.createWriteStream({ autoClose: false });
    try {
      const writer = await parquetjs.ParquetWriter.openStream(schema, stream, {
        rowGroupSize: opts.rowGroupRows,
        pageSize: opts.pageRows ?? 8192,
        // Version-1 data pages: the format every reader (pyarrow, DuckDB, Spark, older
        // parquet-mr) supports; parquetjs-lite would default to v2 pages.
        useDataPageV2: false,
      });
      for (const [key, value] of Object.entries(opts.metadata ?? {})) writer.setMetadata(key, value);
      return new ParquetFileWriter(tempPath, handle, stream, writer);
    } catch (err) {
      await endAndRelease(stream, handle);
      await rm(tempPath, { force: true });
      throw asError(err);
    }
  }

  get rows(): number {
    return this.#rows;
  }

  /** Appends one row; rows are buffered until a row group fills. */
  append(row: Record<string, unknown>): Promise<void> {
    const done = this.#pending.then(() => this.#writer.appendRow(row));
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
      await handle.sync();
      const { size } = await handle.stat();
      this.#handle = null;
      // A stream made with autoClose false keeps a reference on the handle, and
      // FileHandle.close() waits for it forever; destroying the ended stream releases it.
      this.#stream.destroy();
      await handle.close();
      await rename(this.tempPath, finalPath);
      await fsyncDirectory(path.dirname(finalPath));
      return { bytes: size };
    } catch (err) {
      await this.discard();
      throw err;
    }
  }

  /** Drops the file without publishing it. Safe to call twice. */
  async discard(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    await endAndRelease(this.#stream, handle);
    await rm(this.tempPath, { force: true });
  }
}

/**
 * Ends a write stream, then closes its file handle. End rather than destroy first:
 * parquetjs-lite does not await its header write, and a destroyed stream would reject
 * that write with nobody listening (an unhandled rejection); the bytes land in a file
 * that is deleted next anyway. Destroy after: a stream made with autoClose false keeps
 * a reference on the handle, and FileHandle.close() would wait for it forever.
 */
async function endAndRelease(stream: Writable, handle: FileHandle | null): Promise<void> {
  if (!stream.destroyed && !stream.writableFinished) {
    await new Promise<void>((resolve) => {
      stream.once('finish', resolve);
      stream.once('error', () => resolve());
      stream.once('close', resolve);
      stream.end();
    });
  }
  stream.destroy();
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
// Layout: <dir>/<pipeline>/<prefix>=<source>/partition=<p>/<firstOffset>-<lastOffset>.parquet

/** Where a pipeline's files live; `prefix` names the source key (`topic` for Kafka, `file` for replay). */
export interface ParquetLayout {
  dir: string;
  pipeline: string;
  prefix: string;
}

/**
 * Offsets are zero-padded to 20 digits (as Kafka names its log segments) so that file
 * names sort in offset order; 20 digits hold any non-negative int64.
 */
const OFFSET_DIGITS = 20;
const FINAL_NAME = /^(\d{20})-(\d{20})\.parquet$/;
const TEMP_SUFFIX = '.parquet.inprogress';

export function padOffset(offset: bigint): string {
  return offset.toString().padStart(OFFSET_DIGITS, '0');
}

export function parquetFileName(firstOffset: bigint, lastOffset: bigint): string {
  return `${padOffset(firstOffset)}-${padOffset(lastOffset)}.parquet`;
}

/**
 * Escapes a source name for use as a Hive-style partition value: anything outside
 * [A-Za-z0-9._-] becomes %XX (UTF-8), so a file name like `a b/c` cannot add a path level.
 * Kafka topic names are already in that set and stay unchanged.
 */
export function escapePartitionValue(value: string): string {
  if (value === '') throw new SinkError('a source name must not be empty', { canRetry: false });
  const escaped = value.replace(/[^A-Za-z0-9._-]/gu, (ch) =>
    [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  // `.` and `..` are valid names but would walk the directory tree.
  return escaped === '.' || escaped === '..' ? escaped.replaceAll('.', '%2E') : escaped;
}

export function partitionDirectory(layout: ParquetLayout, source: string, partition: number): string {
  return path.join(
    layout.dir,
    layout.pipeline,
    `${layout.prefix}=${escapePartitionValue(source)}`,
    `partition=${partition}`,
  );
}

/**
 * The last offset already in a durable file for (source, partition), found by listing
 * final file names (temporary files are ignored: they were never published). A consumer
 * resumes after max(committed offset, this) so a crash between rename and commit does
 * not write the same rows twice (Kafka Connect's HDFS sink recovers the same way).
 * Returns null when nothing has been written.
 */
export async function findLastOffsetOnDisk(
  layout: ParquetLayout,
  source: string,
  partition: number,
): Promise<bigint | null> {
  let names: string[];
  try {
    names = await readdir(partitionDirectory(layout, source, partition));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SinkError(`cannot list ${partitionDirectory(layout, source, partition)}`, { cause: err });
  }
  let last: bigint | null = null;
  for (const name of names) {
    const match = FINAL_NAME.exec(name);
    if (!match) continue;
    const offset = BigInt(match[2]!);
    if (last === null || offset > last) last = offset;
  }
  return last;
}

/**
 * Deletes temporary files a crashed writer left in (source, partition); returns how many.
 * Call it only for a partition this worker owns (e.g. on Kafka partition assignment):
 * another live writer's temp file looks the same.
 */
export async function removeStaleTempFiles(layout: ParquetLayout, source: string, partition: number): Promise<number> {
  const dir = partitionDirectory(layout, source, partition);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new SinkError(`cannot list ${dir}`, { cause: err });
  }
  const stale = names.filter((n) => n.startsWith('.') && n.endsWith(TEMP_SUFFIX));
  await Promise.all(stale.map((n) => rm(path.join(dir, n), { force: true })));
  return stale.length;
}

// ---------------------------------------------------------------------------------------
// The sink

export interface ParquetSinkOptions {
  dir: string;
  pipeline: string;
  /** Name of the source key in paths: `topic` (Kafka) or `file` (replay). Default `topic`. */
  prefix?: string;
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
}

interface ResolvedOptions {
  layout: ParquetLayout;
  rotateRows: number;
  maxFileAgeMs: number | null;
  compression: ParquetCompression;
  includeText: boolean;
  rowGroupRows: number;
  now: () => number;
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
  writer: ParquetFileWriter;
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
 * Offsets must increase within a (source, partition) while a file is open. When a write
 * fails, every open file is discarded: rows not yet in a durable file must be sent again
 * (Kafka: from the committed offset), which is what `canRetry` on the error means.
 * Calls are serialized, so overlapping calls cannot interleave rows.
 */
export class ParquetSink implements Sink {
  readonly #opts: ResolvedOptions;
  readonly #columns: Record<string, ParquetColumn>;
  readonly #open = new Map<string, OpenFile>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: ParquetSinkOptions) {
    this.#opts = resolveOptions(options);
    this.#columns = outputSchema(this.#opts.includeText);
  }

  get layout(): ParquetLayout {
    return this.#opts.layout;
  }

  write(scored: ScoredBatch): Promise<DurableFile[]> {
    return this.#serial(async () => {
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
            file = await this.#openFile(row.source, row.partition, row.offset);
            this.#open.set(key, file);
          }
          await file.writer.append(row.values);
          file.lastOffset = row.offset;
          if (file.writer.rows >= this.#opts.rotateRows) durable.push(await this.#finish(key, file));
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

  flush(): Promise<DurableFile[]> {
    return this.#serial(async () => {
      if (this.#closed) return [];
      return this.#finishAll();
    });
  }

  close(): Promise<DurableFile[]> {
    return this.#serial(async () => {
      if (this.#closed) return [];
      try {
        return await this.#finishAll();
      } finally {
        this.#closed = true;
      }
    });
  }

  discard(): Promise<void> {
    return this.#serial(() => this.#discardAll());
  }

  abort(): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true;
      await this.#discardAll();
    });
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

  async #openFile(source: string, partition: number, firstOffset: bigint): Promise<OpenFile> {
    const dir = partitionDirectory(this.#opts.layout, source, partition);
    await makeDirectoryDurably(dir);
    // Hidden and not ending in .parquet, so globs like **/*.parquet never pick it up.
    const temp = path.join(dir, `.${padOffset(firstOffset)}-${randomUUID()}${TEMP_SUFFIX}`);
    const writer = await ParquetFileWriter.open(temp, this.#columns, {
      compression: this.#opts.compression,
      rowGroupRows: this.#opts.rowGroupRows,
      metadata: { 'textstream.pipeline': this.#opts.layout.pipeline },
    });
    return { source, partition, dir, writer, firstOffset, lastOffset: firstOffset, openedAtMs: this.#opts.now() };
  }

  async #finish(key: string, file: OpenFile): Promise<DurableFile> {
    this.#open.delete(key);
    const finalPath = path.join(file.dir, parquetFileName(file.firstOffset, file.lastOffset));
    const rows = file.writer.rows;
    const { bytes } = await file.writer.finish(finalPath);
    return {
      path: finalPath,
      source: file.source,
      partition: file.partition,
      firstOffset: file.firstOffset,
      lastOffset: file.lastOffset,
      rows,
      bytes,
    };
  }

  async #discardAll(): Promise<void> {
    const files = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(files.map((f) => f.writer.discard().catch(() => undefined)));
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

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function fileKey(source: string, partition: number): string {
  return `${partition}\u0000${source}`;
}

function wrap(err: unknown, message: string): SinkError {
  if (err instanceof SinkError) return err;
  return new SinkError(`${message}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function resolveOptions(o: ParquetSinkOptions): ResolvedOptions {
  const rotateRows = o.rotateRows ?? 10_000;
  const rowGroupRows = o.rowGroupRows ?? 4096;
  const maxFileAgeMs = o.maxFileAgeMs ?? null;
  const compression = o.compression ?? ParquetCompressions.SNAPPY;
  const prefix = o.prefix ?? 'topic';
  if (!o.dir) throw new ConfigError('sink.dir', 'must not be empty');
  if (!o.pipeline || /[/\\]/u.test(o.pipeline) || o.pipeline === '.' || o.pipeline === '..') {
    throw new ConfigError('sink.pipeline', `must be a single path segment, got ${JSON.stringify(o.pipeline)}`);
  }
  if (!/^[A-Za-z0-9_]+$/u.test(prefix)) throw new ConfigError('sink.prefix', `must be letters, digits or _, got ${JSON.stringify(prefix)}`);
  if (!Number.isInteger(rotateRows) || rotateRows <= 0) throw new ConfigError('sink.rotateRows', 'must be > 0');
  if (!Number.isInteger(rowGroupRows) || rowGroupRows <= 0) throw new ConfigError('sink.rowGroupRows', 'must be > 0');
  if (maxFileAgeMs !== null && !(maxFileAgeMs > 0)) throw new ConfigError('sink.maxFileAgeMs', 'must be > 0 or null');
  if (!Object.values(ParquetCompressions).includes(compression)) {
    throw new ConfigError('sink.compression', `must be one of ${Object.values(ParquetCompressions).join(', ')}`);
  }
  return {
    layout: { dir: o.dir, pipeline: o.pipeline, prefix },
    rotateRows,
    maxFileAgeMs,
    compression,
    includeText: o.includeText ?? false,
    rowGroupRows,
    now: o.now ?? Date.now,
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
