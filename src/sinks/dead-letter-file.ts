import { createReadStream } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { SinkError } from '../errors.js';
import type { DeadLetter } from '../message.js';
import { fsyncDirectory, makeDirectoryDurably } from '../fs/durable.js';
import type { DeadLetterSink } from './sink.js';

/**
 * The name of the one dead-letter file every replay of a pipeline shared before they had
 * one per input (runtime/run-state.ts); splitDeadLetters moves its letters out.
 */
export const LEGACY_DEAD_LETTER_FILE = 'dead-letters.jsonl';

/** The folder of a pipeline's output folder that holds a replay's dead letters, a file per input. */
export const DEAD_LETTER_FOLDER = '_dead-letters';

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
  for await (const { letter } of readLetters(file)) {
    if (letter?.source !== source || letter.partition !== partition || typeof letter.offset !== 'string' || !/^\d+$/.test(letter.offset)) continue;
    const offset = BigInt(letter.offset);
    if (last === null || offset > last) last = offset;
  }
  return last;
}

/**
 * Removes the letters of `source` from `file`, keeping every other line (a fresh replay of
 * one input must not delete another's). Rewrites through a temporary file and a rename, so
 * a crash leaves the old file or the new one; deletes the file when nothing is left.
 */
export async function dropDeadLettersOf(file: string, source: string): Promise<void> {
  if ((await stat(file).catch(() => null)) === null) return;
  const temp = `${file}.${process.pid}.tmp`;
  const out = await open(temp, 'w');
  let kept = 0;
  try {
    for await (const { line, letter } of readLetters(file)) {
      if (letter?.source === source) continue;
      await out.appendFile(`${line}\n`, 'utf8');
      kept++;
    }
    await out.sync();
  } finally {
    await out.close();
  }
  if (kept === 0) {
    await unlink(temp);
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  } else {
    await rename(temp, file);
  }
  await fsyncDirectory(path.dirname(path.resolve(file)));
}

/**
 * Moves every line of `file` to the file `destination(source)` names (appended; null for
 * a line that is not a letter), then deletes `file`. Returns the files written to.
 */
export async function splitDeadLetters(file: string, destination: (source: string | null) => string): Promise<string[]> {
  const handles = new Map<string, FileHandle>();
  try {
    for await (const { line, letter } of readLetters(file)) {
      const to = destination(typeof letter?.source === 'string' ? letter.source : null);
      let handle = handles.get(to);
      if (handle === undefined) {
        await makeDirectoryDurably(path.dirname(path.resolve(to)));
        handle = await open(to, 'a');
        handles.set(to, handle);
      }
      await handle.appendFile(`${line}\n`, 'utf8');
    }
    for (const handle of handles.values()) await handle.sync();
    for (const dir of new Set([...handles.keys()].map((to) => path.dirname(path.resolve(to))))) await fsyncDirectory(dir);
  } finally {
    for (const handle of handles.values()) await handle.close();
  }
  await unlink(file);
  await fsyncDirectory(path.dirname(path.resolve(file)));
  return [...handles.keys()];
}

/** The lines of a dead-letter file with their parsed letter (null: not JSON); nothing when there is no file. */
async function* readLetters(file: string): AsyncGenerator<{ line: string; letter: Partial<DeadLetterLine> | null }> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line === '') continue;
      let letter: Partial<DeadLetterLine> | null;
      try {
        letter = JSON.parse(line) as Partial<DeadLetterLine>;
      } catch {
        letter = null;
      }
      yield { line, letter };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  } finally {
    stream.destroy();
  }
}
