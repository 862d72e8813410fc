import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData, type SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ConfigError, SourceError } from '../errors.js';
import type { RawRecord, SourcePosition } from '../message.js';
import type { Source } from './source.js';

/*
 * Decoding is hyparquet's (all encodings, format versions and page kinds; snappy built in,
 * the other codecs from hyparquet-compressors). parquetjs-lite, the writer's library,
 * cannot read pyarrow's default files (format version 2, RLE_DICTIONARY, PLAIN fallback
 * pages, dictionaries over 256 entries) and decodes UTF8 columns lossily, so it is not
 * used for reading.
 *
 * String columns are read as their raw bytes (`utf8: false` for unannotated BYTE_ARRAY, a
 * pass-through `stringFromBytes` for UTF8/STRING ones): invalid UTF-8 must reach the
 * decoder intact so that it can be dead-lettered instead of silently becoming U+FFFD.
 */

/** What to set when a configured column is missing: the text, the label or the id. */
const COLUMN_ADVICE = {
  text: 'set source.columns.text to the column that holds the text',
  label: 'set source.columns.label to the column that holds the label, or to null when the data has no labels',
  id: 'set source.columns.id to the column that holds the record id, or to null to number rows as <file>:<row>',
} as const;

export interface ParquetSourceColumns {
  /** The text column (BYTE_ARRAY, optionally UTF8-annotated). Default `text`. */
  text?: string;
  /** Label column, passed through unvalidated; null: no labels. Default `label`. */
  label?: string | null;
  /** Id column, delivered as a string; null: no ids (the decoder uses `<source>:<row>`). Default `id`. */
  id?: string | null;
}

export interface ParquetSourceOptions {
  path: string;
  columns?: ParquetSourceColumns;
  /** Rows per yielded batch. Default 512. */
  batchRows?: number;
  /** Source name in positions and output paths. Default: the file's base name. */
  name?: string;
  /** Uncompressed column bytes to aim for per read (see rowsPerRead). Default 8 MiB. */
  readBytes?: number;
  /**
   * Resuming (`replay --resume`): the first row to deliver, and the row before which the
   * delivered rows are retrain-only (`isRetrainOnly`): their output is on disk already,
   * but the checkpoint had not learnt them. Default 0 and 0: every row, all new.
   */
  resume?: { fromRow: number; newFromRow: number };
}

/** The columns a source reads, after defaults. */
export interface ResolvedColumns {
  text: string;
  label: string | null;
  id: string | null;
}

const rawBytes = (bytes: Uint8Array): Uint8Array => bytes;

/** hyparquet options shared by every read. */
const READ_OPTIONS = {
  compressors,
  utf8: false,
  // UTF8/STRING and JSON columns would otherwise be decoded (lossily) or parsed.
  parsers: { stringFromBytes: rawBytes, jsonFromBytes: rawBytes },
  geoparquet: false,
  // Never trust offset indexes: parquetjs-lite (our own writer) stores first_row_index 0
  // for every page (it reads an undefined `count`), and hyparquet would return the wrong rows.
  useOffsetIndex: false,
} as const;

const CODECS = new Set(['UNCOMPRESSED', 'SNAPPY', ...Object.keys(compressors)]);
/** Annotations under which a byte column still comes out as the stored bytes. */
const BYTE_ANNOTATIONS = new Set([undefined, 'UTF8', 'STRING', 'ENUM', 'JSON']);

/**
 * Uncompressed column bytes to aim for per read. hyparquet decodes a column chunk from its
 * start (dictionary, then page headers up to the range) on every read: on a pyarrow file
 * with one 200 000-row row group, one read per 512-row batch was ~20x slower than 8 MiB
 * windows (~15 000 vs ~300 000 rows/s). 16 MiB was ~15% faster there, but cost memory and
 * gained nothing on small row groups.
 */
const READ_BYTES = 8 << 20;

/**
 * Replays a Parquet file as a source: rows in file order, `batchRows` at a time.
 * Positions: source = file name, partition 0, offset = row index, no timestamp.
 * Text is the column's raw bytes (a Buffer, i.e. a Uint8Array) so that invalid UTF-8
 * reaches the decoder intact. `commit` is a no-op: a replay has nothing to acknowledge.
 *
 * Memory: rows are read by row range, a whole number of batches worth about `readBytes` of
 * column data at a time (see rowsPerRead). One read holds the selected columns' compressed
 * column chunks of the row groups the range touches, their dictionaries, the decoded pages
 * overlapping the range (earlier pages are skipped undecoded) and the range's row objects;
 * the chunk bytes stay cached for the next read (see FileSlices). So memory is bounded by
 * `readBytes` plus row-group size, not file size; a file with huge row groups (pyarrow's
 * default is up to 1 Mi rows) holds one whole compressed column chunk per selected column.
 */
export class ParquetSource implements Source {
  readonly name: string;
  readonly size: number;
  readonly path: string;
  readonly columns: ResolvedColumns;
  readonly #batchRows: number;
  readonly #readBytes: number;
  readonly #file: FileSlices;
  readonly #metadata: FileMetaData;
  readonly #labelOf: (value: unknown) => unknown;
  readonly #fromRow: number;
  readonly #newFromRow: bigint;
  #closed = false;

  private constructor(
    options: { path: string; name: string; batchRows: number; readBytes: number; columns: ResolvedColumns; resume: { fromRow: number; newFromRow: number } },
    file: FileSlices,
    metadata: FileMetaData,
    label: SchemaElement | null,
  ) {
    this.path = options.path;
    this.name = options.name;
    this.columns = options.columns;
    this.#batchRows = options.batchRows;
    this.#readBytes = options.readBytes;
    this.#file = file;
    this.#metadata = metadata;
    this.#labelOf = label?.type === 'BYTE_ARRAY' || label?.type === 'FIXED_LEN_BYTE_ARRAY' ? bytesToString : (v) => v ?? null;
    this.size = Number(metadata.num_rows);
    this.#fromRow = options.resume.fromRow;
    this.#newFromRow = BigInt(options.resume.newFromRow);
  }

  /** Rows this source will deliver: those from `resume.fromRow` on. */
  get remaining(): number {
    return this.size - this.#fromRow;
  }

  /** A row before `resume.newFromRow`: already written, delivered only to be learnt again. */
  isRetrainOnly(position: SourcePosition): boolean {
    return position.source === this.name && position.offset < this.#newFromRow;
  }

  /** Opens the file and reads its footer; fails with a SourceError that names the problem. */
  static async open(options: ParquetSourceOptions): Promise<ParquetSource> {
    const batchRows = options.batchRows ?? 512;
    if (!Number.isInteger(batchRows) || batchRows <= 0) {
      throw new ConfigError('source.batchRows', `must be a positive integer, got ${batchRows}`);
    }
    if (options.name === '') throw new ConfigError('source.name', 'must not be empty');
    const readBytes = options.readBytes ?? READ_BYTES;
    if (!Number.isInteger(readBytes) || readBytes <= 0) {
      throw new ConfigError('source.readBytes', `must be a positive integer, got ${readBytes}`);
    }
    const columns: ResolvedColumns = {
      text: options.columns?.text ?? 'text',
      label: options.columns?.label === undefined ? 'label' : options.columns.label,
      id: options.columns?.id === undefined ? 'id' : options.columns.id,
    };
    const file = options.path;
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new SourceError(`Parquet source ${file} is not a file`);
      size = info.size;
    } catch (err) {
      if (err instanceof SourceError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new SourceError(
        code === 'ENOENT' ? `Parquet source ${file} does not exist` : `cannot open Parquet source ${file}: ${String(err)}`,
        { cause: err },
      );
    }
    // Magic at both ends plus a 4-byte footer length: anything shorter cannot be Parquet.
    if (size < 12) throw new SourceError(`${file} is not a Parquet file (${size} bytes)`);

    const handle = await open(file, 'r').catch((err: unknown) => {
      throw new SourceError(`cannot open Parquet source ${file}: ${String(err)}`, { cause: err });
    });
    const slices = new FileSlices(handle, size);
    try {
      let metadata: FileMetaData;
      try {
        metadata = await slices.reading(() => parquetMetadataAsync(slices, { geoparquet: false }));
      } catch (err) {
        throw new SourceError(`${file} is not a Parquet file (${String(err)})`, { cause: err });
      }
      const top = new Map(parquetSchema(metadata).children.map((c) => [c.element.name, c]));
      const pick = (name: string, role: keyof typeof COLUMN_ADVICE): SchemaElement => {
        const found = top.get(name);
        if (!found) {
          throw new ConfigError(
            `source.columns.${role}`,
            `column "${name}" not found in ${file}; its columns are: ${[...top.keys()].map((c) => `"${c}"`).join(', ')}; ${COLUMN_ADVICE[role]}`,
          );
        }
        if (found.children.length > 0 || found.element.repetition_type === 'REPEATED') {
          throw new SourceError(
            `${role} column "${name}" in ${file} is ${found.children.length > 0 ? 'a nested group' : 'repeated'}; only flat columns can be read`,
          );
        }
        return found.element;
      };
      const text = pick(columns.text, 'text');
      const label = columns.label === null ? null : pick(columns.label, 'label');
      if (columns.id !== null) pick(columns.id, 'id');
      const annotation = text.logical_type?.type ?? text.converted_type;
      if ((text.type !== 'BYTE_ARRAY' && text.type !== 'FIXED_LEN_BYTE_ARRAY') || !BYTE_ANNOTATIONS.has(annotation)) {
        throw new ConfigError(
          'source.columns.text',
          `column "${columns.text}" in ${file} has type ${text.type}${annotation ? ` (${annotation})` : ''}; expected a string or binary column`,
        );
      }
      checkChunks(file, metadata, selected(columns));
      const resume = options.resume ?? { fromRow: 0, newFromRow: 0 };
      const rows = Number(metadata.num_rows);
      if (!(Number.isSafeInteger(resume.fromRow) && resume.fromRow >= 0 && resume.fromRow <= resume.newFromRow && resume.newFromRow <= rows)) {
        throw new SourceError(`cannot resume ${file} at rows ${resume.fromRow}/${resume.newFromRow}: it has ${rows} rows`);
      }
      return new ParquetSource({ path: file, name: options.name ?? path.basename(file), batchRows, readBytes, columns, resume }, slices, metadata, label);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  async *batches(signal: AbortSignal): AsyncIterable<RawRecord[]> {
    if (this.#closed) throw new SourceError(`Parquet source ${this.path} is closed`);
    const { text, label, id } = this.columns;
    const columns = selected(this.columns);
    const readRows = rowsPerRead(this.#metadata, columns, this.#batchRows, this.#readBytes);
    for (let start = this.#fromRow; start < this.size; start += readRows) {
      if (signal.aborted || this.#closed) return;
      const end = Math.min(this.size, start + readRows);
      let rows: Record<string, unknown>[];
      try {
        rows = await this.#file.reading(() =>
          parquetReadObjects({ ...READ_OPTIONS, file: this.#file, metadata: this.#metadata, columns, rowStart: start, rowEnd: end }),
        );
        if (rows.length !== end - start) throw new SourceError(`got ${rows.length} rows, expected ${end - start}`);
      } catch (err) {
        if (this.#closed) return; // closed while reading: the handle went away under the read
        throw new SourceError(`${this.path}: reading rows ${start} to ${end - 1} failed: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
      for (let first = 0; first < rows.length; first += this.#batchRows) {
        if (first > 0 && (signal.aborted || this.#closed)) return;
        const batch = new Array<RawRecord>(Math.min(this.#batchRows, rows.length - first));
        for (let k = 0; k < batch.length; k++) {
          const row = rows[first + k]!;
          batch[k] = new ParquetRecord(
            { source: this.name, partition: 0, offset: BigInt(start + first + k), timestampMs: null },
            id === null ? null : idToString(row[id]),
            asBuffer(row[text]),
            label === null ? null : this.#labelOf(row[label]),
            this.columns,
          );
        }
        yield batch;
      }
    }
  }

  /** Nothing to acknowledge when replaying a file. */
  async commit(_positions: readonly SourcePosition[]): Promise<void> {}

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }
}

/**
 * One row as a RawRecord. `original` (the row as JSON, text as base64) is built only when
 * asked for, i.e. for the rare dead letter, not for every row of a replay.
 */
class ParquetRecord implements RawRecord {
  readonly position: SourcePosition;
  readonly id: string | null;
  readonly text: Buffer | null;
  readonly label: unknown;
  readonly #columns: ResolvedColumns;
  #original: Uint8Array | undefined;

  constructor(position: SourcePosition, id: string | null, text: Buffer | null, label: unknown, columns: ResolvedColumns) {
    this.position = position;
    this.id = id;
    this.text = text;
    this.label = label;
    this.#columns = columns;
  }

  get original(): Uint8Array {
    if (!this.#original) {
      const row: Record<string, unknown> = {};
      if (this.#columns.id !== null) row[this.#columns.id] = this.id;
      if (this.#columns.label !== null) row[this.#columns.label] = jsonSafe(this.label);
      row[this.#columns.text] = this.text === null ? null : { base64: this.text.toString('base64') };
      this.#original = Buffer.from(JSON.stringify(row), 'utf8');
    }
    return this.#original;
  }
}

/** Rows per read: whole batches, about `readBytes` of the selected columns (densest row group). */
function rowsPerRead(metadata: FileMetaData, columns: string[], batchRows: number, readBytes: number): number {
  let bytesPerRow = 0;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    if (rows === 0) continue;
    let bytes = 0;
    for (const chunk of group.columns) {
      if (chunk.meta_data && columns.includes(chunk.meta_data.path_in_schema[0]!)) bytes += Number(chunk.meta_data.total_uncompressed_size);
    }
    bytesPerRow = Math.max(bytesPerRow, bytes / rows);
  }
  const total = Math.max(1, Math.ceil(Number(metadata.num_rows) / batchRows));
  const fit = bytesPerRow > 0 ? Math.floor(readBytes / (bytesPerRow * batchRows)) : total;
  return batchRows * Math.min(total, Math.max(1, fit));
}

/** The distinct columns a source reads. */
function selected(columns: ResolvedColumns): string[] {
  return [...new Set([columns.text, columns.label, columns.id].filter((c): c is string => c !== null))];
}

/** A Buffer view (no copy) of a byte value; the open-time type check guarantees bytes or null. */
function asBuffer(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  if (!(value instanceof Uint8Array)) throw new SourceError(`text value is a ${typeof value}, not bytes`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return { base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  return value;
}

/** Byte labels become strings so that "0"/"1"/"spam" can be judged by the decoder. */
function bytesToString(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  return value ?? null;
}

/** Ids of any type become strings; bytes are read as UTF-8. */
function idToString(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array || typeof value === 'string') return bytesToString(value) as string;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** Fails at open, not mid-replay, on column chunks hyparquet cannot read. */
function checkChunks(file: string, metadata: FileMetaData, names: string[]): void {
  metadata.row_groups.forEach((group, g) => {
    for (const name of names) {
      const chunk = group.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === name);
      if (!chunk?.meta_data) throw new SourceError(`${file}: row group ${g} has no chunk for column "${name}"`);
      if (chunk.file_path) throw new SourceError(`${file}: column "${name}" is stored in another file (${chunk.file_path})`);
      if (!CODECS.has(chunk.meta_data.codec)) {
        throw new SourceError(
          `${file}: column "${name}" is compressed with ${chunk.meta_data.codec}, which cannot be read here; use one of ${[...CODECS].join(', ')}`,
        );
      }
    }
  });
}

/** Bytes per read call: one fs read returns at most 2 GiB. */
const MAX_READ = 1 << 30;

/**
 * The file as hyparquet's AsyncBuffer, over one open handle.
 *
 * hyparquet fetches whole column chunks and every batch is its
 * own read, so consecutive batches inside one row group ask for the same byte ranges again.
 * The ranges of the previous read are kept and served from memory; those the current read
 * does not ask for again are dropped when it ends. hyparquet never writes into the buffers
 * it gets, so sharing them between reads is safe.
 */
class FileSlices implements AsyncBuffer {
  readonly byteLength: number;
  readonly #handle: FileHandle;
  #previous = new Map<string, Promise<ArrayBuffer>>();
  #current = new Map<string, Promise<ArrayBuffer>>();

  constructor(handle: FileHandle, byteLength: number) {
    this.#handle = handle;
    this.byteLength = byteLength;
  }

  /** Runs one hyparquet read with the ranges of the previous one at hand. */
  async reading<T>(read: () => Promise<T>): Promise<T> {
    this.#previous = this.#current;
    this.#current = new Map();
    try {
      return await read();
    } finally {
      this.#previous = new Map();
    }
  }

  slice(start: number, end = this.byteLength): Promise<ArrayBuffer> {
    const key = `${start}:${end}`;
    const bytes = this.#current.get(key) ?? this.#previous.get(key) ?? this.#read(start, end);
    this.#current.set(key, bytes);
    return bytes;
  }

  async close(): Promise<void> {
    this.#previous = new Map();
    this.#current = new Map();
    await this.#handle.close();
  }

  async #read(start: number, end: number): Promise<ArrayBuffer> {
    const bytes = new Uint8Array(Math.max(0, Math.min(end, this.byteLength) - start));
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await this.#handle.read(bytes, done, Math.min(bytes.length - done, MAX_READ), start + done);
      if (bytesRead === 0) throw new Error(`file ended at byte ${start + done}, expected ${this.byteLength} bytes`);
      done += bytesRead;
    }
    return bytes.buffer;
  }
}
