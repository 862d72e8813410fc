/**
 * `npm run bench:averaging`: what federated averaging costs in accuracy (issue 7). The
 * bundled corpus, in `textstream replay`'s order, cleaned and tokenized as replay does,
 * learnt prequentially by one trainer, then by N trainers that split the records as
 * Kafka partitions would and average their weights every so many trained rows
 * (src/model/averaging.ts). One process, no Kafka, the product's stages and model; the
 * one-trainer run is checked against a real replay of the same pipeline.
 *
 *   npm run bench:averaging -- [--trainers 2] [--average-every 256,1024,4096]
 *     [--batches split,whole] [--server-lr 1,2] [--server-momentum 0,0.9] [--json]
 *
 * Progress goes to stderr; the table (or, with --json, the result object) to stdout.
 * Figures are printed, never asserted: the run exits 0 whatever they are.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseOrExit, positiveInteger, positiveIntegers } from './options.js';
import { pino } from 'pino';
import { loadPipeline } from '../src/config/load.js';
import { Backends, selectBackend, type RequestedBackend } from '../src/model/backend.js';
import { prepareStream } from './averaging/stream.js';
import { replayCheck, type ReplayCheck } from './averaging/replay-check.js';
import { runAveraging, type AveragingRun } from './averaging/simulate.js';
import { renderAveragingTable, type AveragingBenchResult } from './averaging/table.js';
import { reasonOf } from './result.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function numbers(value: string, what: string, ok: (n: number) => boolean): number[] {
  return [
    ...new Set(
      value.split(',').map((v) => {
        const n = Number(v.trim());
        if (v.trim() === '' || !ok(n)) throw new InvalidArgumentError(`expected ${what}, got "${v}"`);
        return n;
      }),
    ),
  ];
}

const DEFAULT_AVERAGE_EVERY = 1024;

const program = new Command('npm run bench:averaging --')
  .description(
    'Prequential accuracy of one trainer against N federated-averaging trainers on the bundled corpus, ' +
      'in replay order, in one process (no Kafka).',
  )
  .option('--trainers <n[,n…]>', 'trainer counts to compare with one trainer (comma-separated)', positiveIntegers, [2])
  .option(
    '--average-every <rows[,rows…]>',
    'average after this many rows trained by all trainers together (comma-separated: one run each)',
    positiveIntegers,
    [DEFAULT_AVERAGE_EVERY],
  )
  .option(
    '--batches <split|whole[,…]>',
    "split: each trainer takes its share of one trainer's record batch and optimiser step, as the product's averaging trainers do; " +
      "whole: one trainer's sizes each (comma-separated: one run each)",
    (v: string) =>
      v.split(',').map((b) => {
        if (b !== 'split' && b !== 'whole') throw new InvalidArgumentError(`expected split or whole, got "${b}"`);
        return b === 'split';
      }),
    [true, false],
  )
  .option(
    '--server-lr <eta[,eta…]>',
    'server learning rate η of the average: base + η·(mean − base); 1 is plain FedAvg (comma-separated: one run each)',
    (v: string) => numbers(v, 'numbers > 0', (n) => Number.isFinite(n) && n > 0),
    [1],
  )
  .option(
    '--server-momentum <beta[,beta…]>',
    'server momentum β (FedAvgM) on the round delta; 0 is none (comma-separated: one run each)',
    (v: string) => numbers(v, 'numbers in [0, 1)', (n) => n >= 0 && n < 1),
    [0],
  )
  .option('--partitions <n>', 'partitions of the simulated topic (record i goes to partition i mod n)', positiveInteger, 4)
  .option('--rows <n>', 'first rows of the corpus only (default: all 6 046)', positiveInteger)
  .option('--pipeline <file>', 'pipeline definition (network, seed, batch, learning rate, cleaning, vocabulary)', path.join(repo, 'pipelines', 'spamassassin.yaml'))
  .addOption(new Option('--backend <name>', "tfjs backend (default: the pipeline's model.backend)").choices(Object.values(Backends)))
  .option('--no-replay', 'skip the check against a real `textstream replay` of the pipeline')
  .option('--json', 'print the result object as JSON instead of the table', false)
  .addHelpText(
    'after',
    `
Examples:
  $ npm run bench:averaging                                      1 trainer vs 2 (split and whole batches), averaging every ${DEFAULT_AVERAGE_EVERY} rows
  $ npm run bench:averaging -- --average-every 256,1024,4096     one 2-trainer run per period and batching
  $ npm run bench:averaging -- --batches split                   only what the product's averaging trainers do
  $ npm run bench:averaging -- --trainers 2,4 --rows 2000 --no-replay
  $ npm run bench:averaging -- --server-lr 1,1.5,2 --server-momentum 0,0.9   one run per η × β

Each configuration takes ≈ 4–15 s on 2 cores (wasm); the one-trainer run and the replay check run once.`,
  )
  .allowExcessArguments(false)
  .exitOverride();

parseOrExit(program);
const o = program.opts<{
  trainers: number[];
  averageEvery: number[];
  batches: boolean[];
  serverLr: number[];
  serverMomentum: number[];
  partitions: number;
  rows?: number;
  pipeline: string;
  backend?: RequestedBackend;
  replay: boolean;
  json: boolean;
}>();
const tooMany = o.trainers.find((n) => n > o.partitions);
if (tooMany !== undefined) {
  process.stderr.write(`bench:averaging: --trainers ${tooMany} is more than --partitions ${o.partitions}: a trainer would get no records\n`);
  process.exit(2);
}

const started = performance.now();
const log = (line: string): void => void process.stderr.write(`averaging [${((performance.now() - started) / 1000).toFixed(0)} s]: ${line}\n`);
// The product's warnings (a rejected step, a stock LSTM) go to stderr, away from --json.
const logger = pino({ level: 'warn' }, pino.destination(2));

const loaded = await loadPipeline(o.pipeline);
const config = { ...loaded, model: { ...loaded.model, backend: o.backend ?? loaded.model.backend } };
const backend = await selectBackend(config.model.backend);
log(`tfjs backend ${backend.name} (${backend.reason})`);

log('reading, cleaning and tokenizing the corpus');
const stream = await prepareStream({ config, repo, rows: o.rows ?? null, partitions: o.partitions, logger });
log(`${stream.messages.length} messages in ${stream.seconds.toFixed(1)} s`);

const rows = o.rows ?? null;
let replay: ReplayCheck | string = 'not asked for (--no-replay)';
if (o.replay) {
  log('replay check: textstream replay of the same pipeline');
  try {
    replay = await replayCheck(config, stream.input, rows, logger);
  } catch (err) {
    replay = reasonOf(err);
  }
}

// The first model run in a process is 1–2 s slower than the next (wasm heap growth, first
// kernel calls): an untimed, unreported warm-up, averaging included, keeps it out of the table.
log('warm-up');
const warmUp = { trainers: Math.min(2, o.partitions), rows: 4 * config.batch.maxRows };
await runAveraging({
  config,
  messages: stream.messages.slice(0, warmUp.rows),
  partitions: o.partitions,
  trainers: warmUp.trainers,
  splitBatch: true,
  averageEvery: 2 * config.batch.maxRows,
  serverLearningRate: 1,
  serverMomentum: 0,
  logger,
});

const configurations = [
  { trainers: 1, splitBatch: false, averageEvery: 0, serverLearningRate: 1, serverMomentum: 0 },
  ...o.trainers
    .filter((n) => n > 1)
    .flatMap((trainers) =>
      [...new Set(o.batches)].flatMap((splitBatch) =>
        o.averageEvery.flatMap((averageEvery) =>
          o.serverLr.flatMap((serverLearningRate) =>
            o.serverMomentum.map((serverMomentum) => ({ trainers, splitBatch, averageEvery, serverLearningRate, serverMomentum })),
          ),
        ),
      ),
    ),
];
const runs: AveragingRun[] = [];
for (const c of configurations) {
  log(
    c.trainers === 1
      ? '1 trainer'
      : `${c.trainers} trainers, ${c.splitBatch ? 'split' : 'whole'} batches, averaging every ${c.averageEvery} trained rows, server lr ${c.serverLearningRate}, server momentum ${c.serverMomentum}`,
  );
  const run = await runAveraging({ config, messages: stream.messages, partitions: o.partitions, logger, ...c });
  log(`  accuracy ${((run.evaluation.accuracy ?? Number.NaN) * 100).toFixed(2)} % in ${run.seconds.toFixed(1)} s`);
  runs.push(run);
}

const result: AveragingBenchResult = {
  pipeline: path.relative(process.cwd(), o.pipeline) || o.pipeline,
  input: path.relative(process.cwd(), stream.input) || stream.input,
  rows: stream.messages.length,
  dropped: stream.dropped,
  bootstrapRows: stream.bootstrapRows,
  partitions: o.partitions,
  batchRows: config.batch.maxRows,
  trainBatchSize: config.model.trainBatchSize,
  learningRate: config.model.learningRate,
  seed: config.model.seed,
  backend,
  lstm: runs[0]!.lstm,
  prepareSeconds: stream.seconds,
  replay,
  runs,
};
process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : renderAveragingTable(result));
