import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { createTopic, deleteTopic, ensureBroker, readTopic, uniqueName, type ReadMessage } from '../helpers/kafka.js';
import { runCli as run, tempDir } from '../helpers/cli.js';

async function freshTopic(t: { after: (fn: () => Promise<void>) => void }, brokers: string, partitions: number): Promise<string> {
  const topic = uniqueName('produce');
  await createTopic(brokers, topic, partitions);
  t.after(() => deleteTopic(brokers, topic));
  return topic;
}

/** Latin-1 "café" plus a lone 0xFF: not UTF-8, so it cannot travel inside JSON. */
const INVALID_UTF8 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]);
const rows = [
  { id: 'a', text: Buffer.from('hello world'), label: 1 },
  { id: 'b', text: Buffer.from('héllo 日本 😀 "quoted" \\ \n newline'), label: 0 },
  { id: 'c', text: INVALID_UTF8, label: 1 },
  { id: 'd', text: Buffer.from('no label'), label: null },
  { id: 'e', text: Buffer.from('nul \u0000 byte'), label: 2 },
];

async function writeParquet(file: string): Promise<void> {
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY' }, label: { type: 'INT32', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 2 },
  );
  for (const row of rows) await writer.append(row);
  await writer.finish(file);
}

const byKey = (messages: ReadMessage[]): Map<string, ReadMessage> => new Map(messages.map((m) => [m.key?.toString('utf8') ?? '', m]));

test('should produce Parquet rows as JSON values keyed by id, and invalid UTF-8 text as raw bytes', async (t) => {
  const brokers = await ensureBroker();
  const dir = await tempDir(t);
  const file = path.join(dir, 'rows.parquet');
  await writeParquet(file);
  const topic = await freshTopic(t, brokers, 4);

  const result = await run(['produce', '--topic', topic, '--brokers', brokers, file], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`^produced 5 messages \\([\\d.]+ (B|KiB)\\) from .*rows\\.parquet to topic ${topic} in [\\d.]+ s: \\d+ msg/s\\n`));
  assert.match(result.stdout, /1 row\(s\) with text that is not valid UTF-8 were sent as raw bytes/);
  assert.equal(result.stderr, '', 'no progress bar and no logs when stderr is not a terminal');

  const got = byKey(await readTopic(brokers, topic, 5));
  assert.equal(got.size, 5);
  for (const row of rows) {
    const message = got.get(row.id);
    assert.ok(message?.value, `row ${row.id} arrived`);
    if (row.text === INVALID_UTF8) assert.ok(message.value.equals(INVALID_UTF8), 'sent as the raw bytes');
    else assert.deepEqual(JSON.parse(message.value.toString('utf8')), { id: row.id, text: row.text.toString('utf8'), label: row.label });
  }
  // Keyed by id: the same id always lands in the same partition (Kafka's murmur2 partitioner).
  const again = await freshTopic(t, brokers, 4);
  assert.equal((await run(['produce', '--topic', again, '--brokers', brokers, file], dir)).code, 0);
  const second = byKey(await readTopic(brokers, again, 5));
  for (const [key, message] of got) assert.equal(second.get(key)?.partition, message.partition, `key ${key}`);
});

test('should produce raw text values with --format text, round-robin without ids, and stop at --limit', async (t) => {
  const brokers = await ensureBroker();
  const dir = await tempDir(t);
  const file = path.join(dir, 'rows.parquet');
  await writeParquet(file);

  const text = await freshTopic(t, brokers, 1);
  const plain = await run(['produce', '--topic', text, '--brokers', brokers, '--format', 'text', '--no-label-column', file], dir);
  assert.equal(plain.code, 0, plain.stderr);
  const values = await readTopic(brokers, text, 5);
  assert.deepEqual(
    values.map((m) => m.value?.toString('hex')),
    rows.map((r) => r.text.toString('hex')),
  );
  assert.deepEqual(
    values.map((m) => m.key?.toString()),
    rows.map((r) => r.id),
  );

  const spread = await freshTopic(t, brokers, 4);
  const rr = await run(['produce', '--topic', spread, '--brokers', brokers, '--partitions-by', 'round-robin', '--no-id-column', '--limit', '4', file], dir);
  assert.equal(rr.code, 0, rr.stderr);
  assert.match(rr.stdout, /^produced 4 messages/);
  const spreadMessages = await readTopic(brokers, spread, 4);
  assert.deepEqual(spreadMessages.map((m) => m.partition).sort(), [0, 1, 2, 3]);
  for (const m of spreadMessages) {
    assert.equal(m.key, null);
    if (!m.value?.equals(INVALID_UTF8)) assert.equal((JSON.parse(m.value!.toString()) as { id: unknown }).id, null);
  }

  // --json: the same summary as one object.
  const jsonTopic = await freshTopic(t, brokers, 1);
  const asJson = await run(['produce', '--topic', jsonTopic, '--brokers', brokers, '--limit', '3', '--json', file], dir);
  assert.equal(asJson.code, 0, asJson.stderr);
  const summary = JSON.parse(asJson.stdout) as { topic: string; messages: number; aborted: boolean };
  assert.deepEqual([summary.topic, summary.messages, summary.aborted], [jsonTopic, 3, false]);
  assert.equal((await readTopic(brokers, jsonTopic, 3)).length, 3);
});

test('should send JSONL lines byte for byte, malformed ones too, keyed by a parsable id', async (t) => {
  const brokers = await ensureBroker();
  const dir = await tempDir(t);
  const file = path.join(dir, 'poison.jsonl');
  const lines = [
    Buffer.from('{"id":"ok-1","text":"a good one","label":1}'),
    Buffer.from('{"id":"broken","text":'),
    Buffer.from('[1,2,3]'),
    Buffer.concat([Buffer.from('{"id":"latin1","text":"'), INVALID_UTF8, Buffer.from('"}')]),
    Buffer.from('{"id":7,"text":"numeric id","label":"yes"}'),
    Buffer.from('not json at all'),
  ];
  // CRLF endings, an empty line, and no newline after the last line.
  const content = Buffer.concat([
    lines[0]!, Buffer.from('\r\n'), lines[1]!, Buffer.from('\n\n'),
    lines[2]!, Buffer.from('\n'), lines[3]!, Buffer.from('\n'), lines[4]!, Buffer.from('\n'), lines[5]!,
  ]);
  await writeFile(file, content);
  const topic = await freshTopic(t, brokers, 1);

  const result = await run(['produce', '--topic', topic, '--brokers', brokers, file], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^produced 6 messages/);
  assert.match(result.stdout, /1 empty line\(s\) skipped/);
  const got = await readTopic(brokers, topic, 6);
  assert.deepEqual(
    got.map((m) => m.value?.toString('hex')),
    lines.map((l) => l.toString('hex')),
  );
  assert.deepEqual(
    got.map((m) => m.key?.toString() ?? null),
    ['ok-1', null, null, null, '7', null],
  );
  const text = await run(['produce', '--topic', topic, '--brokers', brokers, '--format', 'text', file], dir);
  assert.equal(text.code, 2);
  assert.match(text.stderr, /--format: text applies to Parquet input/);
});

test('should exit 1 naming a missing topic and how to create it, and create it with --partitions', async (t) => {
  const brokers = await ensureBroker();
  const dir = await tempDir(t);
  const file = path.join(dir, 'rows.parquet');
  await writeParquet(file);
  const missing = uniqueName('no-such-topic');
  t.after(() => deleteTopic(brokers, missing));
  const result = await run(['produce', '--topic', missing, '--brokers', brokers, file], dir);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`topic "${missing}" does not exist on ${brokers}; create it with --partitions <n>`));
  assert.match(result.stderr, /kafka-topics\.sh --bootstrap-server .* --create --topic/);
  assert.equal(result.stdout, '');

  const created = await run(['produce', '--topic', missing, '--partitions', '3', '--brokers', brokers, file], dir);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stderr, /"partitions":3.*"msg":"created the topic"/);
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [missing] });
    assert.equal(topics[0]!.partitions.length, 3);
  } finally {
    await admin.disconnect();
  }
  assert.equal((await readTopic(brokers, missing, rows.length)).length, rows.length);
  // The topic exists now: --partitions leaves it as it is.
  const again = await run(['produce', '--topic', missing, '--partitions', '5', '--brokers', brokers, file], dir);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /created the topic/);
});

test('should exit 1 after two connection attempts when no broker listens', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'rows.parquet');
  await writeParquet(file);
  // The debug log shows each attempt (kafkajs' default retries would make six, 4 to 20 s of
  // them); the deadline only catches a hang (killed: code null).
  const args = ['--log-level', 'debug', 'produce', '--topic', 'x', '--brokers', '127.0.0.1:1', '--connection-timeout', '500', file];
  const result = await run(args, dir, {}, { timeoutMs: 60_000 });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /cannot reach Kafka at 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\); is a broker listening there\?/);
  assert.equal(result.stderr.match(/Failed to connect to seed broker/g)?.length, 2, result.stderr);
});

test('should explain itself in --help and reject bad usage with exit 2', async (t) => {
  const dir = await tempDir(t);
  const help = await run(['produce', '--help'], dir);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /produce \[options\] <file>/);
  assert.match(help.stdout, /Examples:/);
  assert.match(help.stdout, /--partitions-by <how>/);
  assert.match(help.stdout, /Exit codes:/);
  assert.equal((await run(['produce', path.join(dir, 'x.parquet')], dir)).code, 2, 'missing --topic');
  assert.equal((await run(['produce', '--topic', 't', '--format', 'xml', 'f.parquet'], dir)).code, 2);
  assert.equal((await run(['produce', '--topic', 't', '--batch-size', '0', 'f.parquet'], dir)).code, 2);
  const csv = await run(['produce', '--topic', 't', 'data.csv'], dir);
  assert.equal(csv.code, 2);
  assert.match(csv.stderr, /expected a \.parquet, \.jsonl or \.ndjson file/);
});

test('should take brokers, SASL and TLS from --pipeline, exiting 2 naming the field when its password variable is unset', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'rows.parquet');
  await writeParquet(file);
  const pipeline = path.join(dir, 'k.yaml');
  await writeFile(
    pipeline,
    'name: k\nsource:\n  type: kafka\n  brokers: [127.0.0.1:1]\n  topic: t\n  groupId: g\n  sasl: {mechanism: scram-sha-512, username: u, passwordEnv: PRODUCE_TEST_PASSWORD}\n',
  );
  const unset = await run(['produce', '--pipeline', pipeline, '--topic', 't', file], dir);
  assert.equal(unset.code, 2, unset.stderr);
  assert.match(unset.stderr, /^textstream: .*k\.yaml: source\.sasl\.passwordEnv: the environment variable PRODUCE_TEST_PASSWORD is not set/m);
  // With the password set it connects to the pipeline's brokers (nothing listens there).
  const set = await run(['produce', '--pipeline', pipeline, '--topic', 't', '--connection-timeout', '500', file], dir, { PRODUCE_TEST_PASSWORD: 'pw-not-printed' });
  assert.equal(set.code, 1);
  assert.match(set.stderr, /cannot reach Kafka at 127\.0\.0\.1:1 /);
  assert.ok(!set.stderr.includes('pw-not-printed') && !set.stdout.includes('pw-not-printed'));
  const parquetPipeline = path.join(dir, 'p.yaml');
  await writeFile(parquetPipeline, 'name: p\nsource: {type: parquet, path: in.parquet}\n');
  const wrongType = await run(['produce', '--pipeline', parquetPipeline, '--topic', 't', file], dir);
  assert.equal(wrongType.code, 2);
  assert.match(wrongType.stderr, /p\.yaml: source\.type: --pipeline needs a kafka source, this pipeline has "parquet"/);
  const help = await run(['produce', '--help'], dir);
  assert.match(help.stdout, /--pipeline <pipeline\.yaml>/);
  assert.match(help.stdout, /source\.sasl and\s+source\.tls/);
});
