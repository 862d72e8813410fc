/** The parts of topic administration that need no broker; the rest runs in test/sinks/dead-letter-kafka.test.ts and test/integration/snapshot-topic.test.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureTopic, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, maxMessageBytesOf, RECORD_BATCH_OVERHEAD } from '../../src/kafka/topics.js';
import type { Admin } from '../../src/kafka/types.js';

/** An admin that knows `topics` and records createTopics requests; `createdByOther`: createTopics answers false. */
function fakeAdmin(topics: string[], createdByOther = false): { admin: Admin; requests: unknown[] } {
  const requests: unknown[] = [];
  const admin = {
    listTopics: () => Promise.resolve([...topics]),
    createTopics: (request: unknown) => {
      requests.push(request);
      return Promise.resolve(!createdByOther);
    },
  };
  return { admin: admin as unknown as Admin, requests };
}

test("should read max.message.bytes from a topic's settings, and Kafka's default when it is absent, unreadable or too small", () => {
  assert.equal(maxMessageBytesOf(new Map([['max.message.bytes', '3145728']])), 3_145_728);
  assert.equal(maxMessageBytesOf(null), KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  assert.equal(maxMessageBytesOf(new Map()), KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  assert.equal(maxMessageBytesOf(new Map([['max.message.bytes', 'lots']])), KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  assert.equal(maxMessageBytesOf(new Map([['max.message.bytes', '0']])), KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  assert.equal(maxMessageBytesOf(new Map([['max.message.bytes', '512']])), 512);
  assert.equal(maxMessageBytesOf(new Map([['max.message.bytes', '512']]), RECORD_BATCH_OVERHEAD), KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
});

test('should create a missing topic as described, asking for the description only then', async () => {
  const spec = { numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] };
  const missing = fakeAdmin(['other']);
  assert.equal(await ensureTopic(missing.admin, 't', () => spec), 'created');
  assert.deepEqual(missing.requests, [{ waitForLeaders: true, topics: [{ topic: 't', ...spec }] }]);

  const present = fakeAdmin(['t']);
  assert.equal(await ensureTopic(present.admin, 't', () => assert.fail('must not describe a topic that exists')), 'exists');
  assert.deepEqual(present.requests, []);

  const raced = fakeAdmin([], true);
  assert.equal(await ensureTopic(raced.admin, 't', () => spec), 'exists', 'created first by another process');
  assert.equal(await ensureTopic(fakeAdmin([]).admin, 't', null), 'missing');
});
