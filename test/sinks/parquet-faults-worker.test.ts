/**
 * The Parquet sink's faults seen from a real `textstream run` worker on the local broker:
 * an output folder that turns read-only mid-stream (the worker blocks, commits nothing,
 * pauses fetching, logs each retry and resumes when the folder is writable again; a
 * SIGTERM meanwhile does not wait for the disk), and a truncated final file found at start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { committedOffsets, createTopic, deleteTopic, ensureBroker, produceEach, uniqueName } from '../helpers/kafka.js';
import { assertExactlyOnce, labelledMessage, outputPositions, startWorker, waitFor, workerPipelineYaml } from '../helpers/worker.js';
import { faultDir, makeReadOnly, readOnlyCode, type Undo } from './fs-faults.js';

const PARTITIONS = 2;
const PIPELINE = 'w';

interface Harness {
  brokers: string;
  topic: string;
  groupId: string;
  dir: string;
  undo: (fn: Undo) => void;
  pipeline: string;
  /** `<dir>/out/w/input=<topic>/partition-<p>` */
  partitionDir: (p: number) => string;
  produce: (from: number, count: number) => Promise<string[]>;
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }, name: string): Promise<Harness> {
  const brokers = await ensureBroker();
  const topic = uniqueName(name);
  await createTopic(brokers, topic, PARTITIONS);
  await createTopic(brokers, `${topic}.dlq`, 1);
  t.after(() => deleteTopic(brokers, topic, `${topic}.dlq`));
  const { dir, undo } = await faultDir(t, 'textstream-sink-worker-');
  const groupId = uniqueName('group');
  const pipeline = path.join(dir, 'a.yaml');
  await writeFile(pipeline, workerPipelineYaml({ name: PIPELINE, brokers, topic, groupId, dir, worker: 'a', checkpointEveryRows: 100, metricsPort: 0 }));
  return {
    brokers,
    topic,
    groupId,
    dir,
    undo,
    pipeline,
    partitionDir: (p) => path.join(dir, 'out', PIPELINE, `input=${topic}`, `partition-${p}`),
    produce: async (from, count) =>
      (await produceEach(brokers, topic, Array.from({ length: count }, (_, k) => labelledMessage(from + k, PARTITIONS)))).map(
        (p) => `${p.partition}/${p.offset}`,
      ),
  };
}

/** Offsets the group has committed, summed over the partitions. */
async function committed(brokers: string, groupId: string, topic: string): Promise<number> {
  return [...(await committedOffsets(brokers, groupId, topic)).values()].reduce((n, offset) => n + Math.max(0, Number(offset)), 0);
}

const logLines = (stderr: string): Array<Record<string, unknown>> =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const retryLines = (stderr: string): Array<Record<string, unknown>> => logLines(stderr).filter((l) => l.msg === 'writing Parquet failed; retrying, nothing is committed meanwhile');

/** A counter's value summed over its series (they carry a pipeline label). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const series = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return series.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

void test('should block without committing while the output folder is read-only, retry with backoff, and write every message exactly once', async (t) => {
  const h = await setUp(t, 'sink-read-only');
  const worker = startWorker(h.pipeline, h.dir);
  t.after(() => worker.child.kill('SIGKILL'));
  const first = await h.produce(0, 40);
  await waitFor('the first 40 rows written and committed', async () => (await outputPositions(h.dir)).length === 40 && (await committed(h.brokers, h.groupId, h.topic)) === 40);
  const metricsUrl = /metrics on (http:\S+)/.exec(worker.stderr())![1]!;
  const pausesBefore = await metric(metricsUrl, 'textstream_kafka_backpressure_pauses_total');

  const readOnly = makeReadOnly([0, 1].map(h.partitionDir), h.undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);
  // More than the worker buffers (source.maxBufferedMessages 40): fetching must pause.
  const second = await h.produce(40, 200);
  await waitFor('four failed attempts logged', () => retryLines(worker.stderr()).length >= 4, 30_000, 100);
  assert.equal(await committed(h.brokers, h.groupId, h.topic), 40, 'nothing is committed while the sink fails');
  assert.equal((await outputPositions(h.dir)).length, 40);
  await waitFor('a backpressure pause', async () => (await metric(metricsUrl, 'textstream_kafka_backpressure_pauses_total')) > pausesBefore, 10_000);
  const retries = retryLines(worker.stderr());
  assert.ok(retries.every((r) => r.code === readOnlyCode() && typeof r.file === 'string'), JSON.stringify(retries[0]));
  const delays = retries.map((r) => r.delayMs as number);
  assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800], 'exponential backoff from 100 ms');

  readOnly.restore();
  await waitFor('all 240 rows written and committed', async () => (await outputPositions(h.dir)).length >= 240 && (await committed(h.brokers, h.groupId, h.topic)) === 240, 60_000);
  assertExactlyOnce(await outputPositions(h.dir), [...first, ...second]);

  // A shutdown while the disk fails does not wait for the disk (the drain deadline is 20 s).
  const again = makeReadOnly([0, 1].map(h.partitionDir), h.undo);
  assert.equal(typeof again, 'object');
  const third = await h.produce(240, 20);
  const retriesSoFar = retryLines(worker.stderr()).length;
  await waitFor('a failed attempt after the second fault', () => retryLines(worker.stderr()).length > retriesSoFar, 30_000, 100);
  worker.child.kill('SIGTERM');
  const code = await worker.exited;
  assert.equal(code, 1, 'a drain that could not write its rows exits non-zero');
  // Told by what it logged, not by the clock: the sink gave up on the signal, and the
  // drain deadline never had to cut the shutdown short.
  assert.match(worker.stderr(), /stopped retrying/);
  assert.doesNotMatch(worker.stderr(), /shutdown deadline passed/);
  assert.equal(await committed(h.brokers, h.groupId, h.topic), 240);
  (again as { restore: () => void }).restore();

  // The next worker writes what the stopped one could not.
  const restarted = await runCli(['run', h.pipeline, '--exit-when-idle', '8'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(restarted.code, 0, restarted.stderr);
  assertExactlyOnce(await outputPositions(h.dir), [...first, ...second, ...third]);
  // A temp file the stopped worker could not delete (read-only folder) is gone too.
  for (const p of [0, 1]) assert.deepEqual((await readdir(h.partitionDir(p))).filter((n) => n.startsWith('.')), []);
});

void test('should quarantine a truncated final file at start and write its uncommitted rows again exactly once', async (t) => {
  const h = await setUp(t, 'sink-truncated');
  const expected = await h.produce(0, 200);
  const crashed = await runCli(['run', h.pipeline, '--inject-fault', 'kill-after-publish:2'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(crashed.code, null, `killed by SIGKILL:\n${crashed.stderr}`);
  // The files published right before the kill: on disk, their offsets not committed.
  const fault = logLines(crashed.stderr).find((l) => /injected fault/.test(String(l.msg)));
  const victim = (fault!.files as string[])[0]!;
  const size = (await stat(victim)).size;
  // A disk error cuts it short after the crash.
  await truncate(victim, Math.floor(size / 2));

  const restarted = await runCli(['run', h.pipeline, '--exit-when-idle', '8'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(restarted.code, 0, restarted.stderr);
  const quarantined = logLines(restarted.stderr).filter((l) => /^quarantined an invalid Parquet file/.test(String(l.msg)));
  assert.equal(quarantined.length, 1, restarted.stderr);
  assert.equal(quarantined[0]!.level, 40, 'logged at warn');
  assert.equal(quarantined[0]!.file, victim);
  assert.match(String(quarantined[0]!.reason), /does not end with the Parquet magic/);
  assert.equal((await stat(String(quarantined[0]!.movedTo))).size, Math.floor(size / 2));
  // Its rows were not committed, so the restarted worker wrote them again: nothing lost, nothing twice.
  assertExactlyOnce(await outputPositions(h.dir), expected);
});

void test('should read again from the topic the offsets of a damaged final file, also when they were committed', async (t) => {
  const h = await setUp(t, 'sink-truncated-committed');
  const expected = await h.produce(0, 120);
  const first = await runCli(['run', h.pipeline, '--exit-when-idle', '6'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await committed(h.brokers, h.groupId, h.topic), 120, 'everything committed');
  // A disk error after the fact cuts a committed file short.
  const files = (await readdir(h.partitionDir(0))).filter((n) => n.endsWith('.parquet')).sort();
  const victim = path.join(h.partitionDir(0), files.at(-1)!);
  await truncate(victim, Math.floor((await stat(victim)).size / 2));

  const restarted = await runCli(['run', h.pipeline, '--exit-when-idle', '6'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.match(restarted.stderr, /quarantined an invalid Parquet file/);
  assert.match(restarted.stderr, /reading again the offsets of a damaged output file/);
  assertExactlyOnce(await outputPositions(h.dir), expected);
});
