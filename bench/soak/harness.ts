/**
 * A soak run: a long stream through one real worker on a dedicated local broker, with the
 * worker's RSS, heap and live tensors sampled from its /metrics as it goes, then the
 * output checked like a chaos run's (bench/chaos/verify.ts). Used by `npm run soak` and,
 * small, by the test suite.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { stringify as toYaml } from 'yaml';
import { committedCount, produce, withDedicatedBroker } from '../chaos/broker.js';
import { deleteTopics, freePort } from '../kafka.js';
import { verifyRun, type Verification } from '../chaos/verify.js';
import { CSV_HEADER, csvLine, summarize, type Sample, type SoakSummary } from './samples.js';
import { scrape, type Reading } from './scrape.js';
import { startWorker, type SoakWorker } from './worker.js';

export interface SoakOptions {
  /** Repository root (the built CLI, scripts/). */
  repo: string;
  /** A fresh directory for output, checkpoints, the pipeline, logs and samples. */
  dir: string;
  messages: number;
  /** The growth is measured after this many messages are committed. */
  warmupMessages: number;
  sampleSeconds: number;
  partitions: number;
  /** Messages produced per second; null: as fast as the broker takes them. */
  ratePerSecond: number | null;
  /** One malformed JSON message in this many (0: none). */
  poisonEvery: number;
  /** The worker's model.checkpointEveryRows. */
  checkpointEveryRows: number;
  seed: number;
  /** The dedicated broker's port (never the test broker's). */
  kafkaPort: number;
  /** The run fails if not every message is committed within this long. */
  timeoutMs: number;
  log: (line: string) => void;
}

export interface SoakResult {
  summary: SoakSummary;
  verification: Verification;
  /** The worker's exit at the final SIGTERM (0: a clean drain). */
  exitCode: number | string;
  /** Every check that failed (memory, exit code, output); empty: PASS. */
  failures: string[];
  samples: Sample[];
  /** The samples as CSV (in the run directory). */
  csv: string;
  /** From the worker's start until every message was committed. */
  processingSeconds: number;
  messagesPerSecond: number;
  /** The whole run, broker start and verification included. */
  seconds: number;
}

/**
 * Unthrottled producing is still one request at a time: at most this many messages held
 * in memory, about 0.3 MB a request, well under the broker's 1 MB batch limit.
 */
const UNTHROTTLED_BATCH = 2000;
/** How often the committed count is polled between samples (the end is seen within it). */
const POLL_MS = 1000;

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const started = Date.now();
  const result = await withDedicatedBroker(opts.repo, opts.kafkaPort, (brokers) => runOnBroker(opts, brokers));
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

async function runOnBroker(opts: SoakOptions, brokers: string[]): Promise<Omit<SoakResult, 'seconds'>> {
  const kafka = new Kafka({ clientId: 'textstream-soak', brokers, logLevel: logLevel.NOTHING });
  const topic = `soak-${Date.now()}`;
  const groupId = `${topic}-worker`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: opts.partitions }], waitForLeaders: true });
    // The chaos producer sends one request per tenth of a second; a tick's worth of
    // UNTHROTTLED_BATCH means it sends the next as soon as the broker acknowledged one.
    const ratePerSecond = opts.ratePerSecond ?? UNTHROTTLED_BATCH * 10;
    let produceError: unknown = null;
    const producing = produce(kafka, topic, { ...opts, ratePerSecond }).then(
      () => opts.log(`produced ${opts.messages} messages to ${topic}`),
      (err: unknown) => void (produceError = err),
    );
    opts.log(
      `producing ${opts.messages} messages to ${topic} (${opts.partitions} partitions) on ${brokers[0]} ${opts.ratePerSecond === null ? 'as fast as the broker takes them' : `at ${opts.ratePerSecond}/s`}`,
    );

    const port = await freePort();
    const pipeline = await writePipeline(opts, { brokers, topic, groupId, port });
    const worker = await startWorker({
      cli: path.join(opts.repo, 'dist', 'src', 'cli', 'main.js'),
      pipeline,
      logFile: path.join(opts.dir, 'worker.log'),
      summaryFile: path.join(opts.dir, 'worker.out'),
    });
    opts.log(`worker ${worker.pid} started; metrics on 127.0.0.1:${port}, logs in ${path.join(opts.dir, 'worker.log')}`);
    const workerStarted = Date.now();
    const csv = path.join(opts.dir, 'samples.csv');
    let samples: Sample[];
    let exitCode: number | string;
    try {
      samples = await sampleUntilCommitted(opts, { admin, worker, url: `http://127.0.0.1:${port}/metrics`, topic, groupId, csv, started: workerStarted }, () => produceError);
      await producing;
      exitCode = await worker.stop();
      opts.log(`worker stopped with exit code ${exitCode}`);
    } finally {
      worker.kill();
    }
    const processingSeconds = samples.at(-1)!.seconds;
    const verification = await verifyRun({ brokers, topic, deadLetterTopic: `${topic}.dlq`, outDir: path.join(opts.dir, 'out', 'soak') });
    const summary = summarize(samples, opts.warmupMessages);
    const failures = [...summary.memoryFailures];
    if (exitCode !== 0) failures.push(`the worker exited ${exitCode} at the final SIGTERM, not 0`);
    if (verification.missing > 0) failures.push(`${verification.missing} messages are neither a row nor a dead letter`);
    if (verification.duplicateRows > 0) failures.push(`${verification.duplicateRows} duplicate rows`);
    if (verification.rowAndDeadLetter > 0) failures.push(`${verification.rowAndDeadLetter} messages are both a row and a dead letter`);
    return {
      summary,
      verification,
      exitCode,
      failures,
      samples,
      csv,
      processingSeconds,
      messagesPerSecond: opts.messages / processingSeconds,
    };
  } finally {
    await deleteTopics(admin, [topic, `${topic}.dlq`]);
    await admin.disconnect();
  }
}

interface Watch {
  admin: Admin;
  worker: SoakWorker;
  url: string;
  topic: string;
  groupId: string;
  /** Each sample is appended as it is taken, so a crashed run still leaves its samples. */
  csv: string;
  /** Date.now() when the worker started. */
  started: number;
}

/**
 * Samples every `sampleSeconds` and once more when every message is committed (the last
 * sample); throws when the worker exits, the producer fails or the time is up.
 */
async function sampleUntilCommitted(opts: SoakOptions, watch: Watch, produceError: () => unknown): Promise<Sample[]> {
  await writeFile(watch.csv, CSV_HEADER);
  const samples: Sample[] = [];
  const deadline = watch.started + opts.timeoutMs;
  let nextSample = watch.started + opts.sampleSeconds * 1000;
  for (;;) {
    await sleep(POLL_MS);
    if (produceError() !== null) throw new Error('producing failed', { cause: produceError() });
    if (watch.worker.exit !== null) throw new Error(`the worker exited (${watch.worker.exit}) after ${samples.at(-1)?.committed ?? 0} of ${opts.messages} messages were committed`);
    const committed = await committedCount(watch.admin, watch.groupId, watch.topic);
    const done = committed >= opts.messages;
    if (Date.now() > deadline) throw new Error(`soak run incomplete after ${opts.timeoutMs / 1000} s: ${committed} of ${opts.messages} committed`);
    if (!done && Date.now() < nextSample) continue;
    nextSample += opts.sampleSeconds * 1000;
    const reading = await scrape(watch.url, Math.min(5000, opts.sampleSeconds * 1000));
    if (reading === null) {
      opts.log(`the worker did not answer on ${watch.url}; no sample this time`);
      if (!done) continue;
    }
    const sample: Sample = { seconds: (Date.now() - watch.started) / 1000, committed, ...(reading ?? noReading) };
    samples.push(sample);
    await appendFile(watch.csv, csvLine(sample));
    opts.log(progressLine(samples, opts.messages));
    if (done) return samples;
  }
}

const noReading: Reading = { rssBytes: null, heapUsedBytes: null, liveTensors: null, rowsWritten: null };

/**
 * Where the run is, with the rate over the last minute: offsets are committed when files
 * are finished, every few seconds, so the rate between two samples jumps between 0 and peaks.
 */
function progressLine(samples: readonly Sample[], total: number): string {
  const sample = samples.at(-1)!;
  const since = samples.find((s) => s.seconds >= sample.seconds - 60 && s !== sample);
  const rate = since === undefined ? sample.committed / sample.seconds : (sample.committed - since.committed) / (sample.seconds - since.seconds);
  const mib = (bytes: number | null): string => (bytes === null ? '?' : (bytes / 2 ** 20).toFixed(0));
  return (
    `${sample.seconds.toFixed(0)} s: ${sample.committed.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} committed ` +
    `(${((100 * sample.committed) / total).toFixed(1)} %), ${rate.toFixed(0)}/s, RSS ${mib(sample.rssBytes)} MiB, ` +
    `heap ${mib(sample.heapUsedBytes)} MiB, tensors ${sample.liveTensors ?? '?'}`
  );
}

/**
 * The worker's pipeline: production defaults (commit interval, buffering, batch size,
 * tokenizer bootstrap) except where the soak run needs its own setting, so what is
 * measured is what a deployment runs.
 */
async function writePipeline(opts: SoakOptions, at: { brokers: string[]; topic: string; groupId: string; port: number }): Promise<string> {
  await mkdir(opts.dir, { recursive: true });
  const file = path.join(opts.dir, 'soak.yaml');
  await writeFile(
    file,
    toYaml({
      name: 'soak',
      source: { type: 'kafka', brokers: at.brokers, topic: at.topic, groupId: at.groupId },
      model: { backend: 'wasm', checkpointDir: path.join(opts.dir, 'checkpoint'), checkpointEveryRows: opts.checkpointEveryRows },
      sink: { dir: path.join(opts.dir, 'out'), rotateRows: 10_000 },
      metrics: { enabled: true, host: '127.0.0.1', port: at.port },
    }),
  );
  return file;
}
