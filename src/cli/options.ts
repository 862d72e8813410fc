import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { ConfigError, SinkError } from '../errors.js';

/** Commander argument parser for a non-negative integer option. */
export function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  return n;
}

/** Commander argument parser for a positive number of seconds (fractions allowed). */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number of seconds > 0, got "${value}"`);
  return n;
}

/**
 * An input file named on the command line (or in the pipeline) must exist and be a file:
 * anything else is the user pointing at the wrong place, a usage error (exit 2) naming
 * `setting` (`<file>`, `--input`, `source.path`), not a failure of the run. `hint` follows
 * "file not found" (how to make the file).
 */
export async function requireInputFile(file: string, setting: string, options: { hint?: string } = {}): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(file)).isFile();
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new ConfigError(setting, `cannot read ${file} (${(cause as Error).message})`, { cause });
    throw new ConfigError(setting, `file not found: ${file}${options.hint === undefined ? '' : `; ${options.hint}`}`, { cause });
  }
  if (!isFile) throw new ConfigError(setting, `${file} is not a file`);
}

/**
 * Writes `text` to `file` as a whole: to a temporary name beside it, then renamed, so a
 * reader (an editor, a browser, a pipeline) never sees half a file. A missing folder is
 * created. A failure is a SinkError "cannot write <what>: <reason>".
 */
export async function writeTextFileAtomically(file: string, text: string, what: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFile(temporary, text, 'utf8');
    await rename(temporary, file);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new SinkError(`cannot write ${what}: ${(cause as Error).message}`, { cause, canRetry: false });
  }
}
