/**
 * `npm run bench`: one run, one data set, one table. Every pipeline stage, the model per
 * LSTM implementation, end-to-end replay and Kafka, the Keras reference on the same
 * texts and token sequences, the ratios between them, each model figure as a fraction of
 * the machine's compute limit, and the tfjs backends side by side.
 *
 *   npm run bench -- [--rows N] [--reps 3] [--seconds 5] [--no-kafka] [--no-keras] [--json] [--backend auto] [--clean-threads 0,1]
 *
 * Progress goes to stderr; the table (or, with --json, the result object) to stdout.
 * A part that cannot run here (no broker, no venv, no tfjs-node) is printed as
 * "skipped: <reason>" and the run still exits 0.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../src/config/load.js';
import type { TokenizedMessage } from '../src/message.js';
import { selectBackend } from '../src/model/backend.js';
import { pipelineNetwork, resolveNetworkConfig } from '../src/model/network.js';
import { measureBackends } from './backends.js';
import { loadCorpus } from './corpus.js';
import { CLEAN_THREADS_MISSING, cleanThreadsEnv, cleanThreadsSupported } from './clean-threads.js';
import { ensureBroker } from './kafka.js';
import { measureKafkaWorkers } from './kafka-worker.js';
import { KerasRows, runKerasReference, type KerasResult } from './keras.js';
import { lstmVariants, resolvedLstm } from './lstm.js';
import { computeLimit, readMachine } from './machine.js';
import { measureModel, SCORE_BATCHES } from './model.js';
import { parseBenchOptions } from './options.js';
import { measureReplays } from './replay-e2e.js';
import { makeLimitRows, makeRatios, renderTable, type BenchResult } from './report.js';
import { reasonOf, skippedRow, type Row } from './result.js';
import { measuredWorkerRow, skippedWorkerRow, Workloads, type WorkerRow } from './worker-rows.js';
import { measureBatchBuild, measureClean, measureCleanPool, measureParquetWrite, measureTokenize, measureTokenizerFit, pipelineBatches } from './stages.js';

const started = performance.now();
/** Copies of the corpus each Kafka run consumes (see kafkaRows). */
const KAFKA_CORPUS_COPIES = 4;
const opts = parseBenchOptions(process.argv.slice(2));
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (line: string): void => void process.stderr.write(`bench [${((performance.now() - started) / 1000).toFixed(0)} s]: ${line}\n`);

const pipelineFile = path.join(repo, 'pipelines', 'spamassassin.yaml');
const config = await loadPipeline(pipelineFile);
if (config.source.type !== 'parquet') throw new Error('pipelines/spamassassin.yaml must replay a parquet source');
const input = path.resolve(repo, config.source.path);
const backend = await selectBackend(opts.backend);
log(`tfjs backend ${backend.name} (${backend.reason})`);

log(`reading ${input}`);
const corpus = await loadCorpus({ path: input, seed: config.source.datasetSeed, rows: opts.rows, maxMessageBytes: config.decode.maxMessageBytes });
const { messages } = corpus;
const reps = { reps: opts.reps };
const stages: Row[] = [];
const worker: WorkerRow[] = [];
const cleanPool = cleanThreadsSupported();

log(`clean: ${messages.length} rows`);
const cleaned = await measureClean(messages, config, reps);
stages.push(cleaned.row);
// The clean stage alone: on this thread, then on a pool of 1 … all cores' threads.
worker.push(measuredWorkerRow(Workloads.CLEAN, 0, 'rows/s', cleaned.measures, { note: `${cleaned.row.note ?? ''}; the stage alone, as in "Stages"` }));
for (let threads = 1; threads <= os.availableParallelism(); threads++) {
  log(`clean on a pool of ${threads} thread(s)`);
  worker.push(
    cleanPool
      ? measuredWorkerRow(Workloads.CLEAN, threads, 'rows/s', await measureCleanPool(messages, config, threads, reps), { note: 'the stage alone, every text submitted at once' })
      : skippedWorkerRow(Workloads.CLEAN, threads, 'rows/s', CLEAN_THREADS_MISSING),
  );
}
log('tokenizer fit');
const fitted = await measureTokenizerFit(cleaned.texts, config, reps);
stages.push(fitted.row);
log('tokenize');
const tokenized = await measureTokenize(cleaned.texts, fitted.tokenizer, reps);
stages.push(tokenized.row);
const maxLen = config.tokenizer.maxLen;
const rows: TokenizedMessage[] = messages.map((m, i) => ({
  ...m,
  text: cleaned.texts[i]!,
  tokens: tokenized.tokens.subarray(i * maxLen, (i + 1) * maxLen),
}));
log('Arrow batch build');
stages.push(await measureBatchBuild(rows, config, reps));

const network = pipelineNetwork(config);
const measured: { label: string; resolved: string }[] = [];
for (const variant of lstmVariants(network)) {
  log(`model [${variant.label}]: score batch ${SCORE_BATCHES.join(', ')}, train batch ${config.model.trainBatchSize}`);
  const model = await measureModel(variant, rows, config, { reps: opts.reps, seconds: opts.seconds });
  stages.push(...model.rows);
  measured.push({ label: variant.label, resolved: model.lstm });
}

log('Parquet write');
stages.push(await measureParquetWrite(pipelineBatches(rows, config), config, reps));

const replaySettings = await Promise.all(
  opts.cleanThreads.map(async (cleanThreads) => {
    const env = cleanThreadsEnv(process.env, cleanThreads, cleanPool);
    return env === null ? { cleanThreads, config: null, skipped: CLEAN_THREADS_MISSING } : { cleanThreads, config: await loadPipeline(pipelineFile, { env }) };
  }),
);
worker.push(...(await measureReplays({ settings: replaySettings, input, backend: backend.name, rows: opts.rows, reps: opts.reps, log })));

worker.push(...(await kafkaRows()));

async function kafkaRows(): Promise<WorkerRow[]> {
  const skipAll = (reason: string): WorkerRow[] =>
    opts.cleanThreads.flatMap((t) => [Workloads.KAFKA_ALL, Workloads.KAFKA_SCORE].map((w) => skippedWorkerRow(w, t, 'messages/s', reason)));
  if (!opts.kafka) return skipAll('--no-kafka');
  log('Kafka: starting the local broker (scripts/kafka.sh start)');
  let broker: string;
  try {
    broker = await ensureBroker(repo);
  } catch (err) {
    return skipAll(reasonOf(err));
  }
  try {
    const result = await measureKafkaWorkers({
      repo,
      brokers: [broker],
      dataset: input,
      limit: opts.rows,
      // Four copies of the corpus: at one, the fixed latencies of a short run (the last
      // partial batch waits batch.maxAgeMs) weigh on a window of a few seconds.
      repeat: KAFKA_CORPUS_COPIES,
      reps: opts.reps,
      backend: backend.name,
      cleanThreads: opts.cleanThreads,
      // Generous (10 rows/s, below the slowest backend's training), so only a stuck run hits it.
      runTimeoutMs: Math.max(300_000, messages.length * 100),
      log,
    });
    return result.rows;
  } catch (err) {
    return skipAll(reasonOf(err));
  }
}

const resolvedNetwork = resolveNetworkConfig(network);
let keras: BenchResult['keras'];
if (!opts.keras) {
  keras = { rows: kerasSkipped('--no-keras'), skipped: '--no-keras' };
} else {
  log('Keras reference (bench/keras_reference.py)');
  try {
    const result: KerasResult = await runKerasReference({
      repo,
      texts: cleaned.texts,
      tokens: tokenized.tokens,
      labels: Float32Array.from(messages, (m) => m.label ?? 0),
      network: resolvedNetwork,
      numWords: config.tokenizer.numWords,
      trainBatch: config.model.trainBatchSize,
      scoreBatches: SCORE_BATCHES,
      reps: opts.reps,
      seconds: opts.seconds,
    });
    keras = result;
  } catch (err) {
    const reason = reasonOf(err);
    keras = { rows: kerasSkipped(reason), skipped: reason };
  }
}

function kerasSkipped(reason: string): Row[] {
  return [
    skippedRow(KerasRows.TOKENIZER_FIT, 'texts/s', reason),
    skippedRow(KerasRows.TOKENIZE, 'texts/s', reason),
    skippedRow(KerasRows.train(config.model.trainBatchSize), 'samples/s', reason),
    skippedRow(KerasRows.scoreThenTrain(config.model.trainBatchSize), 'samples/s', reason),
    ...SCORE_BATCHES.map((b) => skippedRow(KerasRows.predict(b), 'samples/s', reason)),
  ];
}

const backends = await measureBackends({ repo, seconds: opts.seconds, log });

const machine = readMachine();
const limit = computeLimit(machine, resolvedNetwork);
const result: BenchResult = {
  settings: { rows: messages.length, reps: opts.reps, seconds: opts.seconds, kafka: opts.kafka, keras: opts.keras, cleanThreads: opts.cleanThreads },
  corpus: { path: path.relative(repo, corpus.path), built: corpus.built, rows: messages.length, deadLetters: corpus.deadLetters },
  machine,
  backend,
  lstm: { measured, pipelineDefault: resolvedLstm(config.model.lstm) },
  stages,
  worker,
  keras,
  ratios: makeRatios(stages, keras.rows, measured.map((m) => m.label), config.model.trainBatchSize),
  limit: { ...limit, rows: makeLimitRows(stages, keras.rows, limit) },
  backends,
  seconds: (performance.now() - started) / 1000,
};
process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderTable(result)}\n`);
