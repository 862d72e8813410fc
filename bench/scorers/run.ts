/**
 * The two phases of the scaling bench against the real broker: one trainer that leaves a
 * model snapshot on `<topic>.model`, then, per configuration, N scorers in a fresh
 * consumer group timed until the group has committed every message of the topic.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import { stringify as toYaml } from 'yaml';
import type { PipelineConfig } from '../../src/config/schema.js';
import { committedCount } from '../chaos/broker.js';
import { verifyRun, type Verification } from '../chaos/verify.js';
import { finished, scrape } from '../kafka.js';
import { machineCpu, processCpuSeconds, spawnWorker, StartupEvents, summaryOf, type WorkerProcess } from './process.js';

/** `unset`: TEXTSTREAM_MODEL_LSTM_THREADS not set (the fused LSTM uses every core); a number: set to it. */
export type LstmThreads = 'unset' | number;

export interface BenchTarget {
  /** Repository root (the built CLI is dist/src/cli/main.js there). */
  repo: string;
  brokers: string[];
  topic: string;
  /** Messages in the topic. */
  messages: number;
  snapshotTopic: string;
  /** pipelines/kafka-spamassassin.yaml, parsed. */
  base: PipelineConfig;
  /** Where pipeline files and outputs go. */
  dir: string;
  /** The local broker's process, whose CPU time is reported next to the scorers'; null: unknown. */
  brokerPid: number | null;
  /** source.maxBufferedMessages of the scorers; null: the pipeline's. */
  maxBufferedMessages: number | null;
}

/** The pipeline of a bench process: the base one pointed at the bench's topic, group and folders. */
function pipelineFor(target: BenchTarget, run: { groupId: string; sinkDir: string; deadLetterTopic: string | null }): PipelineConfig {
  const { base } = target;
  if (base.source.type !== 'kafka') throw new Error('the base pipeline is not a Kafka pipeline');
  return {
    ...base,
    source: {
      ...base.source,
      brokers: target.brokers,
      topic: target.topic,
      groupId: run.groupId,
      maxBufferedMessages: target.maxBufferedMessages ?? base.source.maxBufferedMessages,
    },
    tokenizer: { ...base.tokenizer, bootstrapRows: Math.min(base.tokenizer.bootstrapRows, target.messages) },
    // One snapshot only, the one a trainer publishes when it stops: a scorer then reads one
    // 8 MB model at its start, not every snapshot compaction has not removed yet.
    snapshots: { ...base.snapshots, topic: target.snapshotTopic, everyRows: 1_000_000_000, everySeconds: 1_000_000, producerId: 'bench-trainer' },
    deadLetter: { ...base.deadLetter, topic: run.deadLetterTopic },
    sink: { ...base.sink, dir: run.sinkDir },
    metrics: { ...base.metrics, host: '127.0.0.1', port: 0 },
  };
}

async function writePipeline(file: string, config: PipelineConfig): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, toYaml(config));
  return file;
}

function childEnv(threads: LstmThreads): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (threads === 'unset') delete env.TEXTSTREAM_MODEL_LSTM_THREADS;
  else env.TEXTSTREAM_MODEL_LSTM_THREADS = String(threads);
  return env;
}

const cliOf = (target: BenchTarget): string => path.join(target.repo, 'dist', 'src', 'cli', 'main.js');

export interface TrainResult {
  seconds: number;
  rowsTrained: number | null;
  accuracy: number | null;
  snapshots: number | null;
  /** Chunks on the snapshot topic afterwards. */
  snapshotMessages: number;
}

/** One `--role train --exit-when-idle` worker over the whole topic; throws unless it exits 0 having published. */
export async function trainOnce(target: BenchTarget, admin: Admin, idleSeconds: number, timeoutMs: number): Promise<TrainResult> {
  const file = await writePipeline(
    path.join(target.dir, 'trainer.yaml'),
    pipelineFor(target, { groupId: `${target.topic}-bench`, sinkDir: path.join(target.dir, 'trainer-out'), deadLetterTopic: null }),
  );
  const started = Date.now();
  const trainer = spawnWorker({
    cli: cliOf(target),
    args: ['run', file, '--role', 'train', '--exit-when-idle', String(idleSeconds), '--json', '--log-level', 'warn'],
    env: childEnv('unset'),
  });
  const timer = setTimeout(() => trainer.child.kill('SIGTERM'), timeoutMs);
  const { code, signal } = await trainer.exited;
  clearTimeout(timer);
  const seconds = (Date.now() - started) / 1000;
  if (code !== 0) throw new Error(`the trainer exited ${code ?? signal} after ${seconds.toFixed(0)} s: ${trainer.stderrTail.join(' | ')}`);
  const summary = summaryOf(trainer);
  const snapshotMessages = (await admin.fetchTopicOffsets(target.snapshotTopic)).reduce((n, p) => n + Number(p.high), 0);
  if (snapshotMessages === 0) throw new Error(`the trainer exited 0 but ${target.snapshotTopic} is empty`);
  const evaluation = summary?.evaluation as { accuracy?: number | null } | undefined;
  return {
    seconds,
    rowsTrained: typeof summary?.rowsTrained === 'number' ? summary.rowsTrained : null,
    accuracy: evaluation?.accuracy ?? null,
    snapshots: typeof summary?.snapshots === 'number' ? summary.snapshots : null,
    snapshotMessages,
  };
}

export interface ScorerStats {
  pid: number | null;
  /** Seconds after its spawn: the tfjs backend chosen (node, tfjs and the backend loaded). */
  backendAt: number | null;
  /** Seconds after its spawn: the snapshot read from the topic and decoded into a model. */
  snapshotLoadedAt: number | null;
  /** Seconds after its spawn: its consumer started (not yet in the group). */
  startedAt: number | null;
  /** Seconds after the run's start: its last partition assignment. */
  lastAssignedAt: number | null;
  partitions: number[] | null;
  /** Rows written + dead letters, from its /metrics at the end of the run. */
  messages: number | null;
  /** Times its fetching was paused because maxBufferedMessages were waiting (/metrics). */
  backpressurePauses: number | null;
  /** Rebalances it went through (/metrics). */
  rebalances: number | null;
  /** User + system CPU seconds at the end of the run (start-up included). */
  cpuSeconds: number | null;
  exitCode: number | null;
  exitSignal: string | null;
  /** Seconds per stage from its --json summary (cumulative; clean, model, sink…). */
  stages: Record<string, number> | null;
  warnings: string[];
}

export interface ScorerRun {
  scorers: number;
  threads: LstmThreads;
  rep: number;
  messages: number;
  /** From spawning the scorers to the group's committed offsets covering the topic. */
  seconds: number;
  messagesPerSecond: number;
  /** Seconds after the start when the last scorer got its last assignment: the group is settled. */
  groupSettledAt: number | null;
  /**
   * The steady rate: messages scored per second by all scorers together (their /metrics,
   * sampled every second) between the later of the group settling and a quarter of the
   * topic scored, and three quarters scored. Start-up, rebalances and the last commit are
   * outside it. Null when the window is shorter than STEADY_MIN_SECONDS.
   */
  steadyMessagesPerSecond: number | null;
  /** Busy share of all cores during the run (/proc/stat), 0–1. */
  machineBusy: number | null;
  /** The broker's CPU seconds during the run. */
  brokerCpuSeconds: number | null;
  /**
   * CPU seconds during the run of everything but the scorers, the broker and the bench
   * itself: other work on a shared machine, which the scorers compete with.
   */
  otherCpuSeconds: number | null;
  /** Cores busy with other work (as otherCpuSeconds) in the seconds before the start. */
  backgroundBefore: number | null;
  perScorer: ScorerStats[];
  /** Exactly once: every offset one Parquet row or one dead letter. */
  verification: Verification | string;
}

export interface ScorerRunOptions {
  scorers: number;
  threads: LstmThreads;
  rep: number;
  timeoutMs: number;
  /** Wait up to this long for other work to use less than `quietCores` before starting. */
  quietWaitMs: number;
  quietCores: number;
  log: (line: string) => void;
}

const BACKGROUND_SAMPLE_MS = 2000;

/** Cores busy over `ms` with anything but the broker and this process. */
async function backgroundCores(brokerPid: number | null, ms: number): Promise<number | null> {
  const cpu0 = machineCpu();
  const broker0 = brokerPid === null ? 0 : (processCpuSeconds(brokerPid) ?? 0);
  const self0 = process.cpuUsage();
  await sleep(ms);
  const cpu1 = machineCpu();
  const broker1 = brokerPid === null ? 0 : (processCpuSeconds(brokerPid) ?? 0);
  const self = process.cpuUsage(self0);
  if (cpu0 === null || cpu1 === null) return null;
  const busy = cpu1.busySeconds - cpu0.busySeconds - (broker1 - broker0) - (self.user + self.system) / 1e6;
  return Math.max(0, busy) / ((cpu1.totalSeconds - cpu0.totalSeconds) / os.availableParallelism());
}

/**
 * Other processes on a shared machine take cores from the scorers: wait (bounded) until
 * they use less than `quietCores`, and say how busy they were when the run starts.
 */
async function waitForQuiet(brokerPid: number | null, opts: ScorerRunOptions): Promise<number | null> {
  const deadline = Date.now() + opts.quietWaitMs;
  let background = await backgroundCores(brokerPid, BACKGROUND_SAMPLE_MS);
  while (background !== null && background > opts.quietCores && Date.now() < deadline) {
    opts.log(`  other processes use ${background.toFixed(2)} cores; waiting for < ${opts.quietCores} (up to ${Math.ceil((deadline - Date.now()) / 1000)} s more)`);
    background = await backgroundCores(brokerPid, BACKGROUND_SAMPLE_MS);
  }
  return background;
}

const SAMPLE_MS = 1000;
const STEADY_MIN_SECONDS = 5;

interface ScoredSample {
  atMs: number;
  /** textstream_model_samples_scored_total summed over the scorers. */
  scored: number;
}

/** See ScorerRun.steadyMessagesPerSecond. */
function steadyRate(samples: readonly ScoredSample[], settledAtMs: number | null, messages: number): number | null {
  if (settledAtMs === null) return null;
  const from = samples.find((s) => s.atMs >= settledAtMs && s.scored >= messages / 4);
  const to = samples.find((s) => s.scored >= (3 * messages) / 4);
  if (from === undefined || to === undefined || (to.atMs - from.atMs) / 1000 < STEADY_MIN_SECONDS) return null;
  return (to.scored - from.scored) / ((to.atMs - from.atMs) / 1000);
}

/** A counter's value in /metrics text (summed over its labels), or null when absent. */
function counter(metrics: string | null, name: string): number | null {
  if (!metrics) return null;
  const values = [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'gm'))].map((m) => Number(m[1]));
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0);
}

const since = (fromMs: number, atMs: number | undefined): number | null => (atMs === undefined ? null : (atMs - fromMs) / 1000);

export async function runScorers(target: BenchTarget, admin: Admin, opts: ScorerRunOptions): Promise<ScorerRun> {
  const name = `s${opts.scorers}-t${opts.threads}-r${opts.rep}`;
  const groupId = `${target.topic}-${name}`;
  const deadLetterTopic = `${target.topic}.dlq.${name}`;
  const sinkDir = path.join(target.dir, name, 'out');
  await admin.createTopics({
    topics: [{ topic: deadLetterTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2097152' }] }],
    waitForLeaders: true,
  });
  const file = await writePipeline(path.join(target.dir, name, 'scorer.yaml'), pipelineFor(target, { groupId, sinkDir, deadLetterTopic }));
  const env = childEnv(opts.threads);

  const backgroundBefore = await waitForQuiet(target.brokerPid, opts);
  const cpu0 = machineCpu();
  const self0 = process.cpuUsage();
  const broker0 = target.brokerPid === null ? null : processCpuSeconds(target.brokerPid);
  const started = Date.now();
  const samples: ScoredSample[] = [];
  let nextSampleAt = started;
  const procs: WorkerProcess[] = Array.from({ length: opts.scorers }, () =>
    spawnWorker({ cli: cliOf(target), args: ['run', file, '--role', 'score', '--json', '--log-level', 'info'], env }),
  );
  let doneAt: number;
  let metrics: (string | null)[];
  let cpuSeconds: (number | null)[];
  let cpu1: ReturnType<typeof machineCpu>;
  let broker1: number | null;
  let self: NodeJS.CpuUsage;
  try {
    for (;;) {
      const committed = await committedCount(admin, groupId, target.topic);
      if (committed >= target.messages) break;
      if (Date.now() >= nextSampleAt) {
        nextSampleAt += SAMPLE_MS;
        const at = Date.now();
        const texts = await Promise.all(procs.map((p) => (p.metricsPort === null ? Promise.resolve('') : scrape(p.metricsPort))));
        // A scorer that did not answer this time would make the sum dip: no sample then.
        if (texts.every((t) => t !== '')) samples.push({ atMs: at, scored: texts.reduce((n, t) => n + (counter(t, 'textstream_model_samples_scored_total') ?? 0), 0) });
      }
      const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
      if (dead !== undefined) {
        throw new Error(`a scorer exited (${dead.child.exitCode ?? dead.child.signalCode}) before the run finished: ${dead.stderrTail.join(' | ')}`);
      }
      if (Date.now() - started > opts.timeoutMs) throw new Error(`not finished within ${opts.timeoutMs / 1000} s (${committed} of ${target.messages} committed)`);
      await sleep(100);
    }
    doneAt = Date.now();
    // Read before the scorers drain, so shutdown is not counted.
    cpuSeconds = procs.map((p) => processCpuSeconds(p.child.pid));
    cpu1 = machineCpu();
    broker1 = target.brokerPid === null ? null : processCpuSeconds(target.brokerPid);
    self = process.cpuUsage(self0);
    metrics = await Promise.all(procs.map(async (p) => (p.metricsPort === null ? null : scrape(p.metricsPort))));
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
  }
  const exits = await Promise.all(procs.map((p) => p.exited));
  const seconds = (doneAt - started) / 1000;
  const assignedAt = procs.map((p) => p.events.get(StartupEvents.PARTITIONS_ASSIGNED));
  const settled = assignedAt.every((t) => t !== undefined) ? since(started, Math.max(...assignedAt)) : null;
  const brokerCpuSeconds = broker0 !== null && broker1 !== null ? broker1 - broker0 : null;
  const scorerCpu = cpuSeconds.reduce<number | null>((sum, c) => (sum === null || c === null ? null : sum + c), 0);
  const otherCpuSeconds =
    cpu0 && cpu1 && scorerCpu !== null ? Math.max(0, cpu1.busySeconds - cpu0.busySeconds - scorerCpu - (brokerCpuSeconds ?? 0) - (self.user + self.system) / 1e6) : null;
  opts.log(`  ${opts.scorers} scorer(s): ${seconds.toFixed(1)} s; checking the output`);
  let verification: Verification | string;
  try {
    verification = await verifyRun({ brokers: target.brokers, topic: target.topic, deadLetterTopic, outDir: sinkDir });
  } catch (err) {
    verification = `not verified: ${err instanceof Error ? err.message : String(err)}`;
  }
  return {
    scorers: opts.scorers,
    threads: opts.threads,
    rep: opts.rep,
    messages: target.messages,
    seconds,
    messagesPerSecond: target.messages / seconds,
    groupSettledAt: settled,
    steadyMessagesPerSecond: steadyRate(samples, settled === null ? null : started + settled * 1000, target.messages),
    machineBusy: cpu0 && cpu1 ? (cpu1.busySeconds - cpu0.busySeconds) / Math.max(1e-9, cpu1.totalSeconds - cpu0.totalSeconds) : null,
    brokerCpuSeconds,
    otherCpuSeconds,
    backgroundBefore,
    perScorer: procs.map((p, i) => {
      const summary = summaryOf(p);
      const stages = summary?.stages as Record<string, { seconds: number }> | undefined;
      return {
        pid: p.child.pid ?? null,
        backendAt: since(p.spawnedAtMs, p.events.get(StartupEvents.BACKEND)),
        snapshotLoadedAt: since(p.spawnedAtMs, p.events.get(StartupEvents.SNAPSHOT_LOADED)),
        startedAt: since(p.spawnedAtMs, p.events.get(StartupEvents.WORKER_STARTED)),
        lastAssignedAt: since(started, assignedAt[i]),
        partitions: p.assigned,
        messages: metrics[i] ? finished(metrics[i]) : null,
        backpressurePauses: counter(metrics[i] ?? null, 'textstream_kafka_backpressure_pauses_total'),
        rebalances: counter(metrics[i] ?? null, 'textstream_kafka_rebalances_total'),
        cpuSeconds: cpuSeconds[i] ?? null,
        exitCode: exits[i]!.code,
        exitSignal: exits[i]!.signal,
        stages: stages ? Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, v.seconds])) : null,
        warnings: p.warnings,
      };
    }),
    verification,
  };
}
