/** The `npm run bench` command line. */
import os from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Backends, type RequestedBackend } from '../src/model/backend.js';

export interface BenchOptions {
  /** Corpus rows to use; null: all of them. */
  rows: number | null;
  reps: number;
  /** Length of one timed repetition of each model measurement. */
  seconds: number;
  kafka: boolean;
  keras: boolean;
  json: boolean;
  backend: RequestedBackend;
  /** clean.threads settings for the whole-worker rows (0 = main thread). */
  cleanThreads: number[];
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

/** A comma-separated list of whole numbers ≥ 0, without repeats. */
export function nonNegativeIntegers(value: string): number[] {
  return [
    ...new Set(
      value.split(',').map((v) => {
        const n = Number(v.trim());
        if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected whole numbers ≥ 0, got "${value}"`);
        return n;
      }),
    ),
  ];
}

/** The clean.threads settings the whole-worker rows run by default: the main thread, and the pipeline's default pool (one thread per core but the main thread's). */
export const DEFAULT_CLEAN_THREADS = `0,${Math.max(1, os.availableParallelism() - 1)}`;

/** A comma-separated list of whole numbers ≥ 1, without repeats. */
export function positiveIntegers(value: string): number[] {
  return [...new Set(value.split(',').map((v) => positiveInteger(v.trim())))];
}

/**
 * Parses process.argv for a bench command line: --help exits 0, a bad flag exits 2 after
 * commander's message (the textstream CLI's usage code). The program needs exitOverride().
 */
export function parseOrExit(program: Command): void {
  try {
    program.parse(process.argv);
  } catch (err) {
    process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : 2);
  }
}

/**
 * Parses argv (without node and the script). --help exits 0; a bad flag exits 2 after
 * commander's message, the usage exit code of the textstream CLI.
 */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const program = new Command('npm run bench --')
    .description(
      'Throughput of every pipeline stage, the model per LSTM implementation and tfjs backend, ' +
        'end-to-end replay and Kafka, against Keras on the same data, in one run.',
    )
    .option('--rows <n>', 'corpus rows to use (default: all 6 046)', positiveInteger)
    .option('--reps <n>', 'timed repetitions per figure; the median is printed', positiveInteger, 3)
    .option('--seconds <s>', 'length of one repetition of each model measurement', positiveNumber, 5)
    .option('--no-kafka', 'skip the Kafka end-to-end row (it needs the local broker)')
    .option('--no-keras', 'skip the Keras reference (it needs the Python venv)')
    .option('--json', 'print the result object as JSON instead of the table', false)
    .option(
      '--clean-threads <n[,n…]>',
      'clean.threads settings (TEXTSTREAM_CLEAN_THREADS, 0 = main thread) for the whole-worker rows: replay and Kafka run once per setting',
      nonNegativeIntegers,
      nonNegativeIntegers(DEFAULT_CLEAN_THREADS),
    )
    .addOption(
      new Option('--backend <name>', 'tfjs backend for our figures (as model.backend)').choices(Object.values(Backends)).default('auto'),
    )
    .allowExcessArguments(false)
    .exitOverride();
  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  const o = program.opts<{ rows?: number; reps: number; seconds: number; kafka: boolean; keras: boolean; json: boolean; backend: RequestedBackend; cleanThreads: number[] }>();
  return { rows: o.rows ?? null, reps: o.reps, seconds: o.seconds, kafka: o.kafka, keras: o.keras, json: o.json, backend: o.backend, cleanThreads: o.cleanThreads };
}
