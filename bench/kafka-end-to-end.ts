/**
 * `npm run bench:kafka`: one Kafka worker of role `all` and one scorer (role `score`) on
 * the bundled corpus against the local broker, per clean.threads setting, each timed from
 * its first record to its last row scored (start-up and the last commit apart), with its
 * CPU share and an exactly-once check of its output. The measurement lives in
 * bench/kafka-worker.ts, shared with `npm run bench`.
 *
 *   bash scripts/kafka.sh start
 *   npm run bench:kafka -- [--reps 3] [--repeat 1] [--limit 6046] [--clean-threads 0,1] [--json] [--cpu-prof dir]
 *
 * Progress goes to stderr; the table (or, with --json, every run) to stdout. Exit code 1
 * when a run failed or its output was not exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';
import { selectBackend } from '../src/model/backend.js';
import { ensureBroker } from './kafka.js';
import { exactlyOnce } from './kafka-run.js';
import { measureKafkaWorkers } from './kafka-worker.js';
import { readMachine } from './machine.js';
import { DEFAULT_CLEAN_THREADS, nonNegativeIntegers, parseOrExit, positiveInteger } from './options.js';
import { renderWorkerTable } from './report.js';

const program = new Command('npm run bench:kafka --')
  .description(
    'One `textstream run --role all` worker and one `--role score` scorer on the bundled corpus in a fresh 4-partition topic on the local broker ' +
      '(127.0.0.1:9092; `bash scripts/kafka.sh start`): messages/s from the first record to the last row scored, start-up apart, CPU share, exactly-once check.',
  )
  .option('--reps <n>', 'runs of each role and setting (alternated); the table prints the median', positiveInteger, 3)
  .option('--repeat <k>', 'copies of the corpus in the topic (distinct keys): a longer steady window for a fast scorer', positiveInteger, 1)
  .option('--limit <n>', 'corpus rows per copy (default: all 6 046)', positiveInteger)
  .option('--clean-threads <n[,n…]>', 'clean.threads settings (TEXTSTREAM_CLEAN_THREADS, 0 = main thread)', nonNegativeIntegers, nonNegativeIntegers(DEFAULT_CLEAN_THREADS))
  .option('--json', 'print every run as JSON instead of the table', false)
  .option('--cpu-prof <dir>', 'each worker writes a V8 CPU profile (node --cpu-prof) into this folder when it stops; its figures are then slower')
  .allowExcessArguments(false)
  .exitOverride();
parseOrExit(program);
const o = program.opts<{ reps: number; repeat: number; limit?: number; cleanThreads: number[]; json: boolean; cpuProf?: string }>();
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const began = performance.now();
const log = (line: string): void => void process.stderr.write(`bench:kafka [${((performance.now() - began) / 1000).toFixed(0)} s]: ${line}\n`);
const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-'));
try {
  const dataset = path.join(dir, 'spamassassin.parquet');
  await buildSpamAssassinDataset({ out: dataset, seed: 42 });
  // The workers' model.backend 'auto' resolves the same way in each of them.
  const backend = await selectBackend('auto');
  const result = await measureKafkaWorkers({
    repo,
    brokers: [await ensureBroker(repo)],
    dataset,
    limit: o.limit ?? null,
    repeat: o.repeat,
    reps: o.reps,
    backend: 'auto',
    cleanThreads: o.cleanThreads,
    runTimeoutMs: 30 * 60_000,
    cpuProfileDir: o.cpuProf === undefined ? null : path.resolve(o.cpuProf),
    log,
  });
  const machine = readMachine();
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ machine, backend, ...result }, null, 2)}\n`);
  } else {
    const lines = [
      '# textstream bench:kafka',
      '',
      `- ${result.messages} messages (${o.repeat} cop${o.repeat === 1 ? 'y' : 'ies'} of the corpus), produced in ${result.produceSeconds.toFixed(1)} s; ` +
        `median of ${o.reps}; tfjs backend ${backend.name}; whole run ${((performance.now() - began) / 1000).toFixed(0)} s`,
      `- machine: ${machine.cores} cores, ${machine.cpuModel}, node ${machine.node}`,
      '',
      ...renderWorkerTable(result.rows, machine.cores),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  if (result.failures.length > 0 || result.runs.some((r) => r.exitCode !== 0 || !exactlyOnce(r.verification))) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
