/**
 * One Kafka worker of role `all` and one Kafka scorer against the real local broker, per
 * `clean.threads` setting: the corpus (`repeat` copies, distinct keys) is produced once
 * into a fresh 4-partition topic; each run is one process in a fresh consumer group with
 * its own output folder and dead-letter topic (bench/kafka-run.ts times and checks it).
 * The `all` worker also publishes its model to a snapshot topic when it stops, which is
 * the snapshot the scorers that follow load, so no separate trainer is needed. Runs
 * alternate role and setting within each repetition, so a change in the machine's other
 * load does not fall on one series only.
 *
 * Used by `npm run bench` and `npm run bench:kafka`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stringify as toYaml } from 'yaml';
import { loadPipeline } from '../src/config/load.js';
import type { PipelineConfig } from '../src/config/schema.js';
import type { RequestedBackend } from '../src/model/backend.js';
import { CLEAN_THREADS_MISSING, cleanThreadsEnv, cleanThreadsSupported } from './clean-threads.js';
import { formatShare } from './cpu.js';
import { deleteTopics } from './kafka.js';
import { describeVerification, exactlyOnce, KafkaRoles, timedRun, type KafkaRole, type TimedRun } from './kafka-run.js';
import { reasonOf } from './result.js';
import { produceCopies, readCorpus } from './scorers/topic.js';
import { median } from './stats.js';
import { measuredWorkerRow, skippedWorkerRow, Workloads, type WorkerRow } from './worker-rows.js';

export const PARTITIONS = 4;

export interface KafkaWorkerBenchOptions {
  repo: string;
  brokers: string[];
  /** The Parquet corpus (built beforehand). */
  dataset: string;
  /** Corpus rows to use; null: all. */
  limit: number | null;
  /** Copies of those rows in the topic. */
  repeat: number;
  reps: number;
  /** The workers' model.backend. */
  backend: RequestedBackend;
  /** clean.threads settings to run (0 = main thread). */
  cleanThreads: readonly number[];
  /** A run not finished after this long fails (a stuck worker must not hang the bench). */
  runTimeoutMs: number;
  /** Each worker writes a V8 CPU profile here (node --cpu-prof); null or absent: none (profiling slows it). */
  cpuProfileDir?: string | null;
  log?: (line: string) => void;
}

export interface KafkaWorkerRun extends TimedRun {
  cleanThreads: number;
  rep: number;
}

export interface KafkaWorkerResult {
  messages: number;
  produceSeconds: number;
  runs: KafkaWorkerRun[];
  failures: { role: KafkaRole; cleanThreads: number; rep: number; error: string }[];
  rows: WorkerRow[];
}

interface Target {
  base: PipelineConfig;
  brokers: string[];
  topic: string;
  snapshotTopic: string;
  messages: number;
  backend: RequestedBackend;
  dir: string;
}

/** The shipped pipeline pointed at the bench's topic, group, folders and snapshot topic. */
function pipelineFor(target: Target, run: { groupId: string; sinkDir: string; deadLetterTopic: string }): PipelineConfig {
  const { base } = target;
  if (base.source.type !== 'kafka') throw new Error('pipelines/kafka-spamassassin.yaml is not a Kafka pipeline');
  return {
    ...base,
    source: { ...base.source, brokers: target.brokers, topic: target.topic, groupId: run.groupId },
    // A live worker waits for bootstrapRows messages before it fits the vocabulary; with
    // fewer in the topic (--rows) it would wait for the bootstrap timeout.
    tokenizer: { ...base.tokenizer, bootstrapRows: Math.min(base.tokenizer.bootstrapRows, target.messages) },
    model: { ...base.model, backend: target.backend },
    // Only the snapshot published when the `all` worker stops (outside its timed window).
    snapshots: { ...base.snapshots, topic: target.snapshotTopic, everyRows: 1_000_000_000, everySeconds: 1_000_000, producerId: 'bench-worker' },
    deadLetter: { ...base.deadLetter, topic: run.deadLetterTopic },
    sink: { ...base.sink, dir: run.sinkDir },
    metrics: { ...base.metrics, host: '127.0.0.1', port: 0 },
  };
}

export async function measureKafkaWorkers(opts: KafkaWorkerBenchOptions): Promise<KafkaWorkerResult> {
  const log = opts.log ?? (() => undefined);
  const base = await loadPipeline(path.join(opts.repo, 'pipelines', 'kafka-spamassassin.yaml'));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-kafka-'));
  const topic = `bench-worker-${Date.now()}-${process.pid}`;
  const created = [topic, `${topic}.model`];
  const admin = new Kafka({ clientId: 'textstream-bench', brokers: opts.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const corpus = await readCorpus(opts.dataset);
    const rows = opts.limit === null ? corpus : corpus.slice(0, opts.limit);
    const produced = await produceCopies({ brokers: opts.brokers, topic, rows, from: 0, to: opts.repeat, jsonl: path.join(dir, 'messages.jsonl') });
    log(`kafka: produced ${produced.messages} messages (${opts.repeat} × ${rows.length}) to ${topic} in ${produced.seconds.toFixed(1)} s`);
    const target: Target = { base, brokers: opts.brokers, topic, snapshotTopic: `${topic}.model`, messages: produced.messages, backend: opts.backend, dir };
    const supported = cleanThreadsSupported();
    const runnable = opts.cleanThreads.filter((t) => cleanThreadsEnv(process.env, t, supported) !== null);
    const runs: KafkaWorkerRun[] = [];
    const failures: KafkaWorkerResult['failures'] = [];
    // A scorer waits for a snapshot: without one (every `all` run so far failed) it would only time out.
    let snapshotPublished = false;
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const threads of runnable) {
        // The scorer loads the snapshot the `all` worker before it published.
        for (const role of [KafkaRoles.ALL, KafkaRoles.SCORE]) {
          const name = `${role}-c${threads}-r${rep}`;
          if (role === KafkaRoles.SCORE && !snapshotPublished) {
            failures.push({ role, cleanThreads: threads, rep, error: 'no snapshot to load: the role all run before it failed' });
            continue;
          }
          const deadLetterTopic = `${topic}.dlq.${name}`;
          created.push(deadLetterTopic);
          try {
            await admin.createTopics({
              topics: [{ topic: deadLetterTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2097152' }] }],
              waitForLeaders: true,
            });
            const sinkDir = path.join(dir, name, 'out');
            const pipelineFile = path.join(dir, name, 'pipeline.yaml');
            await mkdir(path.dirname(pipelineFile), { recursive: true });
            await writeFile(pipelineFile, toYaml(pipelineFor(target, { groupId: `${topic}-${name}`, sinkDir, deadLetterTopic })));
            const run = await timedRun({
              cli: path.join(opts.repo, 'dist', 'src', 'cli', 'main.js'),
              pipelineFile,
              role,
              env: cleanThreadsEnv(process.env, threads, supported)!,
              brokers: opts.brokers,
              topic,
              deadLetterTopic,
              sinkDir,
              messages: produced.messages,
              timeoutMs: opts.runTimeoutMs,
              cpuProfileDir: opts.cpuProfileDir ?? null,
            });
            runs.push({ ...run, cleanThreads: threads, rep });
            if (role === KafkaRoles.ALL && run.exitCode === 0) snapshotPublished = true;
            log(
              `kafka: ${name}: ${run.messagesPerSecond.toFixed(0)} messages/s steady (start-up ${run.startupSeconds.toFixed(1)} s, ` +
                `finish ${run.finishSeconds.toFixed(1)} s), CPU ${formatShare(run.cpu?.share ?? null, run.cpu?.machineShare ?? null)} of ${os.availableParallelism()} cores; ` +
                describeVerification(run.verification),
            );
          } catch (err) {
            failures.push({ role, cleanThreads: threads, rep, error: reasonOf(err) });
            log(`kafka: ${name} FAILED: ${reasonOf(err)}`);
          }
        }
      }
    }
    const rowsOut = opts.cleanThreads.flatMap((threads) =>
      [KafkaRoles.ALL, KafkaRoles.SCORE].map((role) =>
        runnable.includes(threads)
          ? kafkaRow(role, threads, runs.filter((r) => r.role === role && r.cleanThreads === threads), failures.filter((f) => f.role === role && f.cleanThreads === threads), produced.messages)
          : skippedWorkerRow(workloadOf(role), threads, 'messages/s', CLEAN_THREADS_MISSING),
      ),
    );
    return { messages: produced.messages, produceSeconds: produced.seconds, runs, failures, rows: rowsOut };
  } finally {
    await deleteTopics(admin, created);
    await admin.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

const workloadOf = (role: KafkaRole) => (role === KafkaRoles.ALL ? Workloads.KAFKA_ALL : Workloads.KAFKA_SCORE);

function kafkaRow(role: KafkaRole, threads: number, runs: readonly KafkaWorkerRun[], failures: KafkaWorkerResult['failures'], messages: number): WorkerRow {
  if (runs.length === 0) return skippedWorkerRow(workloadOf(role), threads, 'messages/s', failures[0]?.error ?? 'no run');
  const total = runs.length + failures.length;
  const bad = runs.filter((r) => !exactlyOnce(r.verification) || r.exitCode !== 0);
  const verdict =
    bad.length === 0 && failures.length === 0
      ? `yes (${runs.length} of ${total} runs)`
      : `NO in ${bad.length + failures.length} of ${total}: ${bad.map((r) => `exit ${r.exitCode}, ${describeVerification(r.verification)}`).concat(failures.map((f) => f.error)).join('; ')}`;
  const m = (pick: (r: KafkaWorkerRun) => number): number => median(runs.map(pick));
  const assigned = runs.flatMap((r) => (r.assignedSeconds === null ? [] : [r.assignedSeconds]));
  return measuredWorkerRow(
    workloadOf(role),
    threads,
    'messages/s',
    runs.map((r) => ({ rate: r.messagesPerSecond, cpu: r.cpu })),
    {
      startupSeconds: m((r) => r.startupSeconds),
      exactlyOnce: verdict,
      note:
        `${messages} messages, ${PARTITIONS} partitions; first record → last row scored. Spawn → group assigned ` +
        `${assigned.length === 0 ? '?' : median(assigned).toFixed(1)} s; last row → all durable ${m((r) => r.finishSeconds).toFixed(1)} s; ` +
        `spawn → all durable ${m((r) => r.wallMessagesPerSecond).toFixed(0)} messages/s`,
    },
  );
}
