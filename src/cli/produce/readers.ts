/**
 * The `produce` command's input: a Parquet file's rows (as JSON values, or their raw text)
 * or a JSONL file's lines (byte for byte), read as batches of keyed messages, each with
 * how far into the input it reaches (for the progress display).
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, SourceError } from '../../errors.js';
import { ParquetSource } from '../../sources/parquet.js';
import { requireInputFile } from '../options.js';

export const ProduceFormats = { JSON: 'json', TEXT: 'text' } as const;
export type ProduceFormat = (typeof ProduceFormats)[keyof typeof ProduceFormats];

/** What reading the input takes from the command's options (see ProduceOptions). */
export interface InputOptions {
  file: string;
  format: ProduceFormat;
  columns: { text: string; label: string | null; id: string | null };
  /** Parquet rows read at once (the messages per produce request). */
  batchSize: number;
}

/** One message read from the input. */
export interface Item {
  key: Buffer | null;
  value: Buffer | null;
  /** "row 12" / "line 40", for errors. */
  ordinal: number;
  /** Input position after this message (rows or bytes). */
  done: number;
}

export interface InputCounters {
  rawTextRows: number;
  emptyLines: number;
}

export interface Input {
  kind: 'parquet' | 'jsonl';
  /** Rows or bytes. */
  total: number;
  items: (signal: AbortSignal) => AsyncIterable<Item[]>;
  close: () => Promise<void>;
}

/**
 * Opens the input by its extension (.parquet, .jsonl, .ndjson); nothing is read until
 * `items` is iterated. Counts rows sent as raw bytes and empty lines skipped in `counters`.
 */
export async function openInput(options: InputOptions, counters: InputCounters): Promise<Input> {
  const extension = path.extname(options.file).toLowerCase();
  const jsonl = extension === '.jsonl' || extension === '.ndjson';
  if (extension !== '.parquet' && !jsonl) {
    throw new ConfigError(options.file, `expected a .parquet, .jsonl or .ndjson file, got "${extension || 'no extension'}"`);
  }
  if (jsonl && options.format === ProduceFormats.TEXT) {
    throw new ConfigError('--format', 'text applies to Parquet input; JSONL lines are sent as they are');
  }
  // A missing file is a wrong argument (exit 2); one that cannot be read as its format, a failure (exit 1).
  await requireInputFile(options.file, '<file>');
  return jsonl ? openJsonLines(options.file, counters) : openParquet(options, counters);
}

async function openParquet(options: InputOptions, counters: InputCounters): Promise<Input> {
  const source = await ParquetSource.open({ path: options.file, columns: options.columns, batchRows: options.batchSize });
  const json = options.format === ProduceFormats.JSON;
  return {
    kind: 'parquet',
    total: source.size,
    close: () => source.close(),
    async *items(signal) {
      for await (const batch of source.batches(signal)) {
        const items = new Array<Item>(batch.length);
        for (let i = 0; i < batch.length; i++) {
          const record = batch[i]!;
          const text = asBuffer(record.text);
          let value = text;
          if (json) {
            if (text !== null && !isUtf8(text)) counters.rawTextRows++;
            else {
              const row = { id: record.id, text: text === null ? null : text.toString('utf8'), label: jsonLabel(record.label) };
              value = Buffer.from(JSON.stringify(row), 'utf8');
            }
          }
          const row = Number(record.position.offset);
          items[i] = { key: record.id === null ? null : Buffer.from(record.id, 'utf8'), value, ordinal: row, done: row + 1 };
        }
        yield items;
      }
    },
  };
}

async function openJsonLines(file: string, counters: InputCounters): Promise<Input> {
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new SourceError(`${file} is not a file`);
    size = info.size;
  } catch (err) {
    if (err instanceof SourceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SourceError(code === 'ENOENT' ? `${file} does not exist` : `cannot open ${file}: ${String(err)}`, { cause: err });
  }
  let stream: ReturnType<typeof createReadStream> | null = null;
  return {
    kind: 'jsonl',
    total: size,
    close: () => {
      stream?.destroy();
      return Promise.resolve();
    },
    async *items(signal) {
      stream = createReadStream(file, { highWaterMark: 1 << 20 });
      let line = 0;
      let position = 0; // bytes of the file consumed up to the current chunk
      let parts: Buffer[] = []; // a line that spans chunks
      const item = (bytes: Buffer, end: number): Item | null => {
        line++;
        // Strip a CR of a CRLF ending; the rest of the line is the message, byte for byte.
        const value = bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
        if (value.byteLength === 0) {
          counters.emptyLines++;
          return null;
        }
        return { key: keyOfLine(value), value, ordinal: line, done: end };
      };
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (signal.aborted) return;
        const items: Item[] = [];
        let start = 0;
        for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
          const piece = chunk.subarray(start, newline);
          const bytes = parts.length > 0 ? Buffer.concat([...parts, piece]) : piece;
          parts = [];
          const next = item(bytes, position + newline + 1);
          if (next) items.push(next);
          start = newline + 1;
        }
        if (start < chunk.byteLength) parts.push(chunk.subarray(start));
        position += chunk.byteLength;
        yield items;
      }
      if (parts.length > 0) {
        const last = item(Buffer.concat(parts), position);
        if (last) yield [last];
      }
    },
  };
}

/** The `id` of a JSONL line that parses as an object, as the key; else no key. */
function keyOfLine(line: Buffer): Buffer | null {
  if (line[0] !== 0x7b || !isUtf8(line)) return null; // not "{…": no object, no id
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.toString('utf8'));
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || !Object.hasOwn(parsed, 'id')) return null;
  const id = (parsed as { id: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? Buffer.from(String(id), 'utf8') : null;
}

/** Labels as JSON: int64 labels arrive as bigint, which JSON.stringify refuses. */
function jsonLabel(label: unknown): unknown {
  if (typeof label === 'bigint') return Number.isSafeInteger(Number(label)) ? Number(label) : label.toString();
  if (label instanceof Uint8Array) return Buffer.from(label.buffer, label.byteOffset, label.byteLength).toString('utf8');
  return label ?? null;
}

function asBuffer(text: Uint8Array | string | null): Buffer | null {
  if (text === null) return null;
  if (typeof text === 'string') return Buffer.from(text, 'utf8');
  return Buffer.isBuffer(text) ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
}
