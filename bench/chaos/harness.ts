/**
 * A chaos run: a stream of labelled messages (and some malformed ones) through several
 * real workers on a dedicated local broker, with faults injected as the run progresses,
 * then every output checked (see verify.ts). Used by `npm run chaos` and, small, by the
 * test suite.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { stringify as toYaml } from 'yaml';
import { mulberry32, shuffle } from '../../src/random.js';
import { committedCount, produce, withDedicatedBroker } from './broker.js';
import { deleteTopics } from '../kafka.js';
import { injectFault, type FaultKind } from './faults.js';
import { verifyRun, type Verification } from './verify.js';
import { WorkerPool } from './workers.js';

export interface ChaosOptions {
  /** Repository root (the built CLI, scripts/). */
  repo: string;
  /** A fresh directory for output, checkpoints, pipelines and logs. */
  dir: string;
  messages: number;
  workers: number;
  partitions: number;
  /** Faults to inject, spread evenly over the run's progress. */
  faults: number;
  /** The kinds to draw from, in turn (shuffled by the seed). */
  kinds: readonly FaultKind[];
  /** The workers' model.checkpointEveryRows. */
  checkpointEveryRows: number;
  /** Messages produced per second while the workers run. */
  ratePerSecond: number;
  /** One malformed JSON message in this many (0: none). */
  poisonEvery: number;
  seed: number;
  /** The dedicated broker's port: broker restarts must not disturb another broker. */
  kafkaPort: number;
  /** The run fails if the output is not complete within this long. */
  timeoutMs: number;
  log: (line: string) => void;
}

export interface ChaosResult {
  verification: Verification;
  /** Injected faults per kind. */
  injected: Partial<Record<FaultKind, number>>;
  /** Worker starts that restored a model checkpoint. */
  checkpointsRestored: number;
  /** Damaged checkpoints moved aside at start. */
  checkpointsQuarantined: number;
  /** Training steps a worker rejected for a NaN or infinite loss or gradient (the nan-loss fault). */
  updatesRejected: number;
  /** Worker starts that removed unfinished temporary files. */
  tempFilesRemoved: number;
  /** Worker exits nobody asked for (restarted by the harness). */
  unexpectedExits: number;
  /** Exit codes of the final SIGTERM (0: a clean drain). */
  finalExitCodes: (number | string)[];
  seconds: number;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  return withDedicatedBroker(opts.repo, opts.kafkaPort, (brokers) => runOnBroker(opts, brokers, started));
}

async function runOnBroker(opts: ChaosOptions, brokers: string[], started: number): Promise<ChaosResult> {
  const kafka = new Kafka({ clientId: 'textstream-chaos', brokers, logLevel: logLevel.NOTHING });
  const topic = `chaos-${Date.now()}`;
  const groupId = `${topic}-workers`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: opts.partitions }], waitForLeaders: true });
    const producing = produce(kafka, topic, opts).then(() => opts.log(`produced ${opts.messages} messages to ${topic}`));
    opts.log(`producing ${opts.messages} messages to ${topic} (${opts.partitions} partitions) on ${brokers[0]} at ${opts.ratePerSecond}/s`);

    const injected: Partial<Record<FaultKind, number>> = {};
    const pool = await startWorkers(opts, brokers, topic, groupId, (worker) => {
      injected['kill-after-publish'] = (injected['kill-after-publish'] ?? 0) + 1;
      opts.log(`worker ${worker} killed itself between publishing and committing, as armed`);
    });
    let finalExitCodes: (number | string)[] = [];
    try {
      await injectAsProgressAllows(opts, pool, admin, { topic, groupId, injected });
      await producing;
      finalExitCodes = await pool.stopAll();
    } finally {
      pool.killAll();
    }
    const logs = (await pool.logs()).join('\n');
    const outputDir = path.join(opts.dir, 'out', 'chaos');
    const verification = await verifyRun({ brokers, topic, deadLetterTopic: `${topic}.dlq`, outDir: outputDir });
    const leftover = (await readdir(outputDir, { recursive: true })).filter((f) => f.endsWith('.inprogress'));
    if (leftover.length > 0) opts.log(`temporary files left after a clean stop: ${leftover.join(', ')}`);
    return {
      verification,
      injected,
      checkpointsRestored: count(logs, /"msg":"resumed from checkpoint"/g),
      checkpointsQuarantined: count(logs, /"msg":"[^"]*; moved it to [^"]*checkpoint[^"]*quarantine/g),
      updatesRejected: count(logs, /"msg":"training step rejected/g),
      tempFilesRemoved: count(logs, /"msg":"removed unfinished temporary files/g),
      unexpectedExits: pool.unexpectedExits,
      finalExitCodes,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await deleteTopics(admin, [topic, `${topic}.dlq`]);
    await admin.disconnect();
  }
}

interface Target {
  topic: string;
  groupId: string;
  injected: Partial<Record<FaultKind, number>>;
}

/**
 * Injects fault i once i/(faults + 1) of the first 80 % of the stream is committed, so
 * faults spread over the run whatever its speed and the last one still meets traffic;
 * then waits until every message is committed.
 */
async function injectAsProgressAllows(opts: ChaosOptions, pool: WorkerPool, admin: Admin, target: Target): Promise<void> {
  const random = mulberry32(opts.seed);
  const order = Array.from({ length: opts.faults }, (_, i) => opts.kinds[i % opts.kinds.length]!);
  shuffle(order, random);
  const deadline = Date.now() + opts.timeoutMs;
  let next = 0;
  let lastLogged = 0;
  for (;;) {
    const committed = await committedCount(admin, target.groupId, target.topic);
    if (committed >= opts.messages && next >= order.length) return;
    if (Date.now() > deadline) throw new Error(`chaos run incomplete after ${opts.timeoutMs / 1000} s: ${committed} of ${opts.messages} committed`);
    if (Date.now() - lastLogged > 10_000) {
      lastLogged = Date.now();
      opts.log(`progress: ${committed} of ${opts.messages} committed, ${next} of ${order.length} faults injected`);
    }
    if (next < order.length && committed >= (0.8 * (next + 1) * opts.messages) / (order.length + 1)) {
      const kind = order[next++]!;
      const what = await injectFault(kind, {
        repo: opts.repo,
        pool,
        random,
        kafkaPort: opts.kafkaPort,
        outputDir: path.join(opts.dir, 'out', 'chaos'),
        // model.checkpointDir holds a root per topic.
        checkpointDir: (worker) => path.join(checkpointDir(opts.dir, worker), target.topic),
      });
      // The armed kill counts when it fires (see onInjectedKill), not when it is armed.
      if (kind !== 'kill-after-publish') target.injected[kind] = (target.injected[kind] ?? 0) + 1;
      opts.log(`fault ${next}/${order.length} ${kind}: ${what}`);
      continue;
    }
    await sleep(500);
  }
}

const checkpointDir = (dir: string, worker: number): string => path.join(dir, `worker-${worker}-checkpoint`);

async function startWorkers(
  opts: ChaosOptions,
  brokers: string[],
  topic: string,
  groupId: string,
  onInjectedKill: (worker: number) => void,
): Promise<WorkerPool> {
  await mkdir(path.join(opts.dir, 'logs'), { recursive: true });
  const pipelines = await Promise.all(
    Array.from({ length: opts.workers }, async (_, worker) => {
      const file = path.join(opts.dir, `worker-${worker}.yaml`);
      await writeFile(
        file,
        toYaml({
          name: 'chaos',
          source: {
            type: 'kafka',
            brokers,
            topic,
            groupId,
            commitIntervalMs: 1000,
            sessionTimeoutMs: 6000,
            shutdownTimeoutMs: 30_000,
            maxBufferedMessages: 2000,
          },
          decode: { maxMessageBytes: 65_536 },
          tokenizer: { bootstrapRows: 500, bootstrapMaxWaitMs: 2000 },
          batch: { maxRows: 256, maxAgeMs: 500 },
          model: { backend: 'wasm', checkpointDir: checkpointDir(opts.dir, worker), checkpointEveryRows: opts.checkpointEveryRows },
          sink: { dir: path.join(opts.dir, 'out'), rotateRows: 2000 },
          metrics: { enabled: false },
        }),
      );
      return file;
    }),
  );
  const pool = new WorkerPool({
    cli: path.join(opts.repo, 'dist', 'src', 'cli', 'main.js'),
    pipelines,
    logDir: path.join(opts.dir, 'logs'),
    // Several workers share two cores: one LSTM thread each.
    env: { ...process.env, TEXTSTREAM_MODEL_LSTM_THREADS: '1' },
    log: opts.log,
    onInjectedKill,
  });
  for (let worker = 0; worker < opts.workers; worker++) pool.start(worker);
  return pool;
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}
