/**
 * Kafka end to end against the real local broker (scripts/kafka.sh): the corpus is
 * produced once into a fresh 4-partition topic, then each repetition starts N
 * `textstream run` workers in a fresh consumer group (so every run reads the whole topic
 * from the beginning) and times from their start until every message is a durable
 * Parquet row or a dead letter, as the workers' own /metrics count them.
 *
 * Used by `npm run bench` and by the standalone bench/kafka-end-to-end.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { pino } from 'pino';
import { stringify as toYaml } from 'yaml';
import { loadPipeline } from '../src/config/load.js';
import { produceFile } from '../src/cli/produce.js';

export const KAFKA_ROW = 'Kafka end-to-end';

export interface KafkaBenchOptions {
  /** Repository root: the pipeline definition, the built CLI and scripts/ live there. */
  repo: string;
  /** host:port list of the broker. */
  brokers: string[];
  /** The Parquet corpus to produce (built beforehand). */
  dataset: string;
  workers: number;
  /** Messages to produce; null: the whole file. */
  limit: number | null;
  reps: number;
  /** The workers' model.backend. */
  backend: string;
  /** A run that has not finished after this long fails (a stuck worker must not hang the bench). */
  runTimeoutMs: number;
  /** Progress lines (stderr in the bench). */
  log?: (line: string) => void;
}

export interface KafkaRun {
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** The backend worker 0 reported in textstream_model_backend_info. */
  backend: string | null;
  accuracyWorker0: number | null;
}

export interface KafkaResult {
  messages: number;
  produceSeconds: number;
  runs: KafkaRun[];
}

const START_TIMEOUT_MS = 180_000;

/**
 * Starts the local broker unless it already answers (the script is idempotent and
 * serialised by a lock); returns host:port. Throws with the script's last stderr line.
 */
export async function ensureBroker(repo: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('bash', ['scripts/kafka.sh', 'start'], { cwd: repo, timeout: START_TIMEOUT_MS });
    const address = stdout.trim().split('\n').at(-1);
    if (address === undefined || address === '') throw new Error('scripts/kafka.sh start printed no address');
    return address;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    const last = stderr.trim().split('\n').at(-1);
    throw new Error(`scripts/kafka.sh start failed: ${last !== undefined && last !== '' ? last : String(err)}`, { cause: err });
  }
}

/** Produces a corpus file (Parquet or JSON lines with id, text, label) keyed by id, as `textstream produce` does. */
export function produceCorpus(file: string, topic: string, brokers: string[], limit: number | null): ReturnType<typeof produceFile> {
  return produceFile({
    file,
    topic,
    brokers,
    format: 'json',
    limit,
    partitionsBy: 'key',
    columns: { text: 'text', label: 'label', id: 'id' },
    batchSize: 500,
    maxInFlight: 4,
    connectionTimeoutMs: 3000,
    logger: pino({ level: 'warn' }),
  });
}

/** A port nobody listens on right now (the worker binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}

/** One worker's /metrics text; empty when it does not answer (not up yet, or gone). */
export async function scrape(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
}

/** Rows written plus dead letters in one worker's /metrics. */
export function finished(metrics: string): number {
  let total = 0;
  for (const m of metrics.matchAll(/^textstream_(?:output_rows_total|dead_letters_total)\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
  return total;
}

export async function measureKafkaEndToEnd(opts: KafkaBenchOptions): Promise<KafkaResult> {
  const log = opts.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-kafka-'));
  const topic = `bench-${Date.now()}-${process.pid}`;
  const dlq = `${topic}.dlq`;
  const admin = new Kafka({ clientId: 'textstream-bench', brokers: opts.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        { topic, numPartitions: 4 },
        { topic: dlq, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2097152' }] },
      ],
      waitForLeaders: true,
    });
    const produced = await produceCorpus(opts.dataset, topic, opts.brokers, opts.limit);
    log(`kafka: produced ${produced.messages} messages to ${topic} in ${produced.seconds.toFixed(1)} s`);
    const runs: KafkaRun[] = [];
    for (let rep = 0; rep < opts.reps; rep++) {
      runs.push(await runWorkers(opts, { dir: path.join(dir, `run-${rep}`), topic, dlq, group: `${topic}-run-${rep}`, messages: produced.messages }));
      log(`kafka: run ${rep + 1}/${opts.reps}: ${runs.at(-1)!.messagesPerSecond.toFixed(1)} messages/s`);
    }
    return { messages: produced.messages, produceSeconds: produced.seconds, runs };
  } finally {
    await deleteTopics(admin, [topic, dlq]);
    await admin.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function deleteTopics(admin: Admin, topics: string[]): Promise<void> {
  try {
    await admin.deleteTopics({ topics, timeout: 10_000 });
  } catch {
    // Cleanup only: a left-over bench topic costs disk, not correctness.
  }
}

interface RunTarget {
  dir: string;
  topic: string;
  dlq: string;
  group: string;
  messages: number;
}

async function runWorkers(opts: KafkaBenchOptions, target: RunTarget): Promise<KafkaRun> {
  const base = await loadPipeline(path.join(opts.repo, 'pipelines', 'kafka-spamassassin.yaml'));
  if (base.source.type !== 'kafka') throw new Error('pipelines/kafka-spamassassin.yaml is not a Kafka pipeline');
  const ports = await Promise.all(Array.from({ length: opts.workers }, freePort));
  const cli = path.join(opts.repo, 'dist', 'src', 'cli', 'main.js');
  await mkdir(target.dir, { recursive: true });
  const files = await Promise.all(
    ports.map(async (port, i) => {
      const file = path.join(target.dir, `worker-${i}.yaml`);
      const config = {
        ...base,
        source: { ...base.source, brokers: opts.brokers, topic: target.topic, groupId: target.group },
        // A live worker waits for bootstrapRows messages before it fits the vocabulary and
        // scores anything; with fewer messages in the topic (--rows) it would wait forever.
        tokenizer: { ...base.tokenizer, bootstrapRows: Math.min(base.tokenizer.bootstrapRows, target.messages) },
        model: { ...base.model, backend: opts.backend },
        deadLetter: { ...base.deadLetter, topic: target.dlq },
        sink: { ...base.sink, dir: path.join(target.dir, 'out') },
        metrics: { ...base.metrics, host: '127.0.0.1', port },
      };
      await writeFile(file, toYaml(config));
      return file;
    }),
  );
  const stderrTail: string[] = [];
  const started = Date.now();
  const procs: ChildProcess[] = files.map((file) => {
    const child = spawn(process.execPath, [cli, 'run', file, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => {
      stderrTail.push(...d.toString().split('\n').filter((l) => l.trim() !== ''));
      stderrTail.splice(0, Math.max(0, stderrTail.length - 5));
    });
    return child;
  });
  const exited = procs.map((p) => new Promise((resolve) => p.once('close', resolve)));
  try {
    for (;;) {
      const done = (await Promise.all(ports.map(scrape))).reduce((sum, text) => sum + finished(text), 0);
      if (done >= target.messages) break;
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead !== undefined) throw new Error(`a worker exited (${dead.exitCode ?? dead.signalCode}) before the run finished: ${stderrTail.join(' | ')}`);
      if (Date.now() - started > opts.runTimeoutMs) throw new Error(`run did not finish within ${opts.runTimeoutMs / 1000} s (${done} of ${target.messages} done)`);
      await sleep(200);
    }
    const seconds = (Date.now() - started) / 1000;
    const metrics = await scrape(ports[0]!);
    const accuracy = /^textstream_model_prequential_accuracy\{[^}]*\} ([\d.]+)/m.exec(metrics)?.[1];
    return {
      messages: target.messages,
      seconds,
      messagesPerSecond: target.messages / seconds,
      backend: /textstream_model_backend_info\{[^}]*backend="([^"]+)"/.exec(metrics)?.[1] ?? null,
      accuracyWorker0: accuracy === undefined ? null : Number(accuracy),
    };
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.all(exited);
  }
}
