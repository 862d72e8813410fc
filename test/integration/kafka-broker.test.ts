import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createTopic, deleteTopic, ensureBroker, produceMessages, readTopic, uniqueName } from '../helpers/kafka.js';

// The local broker from scripts/kafka.sh, exercised with kafkajs the way the workers use it.

test('should round-trip 100 messages over a 4-partition topic', async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('test-broker');
  await createTopic(brokers, topic, 4);
  t.after(() => deleteTopic(brokers, topic));

  const sent = Array.from({ length: 100 }, (_, i) => ({
    key: `key-${i}`,
    value: JSON.stringify({ id: `m${i}`, text: `message number ${i}`, label: i % 2 }),
    headers: { source: 'test' },
  }));
  const acks = await produceMessages(brokers, topic, sent);
  assert.equal(new Set(acks.map((a) => a.partition)).size, 4, 'keys spread over all 4 partitions');

  const got = await readTopic(brokers, topic, 100, 30_000);
  assert.equal(got.length, 100);
  assert.deepEqual(got.map((m) => m.value!.toString()).sort(), sent.map((m) => m.value).sort());
  assert.ok(got.every((m) => m.headers.source?.toString() === 'test'));
  // Offsets in each partition are 0..n-1 with no gap, and a key always maps to one partition.
  for (let p = 0; p < 4; p++) {
    const offsets = got.filter((m) => m.partition === p).map((m) => Number(m.offset));
    assert.ok(offsets.length > 0, `partition ${p} has messages`);
    assert.deepEqual(offsets, offsets.map((_, i) => i));
  }
  const byKey = new Map(got.map((m) => [m.key!.toString(), m.partition]));
  assert.equal(byKey.size, 100);
});

test('should round-trip a 10 MB message when the topic allows it, and reject it otherwise', async (t) => {
  const brokers = await ensureBroker();
  const big = uniqueName('test-broker-big');
  const small = uniqueName('test-broker-small');
  await createTopic(brokers, big, 1, { 'max.message.bytes': String(16 * 1024 * 1024) });
  await createTopic(brokers, small, 1);
  t.after(() => deleteTopic(brokers, big, small));

  const value = randomBytes(10 * 1024 * 1024);
  await produceMessages(brokers, big, [{ key: 'big', value }]);
  const [got] = await readTopic(brokers, big, 1, 30_000);
  assert.equal(got!.value!.length, value.length);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  assert.equal(sha(got!.value!), sha(value));

  // The broker default (1 MiB) still applies to every other topic.
  await assert.rejects(produceMessages(brokers, small, [{ value }]), /larger than the max message size/);
});
