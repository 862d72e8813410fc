import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { SinkError } from '../../src/errors.js';
import { readTopicMaxMessageBytes } from '../../src/kafka/topics.js';
import type { DeadLetter } from '../../src/message.js';
import { DeadLetterHeaders, deadLetterToKafkaMessage, KafkaDeadLetterSink } from '../../src/sinks/dead-letter-kafka.js';
import { createTopic, deleteTopic, ensureBroker, readTopic, uniqueName, type ReadMessage } from '../helpers/kafka.js';

function letter(over: Partial<DeadLetter> = {}): DeadLetter {
  return {
    position: { source: 'mail', partition: 2, offset: 9_007_199_254_740_993n, timestampMs: 1_700_000_000_123 },
    reason: 'undecodable',
    detail: 'value is not valid JSON: Unexpected token — ü',
    original: Buffer.from('{"text": '),
    key: Buffer.from('k-1'),
    ...over,
  };
}

function kafkaClient(brokers: string): Kafka {
  return new Kafka({ clientId: 'textstream-test', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100 } });
}

const header = (m: ReadMessage, name: string): string | undefined => {
  const value = m.headers[name];
  return value === undefined ? undefined : String(value);
};

/** A fresh topic per test, deleted afterwards. */
async function freshTopic(t: { after: (fn: () => Promise<void>) => void }, brokers: string, configs: Record<string, string> = {}): Promise<string> {
  const topic = uniqueName('dlq');
  await createTopic(brokers, topic, 1, configs);
  t.after(() => deleteTopic(brokers, topic));
  return topic;
}

test('should map a dead letter to a record with the original bytes, key and position headers', () => {
  const message = deadLetterToKafkaMessage(letter());
  assert.deepEqual(message.key, Buffer.from('k-1'));
  assert.deepEqual(message.value, Buffer.from('{"text": '));
  assert.deepEqual(message.headers, {
    'textstream.reason': 'undecodable',
    'textstream.detail': 'value is not valid JSON: Unexpected token — ü',
    'textstream.source.topic': 'mail',
    'textstream.source.partition': '2',
    'textstream.source.offset': '9007199254740993',
    'textstream.source.timestamp': '1700000000123',
  });
  const bare = deadLetterToKafkaMessage(letter({ key: null, original: new Uint8Array(0), position: { source: 'f', partition: 0, offset: 0n, timestampMs: null } }));
  assert.equal(bare.key, null);
  assert.deepEqual(bare.value, Buffer.alloc(0), 'a tombstone’s letter has an empty value, not a null one');
  assert.equal(bare.headers?.[DeadLetterHeaders.SOURCE_TIMESTAMP], undefined);
});

test('should land letters with bytes and headers intact, invalid UTF-8 and a 2 MB value included', async (t) => {
  const brokers = await ensureBroker();
  const topic = await freshTopic(t, brokers, { 'max.message.bytes': String(4 << 20) });
  const sink = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic });
  t.after(() => sink.close());

  const invalidUtf8 = Uint8Array.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x00, 0x22, 0x7d]);
  const big = Buffer.alloc(2 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const letters: DeadLetter[] = [
    letter(),
    letter({ reason: 'invalid-utf8', detail: 'value is not valid UTF-8 (9 bytes)', original: invalidUtf8, key: Uint8Array.from([0xff, 0x00]) }),
    letter({ reason: 'oversized', detail: 'value is 2097152 bytes, limit is 1048576', original: big, key: null }),
    letter({ reason: 'missing-text', detail: 'message value is null (a tombstone)', original: new Uint8Array(0), position: { source: 'mail', partition: 0, offset: 5n, timestampMs: null } }),
  ];
  await sink.write(letters);
  assert.equal(sink.written, 4);

  const read = await readTopic(brokers, topic, 4);
  assert.equal(read.length, 4);
  const byReason = new Map(read.map((m) => [header(m, DeadLetterHeaders.REASON), m]));
  for (const sent of letters) {
    const got = byReason.get(sent.reason);
    assert.ok(got, `letter ${sent.reason} landed`);
    assert.ok(got.value && Buffer.from(sent.original).equals(got.value), `${sent.reason}: value bytes intact`);
    if (sent.key) assert.ok(got.key && Buffer.from(sent.key).equals(got.key), `${sent.reason}: key intact`);
    else assert.equal(got.key, null);
    assert.equal(header(got, DeadLetterHeaders.DETAIL), sent.detail);
    assert.equal(header(got, DeadLetterHeaders.SOURCE_TOPIC), sent.position.source);
    assert.equal(header(got, DeadLetterHeaders.SOURCE_PARTITION), String(sent.position.partition));
    assert.equal(header(got, DeadLetterHeaders.SOURCE_OFFSET), sent.position.offset.toString());
    assert.equal(header(got, DeadLetterHeaders.SOURCE_TIMESTAMP), sent.position.timestampMs === null ? undefined : String(sent.position.timestampMs));
  }
});

test('should split a write into requests that fit the size limit, keeping order', async (t) => {
  const brokers = await ensureBroker();
  // 40 letters of ~1 KB: one request would be ~40 KB, which this topic rejects.
  const topic = await freshTopic(t, brokers, { 'max.message.bytes': '4000' });
  const sink = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic });
  t.after(() => sink.close());
  // Same key → same partition, so the topic's order is the write order.
  const letters = Array.from({ length: 40 }, (_, i) =>
    letter({ original: Buffer.alloc(900, 0x61 + (i % 26)), position: { source: 'mail', partition: 0, offset: BigInt(i), timestampMs: null } }),
  );
  await sink.write(letters.slice(0, 25));
  await sink.write(letters.slice(25));
  const read = await readTopic(brokers, topic, 40);
  assert.deepEqual(
    read.map((m) => header(m, DeadLetterHeaders.SOURCE_OFFSET)),
    letters.map((l) => l.position.offset.toString()),
  );
  assert.equal(sink.written, 40);
});

test('should fail without retry, naming the setting, when a letter is larger than the topic accepts', async (t) => {
  const brokers = await ensureBroker();
  const topic = await freshTopic(t, brokers, { 'max.message.bytes': '100000' });
  const sink = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic });
  t.after(() => sink.close());
  await assert.rejects(sink.write([letter({ original: Buffer.alloc(150_000) })]), (err: unknown) => {
    assert.ok(err instanceof SinkError);
    assert.equal(err.canRetry, false);
    assert.match(err.message, new RegExp(`dead letter for mail/2/9007199254740993 \\(undecodable\\) is \\d+ bytes, more than dead-letter topic ${topic} accepts \\(max.message.bytes 100000\\)`));
    return true;
  });
  // A limit set wrongly by hand is caught by the broker, and is not retryable either.
  const lying = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic, maxRequestBytes: 1 << 20 });
  t.after(() => lying.close());
  await assert.rejects(lying.write([letter({ original: Buffer.alloc(150_000) })]), (err: unknown) => {
    assert.ok(err instanceof SinkError);
    assert.equal(err.canRetry, false);
    assert.match(err.message, /too large \(MESSAGE_TOO_LARGE\); raise max\.message\.bytes/);
    return true;
  });
});

test('should name a missing topic, refuse writes after close, and close twice', async (t) => {
  const brokers = await ensureBroker();
  const missing = uniqueName('dlq-missing');
  const sink = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic: missing });
  await assert.rejects(sink.write([letter()]), (err: unknown) => {
    assert.ok(err instanceof SinkError);
    assert.equal(err.canRetry, false);
    assert.match(err.message, new RegExp(`dead-letter topic "${missing}" does not exist; create it first`));
    return true;
  });
  await sink.close();
  await sink.close();

  const topic = await freshTopic(t, brokers);
  const open = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic });
  await open.connect();
  await open.write([]);
  await Promise.all([open.close(), open.close()]);
  await assert.rejects(open.write([letter()]), /is closed/);
  assert.throws(() => new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic: '' }), SinkError);
});

test('should create a missing dead-letter topic with the source topic\'s size limit, once', async (t) => {
  const brokers = await ensureBroker();
  const source = await freshTopic(t, brokers, { 'max.message.bytes': String(3 << 20) });
  const topic = uniqueName('dlq-created');
  t.after(() => deleteTopic(brokers, topic));
  const created: number[] = [];
  const createLike = { topic: source, onCreated: (bytes: number) => created.push(bytes) };
  const first = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic, createLike });
  t.after(() => first.close());
  // 2 MB: more than Kafka's default limit, so it lands only if the limit was copied.
  await first.write([{ ...letter(), original: Buffer.alloc(2 << 20, 0x61) }]);
  const second = new KafkaDeadLetterSink({ kafka: kafkaClient(brokers), topic, createLike });
  t.after(() => second.close());
  await second.connect();

  assert.deepEqual(created, [3 << 20], 'created by the first sink only');
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    assert.equal(await readTopicMaxMessageBytes(admin, topic), 3 << 20);
  } finally {
    await admin.disconnect();
  }
  const [landed] = await readTopic(brokers, topic, 1);
  assert.equal(landed!.value?.length, 2 << 20);
});

test('should fail with a retryable SinkError when the broker cannot be reached', async (t) => {
  const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING, connectionTimeout: 200, retry: { retries: 0 } });
  const sink = new KafkaDeadLetterSink({ kafka, topic: 'anything' });
  t.after(() => sink.close());
  await assert.rejects(sink.write([letter()]), (err: unknown) => {
    assert.ok(err instanceof SinkError);
    assert.equal(err.canRetry, true);
    assert.match(err.message, /connecting to dead-letter topic anything failed/);
    return true;
  });
});
