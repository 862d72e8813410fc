/**
 * Kafka workers against the real local broker (scripts/kafka.sh): exactly-once Parquet
 * output across SIGKILL, rebalances and SIGTERM, and dead letters for poison messages.
 * Workers run as real `textstream run` processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { committedOffsets, createTopic, deleteTopic, ensureBroker, produceEach, readTopic, topicMessageCount, uniqueName, type TestMessage } from '../helpers/kafka.js';
import { assertExactlyOnce, labelledMessage, outputPositions, startWorker, waitFor, workerPipelineYaml } from '../helpers/worker.js';
import { seededRandom } from '../helpers/seed.js';

const PARTITIONS = 4;

interface Harness {
  brokers: string;
  topic: string;
  groupId: string;
  dir: string;
  pipelineFile: (worker: string) => Promise<string>;
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }, name: string): Promise<Harness> {
  const brokers = await ensureBroker();
  const topic = uniqueName(name);
  await createTopic(brokers, topic, PARTITIONS);
  await createTopic(brokers, `${topic}.dlq`, 1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-worker-'));
  t.after(async () => {
    await deleteTopic(brokers, topic, `${topic}.dlq`);
    await rm(dir, { recursive: true, force: true });
  });
  const groupId = uniqueName('group');
  return {
    brokers,
    topic,
    groupId,
    dir,
    async pipelineFile(worker) {
      const file = path.join(dir, `${worker}.yaml`);
      await writeFile(file, workerPipelineYaml({ name: 'w', brokers, topic, groupId, dir, worker, checkpointEveryRows: 100, metricsPort: 0 }));
      return file;
    },
  };
}

/** Synthetic labelled messages with JSON values, spread over every partition. */
function goodMessages(from: number, count: number): TestMessage[] {
  return Array.from({ length: count }, (_, k) => labelledMessage(from + k, PARTITIONS));
}

/** Produces messages one by one and returns their "partition/offset" positions, in send order. */
async function produce(brokers: string, topic: string, messages: TestMessage[]): Promise<string[]> {
  return (await produceEach(brokers, topic, messages)).map((p) => `${p.partition}/${p.offset}`);
}

test('should write every message exactly once with two workers, dead-letter poison messages, and drain on SIGTERM', async (t) => {
  const h = await setUp(t, 'two-workers');
  const a = startWorker(await h.pipelineFile('a'), h.dir);
  const b = startWorker(await h.pipelineFile('b'), h.dir);
  t.after(() => {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  });
  const good = await produce(h.brokers, h.topic, goodMessages(0, 300));
  const poison: TestMessage[] = [
    { key: 'bad-json', partition: 0, value: '{"id": "x", "text": ' },
    { key: 'bad-utf8', partition: 1, value: Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
    { key: 'empty', partition: 2, value: JSON.stringify({ id: 'empty', text: '   ', label: 0 }) },
    { key: 'huge', partition: 3, value: JSON.stringify({ id: 'huge', text: 'word '.repeat(20_000), label: 1 }) },
    { key: 'label-yes', partition: 0, value: JSON.stringify({ id: 'yes', text: 'hello there', label: 'yes' }) },
  ];
  const poisonPositions = await produce(h.brokers, h.topic, poison);
  const more = await produce(h.brokers, h.topic, goodMessages(300, 100));
  const expected = [...good, ...more];

  await waitFor('all good messages in Parquet', async () => (await outputPositions(h.dir)).length >= expected.length);
  await readTopic(h.brokers, `${h.topic}.dlq`, poison.length);

  // 400 messages against a 40-message buffer: fetching must have been paused, not buffered.
  const metricsText = (await Promise.all([a, b].map((w) => fetch(/"url":"([^"]+)"/.exec(w.stderr())![1]!).then((r) => r.text())))).join('\n');
  const pauses = [...metricsText.matchAll(/^textstream_kafka_backpressure_pauses_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  assert.ok(pauses > 0, 'backpressure paused the partitions');
  assert.match(metricsText, /^textstream_offsets_committed_total\{[^}]*\} [1-9]/m);

  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  assert.equal(await b.exited, 0, b.stderr());
  assertExactlyOnce(await outputPositions(h.dir), expected);
  // The dead-letter topic is at-least-once (docs/kafka.md): a rebalance between a letter's
  // send and its offset's commit sends it again. Read to the topic's end; every poison
  // message must be there, as the same letter each time it came, and nothing else.
  const letters = await readTopic(h.brokers, `${h.topic}.dlq`, await topicMessageCount(h.brokers, `${h.topic}.dlq`));
  const letterAt = new Map<string, (typeof letters)[number]>();
  for (const letter of letters) {
    const position = `${letter.headers['textstream.source.partition']?.toString()}/${letter.headers['textstream.source.offset']?.toString()}`;
    const first = letterAt.get(position);
    if (first) assert.deepEqual([letter.value, letter.headers['textstream.reason']], [first.value, first.headers['textstream.reason']], `a letter sent again is the same letter (${position})`);
    else letterAt.set(position, letter);
  }
  assert.deepEqual([...letterAt.keys()].sort(), [...poisonPositions].sort(), 'every poison message, and only those, is a dead letter');
  const reasons = [...letterAt.values()].map((l) => l.headers['textstream.reason']?.toString()).sort();
  assert.deepEqual(reasons, ['empty-text', 'invalid-label', 'invalid-utf8', 'oversized', 'undecodable']);
  assert.deepEqual(letterAt.get(poisonPositions[1]!)!.value, poison[1]!.value, 'the dead letter carries the original bytes');
  assert.equal(expected.length + poison.length, (await outputPositions(h.dir)).length + letterAt.size, 'produced = written + dead letters');

  // Everything consumed was committed: each partition's committed offset is its end.
  const committed = await committedOffsets(h.brokers, h.groupId, h.topic);
  for (let p = 0; p < PARTITIONS; p++) {
    const messagesInPartition = expected.filter((s) => s.startsWith(`${p}/`)).length + poison.filter((m) => m.partition === p).length;
    assert.equal(committed.get(p), String(messagesInPartition), `partition ${p} committed through its last message`);
  }
});

test('should score a topic shorter than the bootstrap window, then exit on --exit-when-idle with a JSON summary', async (t) => {
  const h = await setUp(t, 'idle-exit');
  // 12 messages against bootstrapRows 20: the vocabulary is fitted after the wait instead.
  const expected = await produce(h.brokers, h.topic, goodMessages(0, 12));
  let exited = false;
  const running = runCli(['run', await h.pipelineFile('a'), '--exit-when-idle', '15', '--json'], h.dir, {
    TEXTSTREAM_TOKENIZER_BOOTSTRAP_MAX_WAIT_MS: '1000',
  }).finally(() => (exited = true));
  // Written while the worker still runs: the wait fitted the vocabulary, not the drain at exit.
  await waitFor('the 12 rows in Parquet before the idle exit', async () => !exited && (await outputPositions(h.dir)).length === 12, 14_000);
  const run = await running;
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { topic: string; groupId: string; rowsIn: number; rowsWritten: number; aborted: boolean; files: unknown[] };
  assert.deepEqual(
    { topic: summary.topic, groupId: summary.groupId, rowsIn: summary.rowsIn, rowsWritten: summary.rowsWritten, aborted: summary.aborted },
    { topic: h.topic, groupId: h.groupId, rowsIn: 12, rowsWritten: 12, aborted: false },
  );
  assertExactlyOnce(await outputPositions(h.dir), expected);
  const committed = await committedOffsets(h.brokers, h.groupId, h.topic);
  for (let p = 0; p < PARTITIONS; p++) {
    assert.equal(committed.get(p), String(expected.filter((s) => s.startsWith(`${p}/`)).length), `partition ${p} committed`);
  }
});

test('should stay exactly once when a worker dies between publishing files and committing their offsets', async (t) => {
  const h = await setUp(t, 'kill-after-publish');
  const expected = await produce(h.brokers, h.topic, goodMessages(0, 200));
  const file = await h.pipelineFile('a');
  const crashed = await runCli(['run', file, '--inject-fault', 'kill-after-publish:2'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(crashed.code, null, `killed by SIGKILL, not an exit:\n${crashed.stderr}`);
  assert.match(crashed.stderr, /injected fault: SIGKILL after publishing, before committing/);
  assert.ok((await outputPositions(h.dir)).length > 0, 'files were published before the crash');

  const restarted = await runCli(['run', file, '--exit-when-idle', '8'], h.dir, {}, { timeoutMs: 120_000 });
  assert.equal(restarted.code, 0, restarted.stderr);
  // The files published but not committed tell the restarted worker where to resume.
  assert.match(restarted.stderr, /resuming after the last offset on disk/);
  assertExactlyOnce(await outputPositions(h.dir), expected);
  // What is on disk is committed too, also where nothing new arrived after the restart.
  const committed = await committedOffsets(h.brokers, h.groupId, h.topic);
  for (let p = 0; p < PARTITIONS; p++) {
    assert.equal(committed.get(p), String(expected.filter((s) => s.startsWith(`${p}/`)).length), `partition ${p} committed through its end`);
  }
});

test('should relearn, without writing them again, the messages a crash took from the model since its checkpoint', async (t) => {
  const h = await setUp(t, 'retrain');
  // Checkpoints only when a worker stops: the crash below loses everything learnt after the first run.
  const file = path.join(h.dir, 'retrain.yaml');
  await writeFile(file, workerPipelineYaml({ name: 'w', brokers: h.brokers, topic: h.topic, groupId: h.groupId, dir: h.dir, worker: 'r', checkpointEveryRows: 0, metricsPort: 0 }));
  const run = (...args: string[]) => runCli(['run', file, ...args], h.dir, {}, { timeoutMs: 120_000 });

  const first = await produce(h.brokers, h.topic, goodMessages(0, 200));
  assert.equal((await run('--exit-when-idle', '6')).code, 0);
  const second = await produce(h.brokers, h.topic, goodMessages(200, 200));
  const crashed = await run('--inject-fault', 'kill-after-publish:3');
  assert.equal(crashed.code, null, crashed.stderr);
  const writtenBeforeCrash = (await outputPositions(h.dir)).length - first.length;
  assert.ok(writtenBeforeCrash > 0 && writtenBeforeCrash < 200, `${writtenBeforeCrash} rows of the second batch written before the crash`);

  const restarted = await run('--exit-when-idle', '6', '--json');
  assert.equal(restarted.code, 0, restarted.stderr);
  const summary = JSON.parse(restarted.stdout) as { rowsIn: number; rowsRetrained: number };
  assert.match(restarted.stderr, /re-training the model on the messages between its checkpoint and the resume point/);
  assert.deepEqual({ retrained: summary.rowsRetrained, new: summary.rowsIn }, { retrained: writtenBeforeCrash, new: 200 - writtenBeforeCrash });
  assertExactlyOnce(await outputPositions(h.dir), [...first, ...second]);
  // The model has seen every message exactly once across the three runs.
  // model.checkpointDir holds a checkpoint root per topic.
  const checkpoints = path.join(h.dir, 'r-checkpoint', h.topic);
  const latest = (await readFile(path.join(checkpoints, 'LATEST'), 'utf8')).trim();
  const manifest = JSON.parse(await readFile(path.join(checkpoints, latest, 'manifest.json'), 'utf8')) as { rowsSeen: number; trainedThrough: Record<string, Record<string, string>> };
  assert.equal(manifest.rowsSeen, 400);
  const ends = Object.fromEntries(Array.from({ length: PARTITIONS }, (_, p) => [String(p), String(100 - 1)]));
  assert.deepEqual(manifest.trainedThrough, { [h.topic]: ends });
});

test('should stay exactly once when a worker is SIGKILLed mid-stream and restarted', async (t) => {
  const h = await setUp(t, 'sigkill');
  const pipeline = await h.pipelineFile('a');
  const first = startWorker(pipeline, h.dir);
  t.after(() => first.child.kill('SIGKILL'));
  // Enough messages that the kill lands mid-stream even with the fused LSTM (≈ 1 000+
  // rows/s here): the worker must not have finished when the kill comes.
  const expected = await produce(h.brokers, h.topic, goodMessages(0, 4_000));
  // Kill at a random point once some files are durable (and some offsets committed); the
  // seed is in the test's diagnostics, so a failure can be replayed.
  const killAfter = 60 + Math.floor(seededRandom(t)() * 200);
  await waitFor(
    `${killAfter} rows written and a checkpoint saved`,
    async () => /checkpoint saved/.test(first.stderr()) && (await outputPositions(h.dir)).length >= killAfter,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  const writtenBeforeKill = (await outputPositions(h.dir)).length;
  assert.ok(writtenBeforeKill < expected.length, 'the kill happened mid-stream');

  const second = startWorker(pipeline, h.dir);
  t.after(() => second.child.kill('SIGKILL'));
  await waitFor('all messages in Parquet', async () => (await outputPositions(h.dir)).length >= expected.length);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
  assertExactlyOnce(await outputPositions(h.dir), expected);
  assert.match(second.stderr(), /resumed from checkpoint/, 'the restarted worker restores the model');
});

test('should stay exactly once when a third worker joins and then leaves mid-stream', async (t) => {
  const h = await setUp(t, 'rebalance');
  const a = startWorker(await h.pipelineFile('a'), h.dir);
  const b = startWorker(await h.pipelineFile('b'), h.dir);
  t.after(() => {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  });
  const expected = await produce(h.brokers, h.topic, goodMessages(0, 200));
  await waitFor('some rows written', async () => (await outputPositions(h.dir)).length >= 50);

  const c = startWorker(await h.pipelineFile('c'), h.dir);
  t.after(() => c.child.kill('SIGKILL'));
  await waitFor('the third worker to get partitions', () => /partitions assigned/.test(c.stderr()), 60_000);
  expected.push(...(await produce(h.brokers, h.topic, goodMessages(200, 200))));
  await waitFor('the third worker to write', async () => (await outputPositions(h.dir)).length >= 250);
  c.child.kill('SIGTERM');
  assert.equal(await c.exited, 0, c.stderr());
  expected.push(...(await produce(h.brokers, h.topic, goodMessages(400, 100))));

  await waitFor('all messages in Parquet', async () => (await outputPositions(h.dir)).length >= expected.length);
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.stderr());
  assert.equal(await b.exited, 0, b.stderr());
  assertExactlyOnce(await outputPositions(h.dir), expected);
  // Each worker logs its assignment once at start; a second one means it was rebalanced.
  for (const w of [a, b]) assert.ok((w.stderr().match(/partitions assigned/g) ?? []).length >= 2, 'a rebalance happened');
});
