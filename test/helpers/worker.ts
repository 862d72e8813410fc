/**
 * The Kafka-worker test harness shared by the integration and dashboard tests: a worker
 * pipeline definition, synthetic labelled messages, starting `textstream run`, polling.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOutputPositions } from '../../bench/chaos/verify.js';
import { CLI } from './cli.js';
import type { TestMessage } from './kafka.js';

const WORDS = ['free', 'money', 'offer', 'click', 'now', 'meeting', 'agenda', 'lunch', 'report', 'team', 'win', 'prize'];

/** Message i of a separable stream: label 1 every third message, JSON value, on partition i mod `partitions`. */
export function labelledMessage(i: number, partitions: number): TestMessage {
  const label = i % 3 === 0 ? 1 : 0;
  const words = Array.from({ length: 8 }, (_, j) => WORDS[(i * 7 + j * (label ? 1 : 5)) % WORDS.length]);
  return { key: `m${i}`, partition: i % partitions, value: JSON.stringify({ id: `m${i}`, text: words.join(' '), label }) };
}

export interface WorkerPipeline {
  name: string;
  brokers: string;
  topic: string;
  groupId: string;
  /** Output, checkpoints and pipeline files go under it. */
  dir: string;
  /** Names this worker's checkpoint directory. */
  worker: string;
  checkpointEveryRows: number;
  /** Metrics port; 0 picks a free one. */
  metricsPort: number;
}

/**
 * A worker pipeline tuned for tests: fast commits and rebalances, a small buffer (so
 * backpressure shows), small batches, files and bootstrap window.
 */
export function workerPipelineYaml(p: WorkerPipeline): string {
  return `name: ${p.name}
source:
  type: kafka
  brokers: [${p.brokers}]
  topic: ${p.topic}
  groupId: ${p.groupId}
  commitIntervalMs: 500
  shutdownTimeoutMs: 20000
  sessionTimeoutMs: 6000
  maxBufferedMessages: 40
decode:
  maxMessageBytes: 65536
tokenizer:
  bootstrapRows: 20
batch:
  maxRows: 32
  maxAgeMs: 200
model:
  backend: wasm
  checkpointDir: ${path.join(p.dir, `${p.worker}-checkpoint`)}
  checkpointEveryRows: ${p.checkpointEveryRows}
sink:
  dir: ${path.join(p.dir, 'out')}
  rotateRows: 50
metrics:
  host: 127.0.0.1
  port: ${p.metricsPort}
`;
}

export interface RunningWorker {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `textstream run <pipeline> [args]` in `cwd`, its stderr (the JSON logs) collected. */
export function startWorker(pipeline: string, cwd: string, args: readonly string[] = []): RunningWorker {
  const child = spawn(process.execPath, [CLI, 'run', pipeline, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 120_000, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every "partition/offset" in the Parquet output of pipeline `name` under `<dir>/out`, read back by DuckDB. */
export async function outputPositions(dir: string, name = 'w'): Promise<string[]> {
  return (await readOutputPositions(path.join(dir, 'out', name))).positions;
}

/** Each expected "partition/offset" is in the output once, and nothing else is. */
export function assertExactlyOnce(written: string[], expected: string[]): void {
  const unique = new Set(written);
  assert.equal(written.length, unique.size, `${written.length - unique.size} duplicate rows`);
  const missing = expected.filter((p) => !unique.has(p));
  assert.deepEqual(missing, [], `${missing.length} produced messages missing from the output`);
  assert.equal(unique.size, expected.length, 'no row that was not produced');
}
