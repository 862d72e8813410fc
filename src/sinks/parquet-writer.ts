/**
 * The Parquet writer adapter: the part of parquetjs-lite we use, typed; the timestamp
 * logical type it fails to write; and ParquetFileWriter, one file written under a
 * temporary name and published atomically, with disk errors reported instead of lost.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fsyncDirectory } from '../fs/durable.js';

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
