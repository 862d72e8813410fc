/**
 * One timed `textstream run` process against the real broker, in a fresh consumer group,
 * measured so that start-up is not mistaken for throughput:
 *
 *   spawn ──start-up──▶ first record taken ──steady──▶ last row scored ──finish──▶ all durable
 *
 * The worker's /metrics and its /proc CPU time are sampled (SAMPLE_MS); the first
 * record is the last sample at which its source had taken nothing (so the steady window is,
 * if anything, too long by up to one sample), the last row scored is the latest
 * `processed_at` in its Parquet output (exact to the millisecond). Start-up (tfjs, the
 * snapshot, joining the group) and finish (waiting up to commitIntervalMs for the last
 * file and commit) are reported separately. The output is then checked to hold every
 * produced offset exactly once (bench/chaos/verify.ts, read back by DuckDB).
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { verifyRun, type Verification } from './chaos/verify.js';
import { machineBusySeconds, sampledWindow, type CpuSample, type CpuWindow } from './cpu.js';
import { finished, scrape } from './kafka.js';
import { processCpuSeconds, spawnWorker, StartupEvents, summaryOf } from './scorers/process.js';

export const KafkaRoles = { ALL: 'all', SCORE: 'score' } as const;
export type KafkaRole = (typeof KafkaRoles)[keyof typeof KafkaRoles];

/**
 * Until the first record, samples are this close: the window's start is only as exact as
 * they are. After it, only the CPU time (interpolated) and the end of the run are sampled,
 * and every scrape costs the worker about a millisecond of its main thread (prom-client
 * collects every metric), so less often.
 */
const SAMPLE_MS = 100;
const SAMPLE_RUNNING_MS = 500;

export interface TimedRunOptions {
  cli: string;
  /** The pipeline file (topic, group, sink dir, dead-letter topic already set). */
  pipelineFile: string;
  role: KafkaRole;
  env: NodeJS.ProcessEnv;
  brokers: string[];
  topic: string;
  deadLetterTopic: string;
  sinkDir: string;
  /** Messages in the topic: the run is over when that many are rows or dead letters. */
  messages: number;
  timeoutMs: number;
  /** Where the worker writes a V8 CPU profile (node --cpu-prof) when it exits; null: no profile. */
  cpuProfileDir?: string | null;
}

export interface TimedRun {
  role: KafkaRole;
  messages: number;
  /** Spawn → the consumer group's assignment (node, tfjs, the snapshot for a scorer, the join). */
  assignedSeconds: number | null;
  /** Spawn → the first record taken from the source. */
  startupSeconds: number;
  /** First record taken → last row scored. */
  steadySeconds: number;
  /** messages / steadySeconds. */
  messagesPerSecond: number;
  /** Last row scored → every message a durable row or a dead letter (its /metrics). */
  finishSeconds: number;
  /** messages / (spawn → all durable), the figure the bench printed before. */
  wallMessagesPerSecond: number;
  /** The worker's CPU in the steady window; null when /proc could not be read. */
  cpu: CpuWindow | null;
  /** Seconds per stage from the worker's --json summary (start-up and drain included). */
  stages: Record<string, number> | null;
  backpressurePauses: number | null;
  rebalances: number | null;
  verification: Verification | string;
  exitCode: number | null;
}

interface Sample extends CpuSample {
  /** Records the source had handed to the pipeline. */
  taken: number;
  /** Rows written + dead letters. */
  done: number;
}

/** A counter's value in /metrics text, summed over the series that match `labels`; null when absent. */
export function counterValue(metrics: string, name: string, labels = ''): number | null {
  let sum: number | null = null;
  for (const m of metrics.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([\\d.e+]+)$`, 'gm'))) {
    if (labels !== '' && !(m[1] ?? '').includes(labels)) continue;
    sum = (sum ?? 0) + Number(m[2]);
  }
  return sum;
}

export async function timedRun(opts: TimedRunOptions): Promise<TimedRun> {
  const worker = spawnWorker({
    cli: opts.cli,
    args: ['run', opts.pipelineFile, '--role', opts.role, '--json', '--log-level', 'info'],
    env: opts.env,
    nodeArgs: opts.cpuProfileDir == null ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`, `--cpu-prof-name=${opts.role}-${Date.now()}.cpuprofile`],
  });
  const pid = worker.child.pid;
  const samples: Sample[] = [];
  let doneAt: number;
  let finalMetrics = '';
  try {
    for (;;) {
      const port = worker.metricsPort;
      const text = port === null ? '' : await scrape(port);
      const atMs = Date.now();
      const cpuSeconds = processCpuSeconds(pid);
      if (text !== '' && cpuSeconds !== null) {
        const taken = counterValue(text, 'textstream_stage_input_messages_total', 'stage="source"') ?? 0;
        samples.push({ atMs, cpuSeconds, machineBusySeconds: machineBusySeconds(), taken, done: finished(text) });
        if (finished(text) >= opts.messages) {
          doneAt = atMs;
          finalMetrics = text;
          break;
        }
      }
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
        throw new Error(`the ${opts.role} worker exited (${worker.child.exitCode ?? worker.child.signalCode}) before the run finished: ${worker.stderrTail.join(' | ')}`);
      }
      if (atMs - worker.spawnedAtMs > opts.timeoutMs) {
        throw new Error(`the ${opts.role} worker did not finish within ${opts.timeoutMs / 1000} s (${samples.at(-1)?.done ?? 0} of ${opts.messages} done)`);
      }
      await sleep(samples.some((s) => s.taken > 0) ? SAMPLE_RUNNING_MS : SAMPLE_MS);
    }
  } finally {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  }
  const exit = await worker.exited;
  const lastIdle = samples.findLast((s) => s.taken === 0) ?? samples.find((s) => s.taken > 0);
  if (lastIdle === undefined) throw new Error('no /metrics sample of the worker');
  const firstRecordAt = lastIdle.atMs;
  const processed = await processedWindow(opts.sinkDir);
  // A run whose every message was a dead letter has no rows: its window ends when all were done.
  const lastScoredAt = processed?.lastMs ?? doneAt;
  const steadySeconds = Math.max(1e-3, (lastScoredAt - firstRecordAt) / 1000);
  const cpu = sampledWindow(samples, firstRecordAt, lastScoredAt);
  let verification: Verification | string;
  try {
    verification = await verifyRun({ brokers: opts.brokers, topic: opts.topic, deadLetterTopic: opts.deadLetterTopic, outDir: opts.sinkDir });
  } catch (err) {
    verification = `not verified: ${err instanceof Error ? err.message : String(err)}`;
  }
  const summary = summaryOf(worker);
  const stages = summary?.stages as Record<string, { seconds: number }> | undefined;
  const assigned = worker.events.get(StartupEvents.PARTITIONS_ASSIGNED);
  return {
    role: opts.role,
    messages: opts.messages,
    assignedSeconds: assigned === undefined ? null : (assigned - worker.spawnedAtMs) / 1000,
    startupSeconds: (firstRecordAt - worker.spawnedAtMs) / 1000,
    steadySeconds,
    messagesPerSecond: opts.messages / steadySeconds,
    finishSeconds: Math.max(0, (doneAt - lastScoredAt) / 1000),
    wallMessagesPerSecond: opts.messages / ((doneAt - worker.spawnedAtMs) / 1000),
    cpu,
    stages: stages ? Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, v.seconds])) : null,
    backpressurePauses: counterValue(finalMetrics, 'textstream_kafka_backpressure_pauses_total'),
    rebalances: counterValue(finalMetrics, 'textstream_kafka_rebalances_total'),
    verification,
    exitCode: exit.code,
  };
}

/** Earliest and latest `processed_at` (epoch ms) of the rows under `dir`; null when there are none. */
export async function processedWindow(dir: string): Promise<{ firstMs: number; lastMs: number } | null> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const glob = path.join(dir, '**', '*.parquet');
    const reader = await db.runAndReadAll(
      `SELECT epoch_ms(min(processed_at))::DOUBLE AS first, epoch_ms(max(processed_at))::DOUBLE AS last FROM read_parquet('${glob}', hive_partitioning = false)`,
    );
    const row = reader.getRowObjectsJS()[0] as { first: number | null; last: number | null } | undefined;
    return row?.first == null || row.last == null ? null : { firstMs: row.first, lastMs: row.last };
  } catch (err) {
    if (/No files found/.test(String(err))) return null;
    throw err;
  } finally {
    db.closeSync();
  }
}

/** Every produced offset exactly once: rows + dead letters = produced, no duplicate, none missing, none both. */
export function exactlyOnce(v: Verification | string): boolean {
  return typeof v !== 'string' && v.duplicateRows === 0 && v.missing === 0 && v.rowAndDeadLetter === 0 && v.duplicateDeadLetters === 0 && v.rows + v.deadLetters === v.produced;
}

export function describeVerification(v: Verification | string): string {
  if (typeof v === 'string') return v;
  return `${v.rows} rows + ${v.deadLetters} dead letters of ${v.produced} produced; ${v.duplicateRows} duplicate, ${v.missing} missing, ${v.rowAndDeadLetter} both`;
}
