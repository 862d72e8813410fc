/**
 * The faults a chaos run injects, each as real as this machine allows: processes are
 * SIGKILLed, the broker is restarted, files are damaged on disk. Each fault returns a
 * short description of what it did, for the run's log.
 */
import { execFile } from 'node:child_process';
import { copyFile, open, readdir, readFile, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { readOnlyCode, setReadOnly } from './read-only.js';
import type { WorkerPool } from './workers.js';

export const FaultKinds = [
  'kill',
  'kill-after-publish',
  'broker-restart',
  'sink-write-failure',
  'truncated-temp-file',
  'corrupt-checkpoint',
  'nan-loss',
] as const;
export type FaultKind = (typeof FaultKinds)[number];

export interface FaultContext {
  repo: string;
  pool: WorkerPool;
  random: () => number;
  /** The dedicated broker's port (scripts/kafka.sh TEXTSTREAM_KAFKA_PORT). */
  kafkaPort: number;
  /** <sink.dir>/<pipeline name>: the workers' shared output. */
  outputDir: string;
  /** The checkpoint root a worker saves its topic's checkpoints to. */
  checkpointDir: (worker: number) => string;
}

export async function injectFault(kind: FaultKind, ctx: FaultContext): Promise<string> {
  switch (kind) {
    case 'kill':
      return killWorker(ctx);
    case 'kill-after-publish':
      return armKillAfterPublish(ctx);
    case 'broker-restart':
      return restartBroker(ctx);
    case 'sink-write-failure':
      return failSinkWrites(ctx);
    case 'truncated-temp-file':
      return leaveTruncatedTempFile(ctx);
    case 'corrupt-checkpoint':
      return corruptCheckpoint(ctx);
    case 'nan-loss':
      return armNanLoss(ctx);
  }
}

function pickRunning(ctx: FaultContext): number {
  const running = ctx.pool.running();
  if (running.length === 0) throw new Error('no worker is running');
  return running[Math.floor(ctx.random() * running.length)]!;
}

async function killWorker(ctx: FaultContext): Promise<string> {
  const worker = pickRunning(ctx);
  await ctx.pool.restart(worker);
  return `SIGKILL worker ${worker}, restarted`;
}

/** Restarts a worker with the hook that SIGKILLs it between publishing files and committing. */
async function armKillAfterPublish(ctx: FaultContext): Promise<string> {
  const worker = pickRunning(ctx);
  const files = 1 + Math.floor(ctx.random() * 2);
  await ctx.pool.restart(worker, ['--inject-fault', `kill-after-publish:${files}`], { armed: true });
  // One fault at a time: wait for it to fire (the pool restarts the worker unarmed).
  const fired = await Promise.race([ctx.pool.exited(worker).then(() => true), sleep(60_000).then(() => false)]);
  return `worker ${worker} restarted to SIGKILL itself after publishing ${files} file(s), before committing${fired ? '' : ' (it had not fired after 60 s)'}`;
}

/**
 * Stops a worker cleanly and starts it again so that one of its first training steps
 * computes a NaN loss: the guard must reject that step, and the worker carry on.
 */
async function armNanLoss(ctx: FaultContext): Promise<string> {
  const worker = pickRunning(ctx);
  const step = 1 + Math.floor(ctx.random() * 5);
  const rejections = async (): Promise<number> => ((await ctx.pool.logs())[worker]!.match(/"msg":"training step rejected/g) ?? []).length;
  const before = await rejections();
  await ctx.pool.kill(worker, 'SIGTERM');
  ctx.pool.start(worker, ['--inject-fault', `nan-loss:${step}`]);
  // One fault at a time: wait until the worker has rejected the step.
  const deadline = Date.now() + 60_000;
  while ((await rejections()) === before && Date.now() < deadline) await sleep(500);
  const fired = Date.now() < deadline;
  return `worker ${worker} restarted to compute a NaN loss at its training step ${step}${fired ? '; rejected' : ' (not rejected after 60 s)'}`;
}

async function restartBroker(ctx: FaultContext): Promise<string> {
  const started = Date.now();
  await promisify(execFile)('bash', ['scripts/kafka.sh', 'restart'], {
    cwd: ctx.repo,
    env: { ...process.env, TEXTSTREAM_KAFKA_PORT: String(ctx.kafkaPort) },
    timeout: 180_000,
  });
  return `broker restarted (down ${((Date.now() - started) / 1000).toFixed(1)} s)`;
}

/** The output's partition folders refuse writes for a few seconds (a full or read-only disk). */
async function failSinkWrites(ctx: FaultContext): Promise<string> {
  const entries = await readdir(ctx.outputDir, { recursive: true, withFileTypes: true }).catch(() => []);
  const dirs = entries.filter((e) => e.isDirectory() && e.name.startsWith('partition-')).map((e) => path.join(e.parentPath, e.name));
  const seconds = 3 + Math.floor(ctx.random() * 4);
  setReadOnly(dirs, true);
  try {
    await sleep(seconds * 1000);
  } finally {
    setReadOnly(dirs, false);
  }
  return `${dirs.length} partition folder(s) read-only (${readOnlyCode()}) for ${seconds} s`;
}

/** What a crash in the middle of writing leaves: half a Parquet file under the temporary name. */
async function leaveTruncatedTempFile(ctx: FaultContext): Promise<string> {
  const worker = pickRunning(ctx);
  await ctx.pool.kill(worker);
  const files = await finalParquetFiles(ctx.outputDir);
  if (files.length === 0) {
    ctx.pool.start(worker);
    return `worker ${worker} SIGKILLed (no published file yet to truncate a copy of)`;
  }
  const source = files[Math.floor(ctx.random() * files.length)]!;
  const first = path.basename(source).split('-')[0]!;
  const temp = path.join(path.dirname(source), `.${first}-chaos-${Date.now()}.parquet.inprogress`);
  await copyFile(source, temp);
  await truncate(temp, Math.floor((await stat(temp)).size / 2));
  await sleep(500);
  ctx.pool.start(worker);
  return `worker ${worker} SIGKILLed; left ${path.relative(ctx.outputDir, temp)} (half a file), restarted`;
}

/** A checkpoint damaged on disk (a bad sector, a copy cut short): flipped bytes in its weights. */
async function corruptCheckpoint(ctx: FaultContext): Promise<string> {
  const worker = pickRunning(ctx);
  await ctx.pool.kill(worker);
  const root = ctx.checkpointDir(worker);
  const latest = (await readFile(path.join(root, 'LATEST'), 'utf8').catch(() => '')).trim();
  let what = 'no checkpoint yet to damage';
  if (latest !== '') {
    const weights = path.join(root, latest, 'weights.bin');
    const handle = await open(weights, 'r+');
    try {
      const { size } = await handle.stat();
      await handle.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, Math.floor(size / 2));
    } finally {
      await handle.close();
    }
    what = `flipped 4 bytes of ${latest}/weights.bin`;
  }
  await sleep(500);
  ctx.pool.start(worker);
  return `worker ${worker} SIGKILLed; ${what}; restarted`;
}

async function finalParquetFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.parquet') && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name));
}
