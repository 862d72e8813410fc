import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { SinkError } from '../errors.js';
import type { DeadLetter } from '../message.js';
import { makeDirectoryDurably } from './parquet.js';
import type { DeadLetterSink } from './sink.js';

/** The replay dead-letter file's name beside a pipeline's output (the report finds it by this name). */
export const DEAD_LETTER_FILE = 'dead-letters.jsonl';

export interface DeadLetterFileSinkOptions {
  /** The JSON-lines file; created with its folders on the first letter, appended to after. */
  path: string;
}

/** One line of the dead-letter file. */
export interface DeadLetterLine {
  reason: string;
  detail: string;
  source: string;
  partition: number;
  /** A string: offsets are int64 and JSON numbers are not exact beyond 2^53. */
  offset: string;
  timestamp: number | null;
  original_base64: string;
}

/**
 * The replay dead-letter sink: one JSON object per line, with the original bytes as
 * base64 so that any payload (invalid UTF-8 included) survives. Each `write` is one
 * append (a whole line per letter, so a crash cannot interleave records); `close`
 * fsyncs. Nothing is created until the first letter arrives.
 */
export class DeadLetterFileSink implements DeadLetterSink {
  readonly path: string;
  #handle: FileHandle | null = null;
  #written = 0;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: DeadLetterFileSinkOptions) {
    if (!options.path) throw new SinkError('dead-letter path must not be empty', { canRetry: false });
    this.path = options.path;
  }

  /** Letters written so far. */
  get written(): number {
    return this.#written;
  }

  write(letters: readonly DeadLetter[]): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw new SinkError(`dead-letter file ${this.path} is closed`, { canRetry: false });
      if (letters.length === 0) return;
      const text = letters.map((l) => `${JSON.stringify(toLine(l))}\n`).join('');
      try {
        if (!this.#handle) {
          await makeDirectoryDurably(path.dirname(path.resolve(this.path)));
          this.#handle = await open(this.path, 'a');
        }
        await this.#handle.appendFile(text, 'utf8');
      } catch (err) {
        throw new SinkError(`writing dead letters to ${this.path} failed: ${String(err)}`, { cause: err });
      }
      this.#written += letters.length;
    });
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#closed = true;
      const handle = this.#handle;
      this.#handle = null;
      if (!handle) return;
      try {
        await handle.sync();
      } catch (err) {
        throw new SinkError(`flushing dead letters to ${this.path} failed: ${String(err)}`, { cause: err });
      } finally {
        await handle.close();
      }
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

export function toLine(letter: DeadLetter): DeadLetterLine {
  const { position } = letter;
  return {
    reason: letter.reason,
    detail: letter.detail,
    source: position.source,
    partition: position.partition,
    offset: position.offset.toString(),
    timestamp: position.timestampMs,
    original_base64: Buffer.from(letter.original.buffer, letter.original.byteOffset, letter.original.byteLength).toString(
      'base64',
    ),
  };
}

/**
 * The highest offset of (source, partition) in a dead-letter file, or null when it has
 * none (or there is no file). A resumed replay starts after it, so rows dead-lettered
 * before are not dead-lettered twice. Lines that are not letters are skipped.
 */
export async function lastDeadLetterOffset(file: string, source: string, partition: number): Promise<bigint | null> {
  let last: bigint | null = null;
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      let letter: Partial<DeadLetterLine>;
      try {
        letter = JSON.parse(line) as Partial<DeadLetterLine>;
      } catch {
        continue;
      }
      if (letter.source !== source || letter.partition !== partition || typeof letter.offset !== 'string' || !/^\d+$/.test(letter.offset)) continue;
      const offset = BigInt(letter.offset);
      if (last === null || offset > last) last = offset;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  } finally {
    stream.destroy();
  }
  return last;
}
