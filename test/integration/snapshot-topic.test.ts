import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { SourceError } from '../../src/errors.js';
import type { CheckpointState } from '../../src/model/checkpoint.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { encodeSnapshot, makeSnapshot, type ModelSnapshot } from '../../src/model/snapshot-codec.js';
import { IgnoredReasons } from '../../src/snapshots/chunks.js';
import { readLatestSnapshots, SnapshotWatcher } from '../../src/snapshots/reader.js';
import { ensureSnapshotTopic, ensureSnapshotTopicOn, makeSnapshotProducer, publishSnapshot, snapshotMessages, type SnapshotTopic } from '../../src/snapshots/topic.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { createTopic, deleteTopic, ensureBroker, uniqueName } from '../helpers/kafka.js';
import { KERAS_SEED_NETWORK, SMALL_NETWORK, SyntheticStream, useWasm } from '../model/helpers.js';

/** Kafka's default max.message.bytes: what a topic created without the setting gets. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** Small limits make the small network's ≈ 40 kB snapshot several chunks. */
const SMALL_CHUNKS = 4096;
const LARGER_CHUNKS = 16_384;

let brokers: string;
let kafka: Kafka;
/** A trained small network's state, wrapped into snapshots with different ids and producers. */
let smallState: CheckpointState;

test.before(async () => {
  brokers = await ensureBroker();
  kafka = new Kafka({
    clientId: 'textstream-test',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  await useWasm();
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  try {
    const { maxLen, vocabSize } = SMALL_NETWORK as { maxLen: number; vocabSize: number };
    await learner.process(new SyntheticStream(1, { maxLen, vocabSize, rows: 16 }).batch());
    smallState = await learner.checkpointState(null);
  } finally {
    learner.dispose();
  }
});

interface TestContext {
  after: (fn: () => Promise<void> | void) => void;
  diagnostic: (message: string) => void;
}

/** A fresh snapshot topic (made by ensureSnapshotTopic), deleted after the test. */
async function snapshotTopic(t: TestContext): Promise<SnapshotTopic> {
  const topic = uniqueName('test-snapshots');
  t.after(() => deleteTopic(brokers, topic));
  return ensureSnapshotTopicOn(kafka, topic);
}

async function connectedProducer(t: TestContext): Promise<Producer> {
  const producer = makeSnapshotProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  return producer;
}

function small(producer: string, id: string): ModelSnapshot {
  return makeSnapshot(smallState, { producer, id });
}

/** The chunk records of a snapshot, for tests that write only some of them. */
function chunksOf(snapshot: ModelSnapshot, maxMessageBytes: number): Message[] {
  return snapshotMessages(encodeSnapshot(snapshot), snapshot, maxMessageBytes);
}

async function sendEach(producer: Producer, topic: string, messages: readonly Message[]): Promise<void> {
  for (const message of messages) await producer.send({ topic, acks: -1, messages: [message] });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('should round-trip a full-size model snapshot larger than 1 MB through a topic with the default message limit', async (t) => {
  const learner = PrequentialLearner.create({ network: { ...KERAS_SEED_NETWORK, seed: 11 }, trainBatchSize: 32 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(3, { maxLen: learner.network.maxLen, vocabSize: learner.network.vocabSize, rows: 32 });
  // One step, so Adam's moments exist and travel too (≈ 3× the weights).
  await learner.process(stream.batch());
  const tokenizer = new Tokenizer({ numWords: learner.network.vocabSize, maxLen: learner.network.maxLen }).fitOnTexts(['win a free prize', 'lunch at noon']).freeze();
  const snapshot = makeSnapshot(await learner.checkpointState(tokenizer.toJSON()), { producer: 'trainer-0' });

  const topic = await snapshotTopic(t);
  assert.equal(topic.created, true);
  assert.equal(topic.cleanupPolicy, 'compact');
  assert.equal(topic.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
  const producer = await connectedProducer(t);

  let started = performance.now();
  const published = await publishSnapshot(producer, topic.topic, snapshot, { maxMessageBytes: topic.maxMessageBytes });
  const publishMs = performance.now() - started;
  assert.ok(published.payloadBytes > 1024 * 1024, `payload ${published.payloadBytes} bytes`);
  assert.ok(published.chunks > 1);
  assert.equal(published.chunks, Math.ceil(published.payloadBytes / (topic.maxMessageBytes - 2048)), 'chunks are nearly as large as the topic allows');
  assert.equal(BigInt(published.lastOffset) - BigInt(published.firstOffset), BigInt(published.chunks - 1));

  started = performance.now();
  const read = await readLatestSnapshots(kafka, topic.topic, { timeoutMs: 20_000 });
  const readMs = performance.now() - started;
  t.diagnostic(
    `full-size snapshot: ${published.payloadBytes} bytes in ${published.chunks} chunks; publish ${publishMs.toFixed(0)} ms, read ${readMs.toFixed(0)} ms`,
  );
  assert.deepEqual(read.ignored, []);
  assert.equal(read.snapshots.length, 1);
  const [received] = read.snapshots as [ModelSnapshot];
  assert.equal(received.id, snapshot.id);
  assert.equal(received.modelVersion, 1);
  assert.ok(Buffer.from(encodeSnapshot(received)).equals(Buffer.from(encodeSnapshot(snapshot))), 'the snapshot arrives bit-identical');

  const restored = await PrequentialLearner.fromCheckpoint(received);
  t.after(() => restored.dispose());
  const batch = stream.batch();
  const expected = await learner.score(batch);
  const actual = await restored.score(batch);
  assert.ok(Buffer.from(actual.scores.buffer).equals(Buffer.from(expected.scores.buffer)), 'the restored model scores bit-identically');
});

test('should return the latest snapshot of each producer', async (t) => {
  const { topic, maxMessageBytes } = await snapshotTopic(t);
  const producer = await connectedProducer(t);
  for (const snapshot of [small('trainer-a', 'a-1'), small('trainer-b', 'b-1'), small('trainer-a', 'a-2')]) {
    await publishSnapshot(producer, topic, snapshot, { maxMessageBytes });
  }
  const read = await readLatestSnapshots(kafka, topic);
  assert.deepEqual(
    read.snapshots.map((s) => [s.producer, s.id]),
    [
      ['trainer-b', 'b-1'],
      ['trainer-a', 'a-2'],
    ],
  );
  assert.deepEqual(read.ignored, []);
  assert.equal(read.highWatermark, '3');
});

test('should let a newer snapshot with fewer chunks supersede an older one, also after compaction left the older one\'s extra chunks', async (t) => {
  const { topic } = await snapshotTopic(t);
  const producer = await connectedProducer(t);
  const older = await publishSnapshot(producer, topic, small('trainer-a', 'older'), { maxMessageBytes: SMALL_CHUNKS });
  const newer = await publishSnapshot(producer, topic, small('trainer-a', 'newer'), { maxMessageBytes: LARGER_CHUNKS });
  assert.ok(newer.chunks < older.chunks, `${newer.chunks} < ${older.chunks} chunks`);
  let read = await readLatestSnapshots(kafka, topic);
  assert.deepEqual(read.snapshots.map((s) => s.id), ['newer']);
  assert.deepEqual(read.ignored, []);

  // What compaction leaves of that log: the newer snapshot's keys replaced the older one's
  // first chunks, while its extra chunks (keys no newer record has) stay before it.
  const compacted = await snapshotTopic(t);
  const olderChunks = chunksOf(small('trainer-a', 'older'), SMALL_CHUNKS);
  await sendEach(producer, compacted.topic, olderChunks.slice(newer.chunks));
  await publishSnapshot(producer, compacted.topic, small('trainer-a', 'newer'), { maxMessageBytes: LARGER_CHUNKS });
  read = await readLatestSnapshots(kafka, compacted.topic);
  assert.deepEqual(read.snapshots.map((s) => s.id), ['newer']);
  assert.deepEqual(
    read.ignored.map((i) => [i.reason, i.id]),
    [[IgnoredReasons.SUPERSEDED, 'older']],
  );
  assert.match(read.ignored[0]!.message, new RegExp(`topic ${compacted.topic}: snapshot older from trainer-a was never completed \\(${olderChunks.length - newer.chunks} of ${olderChunks.length} chunks\\) and is superseded by newer`));
});

test('should ignore an incomplete snapshot, saying why, and keep the producer\'s last complete one', async (t) => {
  const { topic, maxMessageBytes } = await snapshotTopic(t);
  const producer = await connectedProducer(t);
  await publishSnapshot(producer, topic, small('trainer-a', 'complete'), { maxMessageBytes });
  const cut = chunksOf(small('trainer-a', 'cut-short'), SMALL_CHUNKS);
  await sendEach(producer, topic, cut.slice(0, 2));
  const read = await readLatestSnapshots(kafka, topic);
  assert.deepEqual(read.snapshots.map((s) => s.id), ['complete']);
  assert.equal(read.ignored.length, 1);
  const [ignored] = read.ignored;
  assert.equal(ignored!.reason, IgnoredReasons.INCOMPLETE);
  assert.equal(ignored!.id, 'cut-short');
  assert.equal(ignored!.producer, 'trainer-a');
  assert.deepEqual([ignored!.firstOffset, ignored!.lastOffset], ['1', '2']);
  assert.equal(ignored!.message, `topic ${topic}: snapshot cut-short from trainer-a is incomplete: 2 of ${cut.length} chunks (a publish cut short or still running)`);
});

test('should skip a snapshot with a damaged chunk and a record that is not a chunk', async (t) => {
  const { topic, maxMessageBytes } = await snapshotTopic(t);
  const producer = await connectedProducer(t);
  await producer.send({ topic, acks: -1, messages: [{ key: 'stray', value: 'not a snapshot' }] });
  const damaged = chunksOf(small('trainer-a', 'damaged'), SMALL_CHUNKS);
  const value = Buffer.from(damaged[1]!.value as Buffer);
  value[100] = value[100]! ^ 0xff;
  damaged[1] = { ...damaged[1]!, value };
  await sendEach(producer, topic, damaged);
  await publishSnapshot(producer, topic, small('trainer-b', 'intact'), { maxMessageBytes });
  const read = await readLatestSnapshots(kafka, topic);
  assert.deepEqual(read.snapshots.map((s) => s.id), ['intact']);
  assert.deepEqual(
    read.ignored.map((i) => [i.reason, i.id, i.firstOffset]),
    [
      [IgnoredReasons.INVALID_RECORD, null, '0'],
      [IgnoredReasons.CHECKSUM_MISMATCH, 'damaged', '1'],
    ],
  );
  assert.match(read.ignored[0]!.message, /record at offset 0 is not a snapshot chunk: header textstream\.snapshot\.id is missing/);
  assert.match(read.ignored[1]!.message, /snapshot damaged from trainer-a does not match its SHA-256/);
});

test('should tell a watcher about snapshots completed after it started, one being published as it started included', async (t) => {
  const { topic, maxMessageBytes } = await snapshotTopic(t);
  const producer = await connectedProducer(t);
  await publishSnapshot(producer, topic, small('trainer-a', 'before'), { maxMessageBytes });
  // A publish under way while the watcher starts: half its chunks are on the topic.
  const straddling = chunksOf(small('trainer-a', 'straddling'), SMALL_CHUNKS);
  const half = Math.floor(straddling.length / 2);
  await sendEach(producer, topic, straddling.slice(0, half));

  const seen: ModelSnapshot[] = [];
  const waiters: (() => void)[] = [];
  const errors: unknown[] = [];
  const watcher = await SnapshotWatcher.start(kafka, topic, {
    onSnapshot: (s) => {
      seen.push(s);
      waiters.splice(0).forEach((wake) => wake());
    },
    onError: (err) => errors.push(err),
    timeoutMs: 10_000,
  });
  t.after(() => watcher.close());
  const seenCount = (n: number): Promise<void> =>
    withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => (seen.length >= n ? resolve() : void waiters.push(check));
        check();
      }),
      10_000,
      `snapshot ${n} reaching the watcher`,
    );
  assert.deepEqual(watcher.initial.snapshots.map((s) => s.id), ['before']);
  assert.deepEqual(watcher.initial.ignored, [], 'a watcher keeps waiting for an unfinished snapshot');

  await sendEach(producer, topic, straddling.slice(half));
  await seenCount(1);
  await publishSnapshot(producer, topic, small('trainer-b', 'after'), { maxMessageBytes });
  await seenCount(2);
  assert.deepEqual(seen.map((s) => s.id), ['straddling', 'after']);
  assert.deepEqual(watcher.latest().map((s) => s.id), ['straddling', 'after']);
  assert.deepEqual(errors, []);
  await watcher.close();
  await watcher.close();
});

test('should return from an empty topic without a consumer (no group join, no fetch wait)', async (t) => {
  const { topic } = await snapshotTopic(t);
  // What returning at once takes, counted rather than timed: the high watermark 0 says
  // there is nothing to read, so no consumer joins a group or waits on a fetch.
  const consumers = t.mock.method(kafka, 'consumer');
  const read = await readLatestSnapshots(kafka, topic);
  assert.deepEqual(read, { topic, snapshots: [], ignored: [], highWatermark: '0' });
  assert.equal(consumers.mock.callCount(), 0, 'no consumer was made');
});

test('should accept an existing compacted topic with its own message limit and refuse one that cannot hold snapshots', async (t) => {
  const [raised, deleting, partitioned, missing] = ['raised', 'deleting', 'partitioned', 'missing'].map((name) => uniqueName(`test-snapshots-${name}`)) as [string, string, string, string];
  t.after(() => deleteTopic(brokers, raised, deleting, partitioned, missing));
  await createTopic(brokers, raised, 1, { 'cleanup.policy': 'compact', 'max.message.bytes': '4194304' });
  await createTopic(brokers, deleting, 1, { 'cleanup.policy': 'delete' });
  await createTopic(brokers, partitioned, 2, { 'cleanup.policy': 'compact' });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());

  assert.deepEqual(await ensureSnapshotTopic(admin, raised), { topic: raised, created: false, cleanupPolicy: 'compact', maxMessageBytes: 4_194_304 });
  await assert.rejects(ensureSnapshotTopic(admin, deleting), (err: unknown) => {
    assert.ok(err instanceof SourceError);
    assert.equal(err.canRetry, false);
    assert.match(err.message, new RegExp(`snapshot topic ${deleting} has cleanup.policy=delete; it must be compacted`));
    return true;
  });
  await assert.rejects(ensureSnapshotTopic(admin, partitioned), { name: 'SourceError', message: new RegExp(`snapshot topic ${partitioned} has 2 partitions; it needs exactly 1`) });
  await assert.rejects(ensureSnapshotTopic(admin, missing, { create: false }), { message: `snapshot topic ${missing} does not exist; a trainer creates it on its first publish` });
  await assert.rejects(readLatestSnapshots(kafka, missing), { name: 'SourceError', message: /does not exist/ });
});
