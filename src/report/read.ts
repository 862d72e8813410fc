import { createReadStream } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ConfigError, SourceError } from '../errors.js';
import type { ReportRow } from './aggregate.js';
import { DEAD_LETTER_FOLDER, LEGACY_DEAD_LETTER_FILE } from '../sinks/dead-letter-file.js';

/** Columns the report needs; `id` and `text` are never read. */
const COLUMNS = ['score', 'predicted', 'label', 'processed_at', 'source', 'partition', 'offset'] as const;

/** Rows per read: bounds memory on files with huge row groups. */
const READ_ROWS = 65_536;

export interface OutputFiles {
  /** Parquet files with the pipeline name taken from their path, in path order. */
  parquet: Array<{ file: string; pipeline: string }>;
  deadLetters: string[];
}

/**
 * Every published Parquet file and dead-letter file under `dir`. Hidden entries are
 * skipped (the sink writes unfinished files under a hidden temporary name), and so are
 * `_` folders but `_dead-letters`: they hold state, such as checkpoints and quarantine.
 */
export async function findOutputFiles(dir: string): Promise<OutputFiles> {
  const info = await stat(dir).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError('output dir', code === 'ENOENT' ? `${dir} does not exist` : `cannot read ${dir}: ${String(err)}`, { cause: err });
  });
  if (!info.isDirectory()) throw new ConfigError('output dir', `${dir} is not a directory`);
  const found: OutputFiles = { parquet: [], deadLetters: [] };
  const walk = async (at: string): Promise<void> => {
    const entries = (await readdir(at, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('_') || entry.name === DEAD_LETTER_FOLDER) await walk(full);
      } else if (entry.isFile() && entry.name.endsWith('.parquet')) found.parquet.push({ file: full, pipeline: pipelineOf(dir, full) });
      else if (entry.isFile() && (entry.name === LEGACY_DEAD_LETTER_FILE || (path.basename(at) === DEAD_LETTER_FOLDER && entry.name.endsWith('.jsonl')))) {
        found.deadLetters.push(full);
      }
    }
  };
  await walk(dir);
  return found;
}

/**
 * The pipeline of `<dir>/<pipeline>/input=<source>/partition-<p>/<range>.parquet` (or of the
 * legacy `<key>=<source>/partition=<p>/`): the path segments before the source folder;
 * when `dir` is the pipeline's own folder, its base name.
 */
export function pipelineOf(dir: string, file: string): string {
  const segments = path.relative(dir, path.dirname(file)).split(path.sep).filter((s) => s !== '');
  const before = segments.slice(0, -2);
  return before.length > 0 ? before.join('/') : path.basename(path.resolve(dir));
}

/**
 * Reads one output file in slices of at most READ_ROWS rows (never crossing a row group),
 * handing each slice to `onRows`. Fails with a SourceError naming the file and the
 * missing column when it is not a textstream output file.
 */
export async function readOutputFile(file: string, onRows: (rows: ReportRow[]) => void): Promise<void> {
  await readOutputColumns(file, COLUMNS, (objects) => onRows(objects.map(toRow)));
}

/**
 * The reading loop behind `report` and `inspect`: `columns` of one output file, in slices
 * of at most READ_ROWS rows that never cross a row group (memory stays bounded on huge
 * files). Returns the file's footer. Fails with a SourceError naming the file when it is
 * not Parquet or lacks one of the columns.
 */
export async function readOutputColumns(
  file: string,
  columns: readonly string[],
  onObjects: (objects: Record<string, unknown>[]) => void,
): Promise<FileMetaData> {
  const buffer = await FileBuffer.open(file);
  try {
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(buffer, { geoparquet: false });
    } catch (err) {
      throw new SourceError(`${file} is not a Parquet file (${String(err)})`, { cause: err });
    }
    const names = new Set(metadata.schema.slice(1).map((s) => s.name));
    const missing = columns.filter((c) => !names.has(c));
    if (missing.length > 0) {
      throw new SourceError(`${file} is not a textstream output file: no column ${missing.map((c) => `"${c}"`).join(', ')}`);
    }
    let start = 0;
    for (const group of metadata.row_groups) {
      const groupEnd = start + Number(group.num_rows);
      for (let from = start; from < groupEnd; from += READ_ROWS) {
        const to = Math.min(groupEnd, from + READ_ROWS);
        const objects = await parquetReadObjects({
          file: buffer,
          metadata,
          compressors,
          columns: [...columns],
          rowStart: from,
          rowEnd: to,
          useOffsetIndex: false, // parquetjs-lite writes wrong page offsets (see sources/parquet.ts)
        }).catch((err: unknown) => {
          throw new SourceError(`${file}: reading rows ${from} to ${to - 1} failed: ${String(err)}`, { cause: err });
        });
        onObjects(objects);
      }
      start = groupEnd;
    }
    return metadata;
  } finally {
    await buffer.close();
  }
}

function toRow(o: Record<string, unknown>): ReportRow {
  const processed = o.processed_at;
  return {
    score: typeof o.score === 'number' ? o.score : NaN,
    predicted: Number(o.predicted),
    label: typeof o.label === 'number' ? o.label : null,
    processedAtMs: processed instanceof Date ? processed.getTime() : Number(processed),
    source: typeof o.source === 'string' ? o.source : String(o.source),
    partition: Number(o.partition),
    offset: typeof o.offset === 'bigint' ? o.offset : BigInt(Number(o.offset)),
  };
}

/**
 * Counts a dead-letter file's lines by `reason`, streaming it line by line (a letter holds
 * the original message, so these files can be large).
 */
export async function countDeadLetters(file: string): Promise<{ byReason: Map<string, number>; unreadable: number }> {
  const byReason = new Map<string, number>();
  let unreadable = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let reason: unknown;
      try {
        reason = (JSON.parse(line) as { reason?: unknown } | null)?.reason;
      } catch {
        reason = undefined;
      }
      if (typeof reason === 'string' && reason !== '') byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
      else unreadable++;
    }
  } catch (err) {
    throw new SourceError(`cannot read dead letters ${file}: ${String(err)}`, { cause: err });
  }
  return { byReason, unreadable };
}

/** hyparquet's AsyncBuffer over one open file handle (hyparquet's own helper opens a new stream for every slice). */
class FileBuffer implements AsyncBuffer {
  readonly byteLength: number;
  readonly #handle: FileHandle;

  private constructor(handle: FileHandle, byteLength: number) {
    this.#handle = handle;
    this.byteLength = byteLength;
  }

  static async open(file: string): Promise<FileBuffer> {
    const handle = await open(file, 'r').catch((err: unknown) => {
      throw new SourceError(`cannot open ${file}: ${String(err)}`, { cause: err });
    });
    const { size } = await handle.stat();
    return new FileBuffer(handle, size);
  }

  async slice(start: number, end = this.byteLength): Promise<ArrayBuffer> {
    const bytes = new Uint8Array(Math.max(0, Math.min(end, this.byteLength) - start));
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await this.#handle.read(bytes, done, bytes.length - done, start + done);
      if (bytesRead === 0) throw new Error(`file ended at byte ${start + done}, expected ${this.byteLength} bytes`);
      done += bytesRead;
    }
    return bytes.buffer;
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}
