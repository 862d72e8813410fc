import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord } from '../../src/sources/decode.js';
import { kafkaMessageToRecord, type KafkaMessageOptions, type KafkaMessageLike } from '../../src/sources/kafka-message.js';
import type { RawRecord } from '../../src/message.js';

const json: KafkaMessageOptions = { format: 'json', fields: { id: 'id', text: 'text', label: 'label' }, maxMessageBytes: 1024 };
const text: KafkaMessageOptions = { ...json, format: 'text' };

function kafka(value: Buffer | string | null, over: Partial<KafkaMessageLike> = {}): KafkaMessageLike {
  return {
    key: null,
    value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    offset: '41',
    timestamp: '1700000000123',
    ...over,
  };
}

const toRecord = (message: KafkaMessageLike, options = json): RawRecord => kafkaMessageToRecord(message, 'mail', 3, options);
/** The record through the decoder, as the worker runs it. */
const decode = (record: RawRecord) => decodeRecord(record, { maxMessageBytes: json.maxMessageBytes });

function assertRejected(record: RawRecord, reason: string, detail: RegExp): void {
  assert.ok(record.rejected, `expected a rejection, got ${JSON.stringify(record.text)}`);
  assert.equal(record.rejected.reason, reason);
  assert.match(record.rejected.detail, detail);
  const decoded = decode(record);
  assert.ok(!decoded.ok);
  assert.equal(decoded.deadLetter.reason, reason);
  assert.equal(decoded.deadLetter.detail, record.rejected.detail);
}

test('should unpack a JSON value into id, text, label and the Kafka position', () => {
  const value = Buffer.from('{"id":"m-1","text":"héllo","label":1,"extra":{"x":[1,2]}}');
  const key = Buffer.from('k');
  const record = toRecord(kafka(value, { key }));
  assert.deepEqual(record.position, { source: 'mail', partition: 3, offset: 41n, timestampMs: 1700000000123 });
  assert.equal(record.id, 'm-1');
  assert.equal(record.text, 'héllo');
  assert.equal(record.label, 1);
  assert.equal(record.original, value, 'original is the value bytes as received');
  assert.equal(record.key, key);
  assert.equal(record.rejected, undefined);
  const decoded = decode(record);
  assert.ok(decoded.ok);
  assert.equal(decoded.message.text, 'héllo');
  assert.equal(decoded.message.label, 1);
  assert.equal(decoded.message.key, key);
});

test('should read ids as strings, numbers, then the key, then topic/partition/offset', () => {
  assert.equal(toRecord(kafka('{"id":"a","text":"t"}', { key: Buffer.from('k') })).id, 'a');
  assert.equal(toRecord(kafka('{"id":12,"text":"t"}')).id, '12');
  assert.equal(toRecord(kafka('{"id":-7,"text":"t"}')).id, '-7');
  assert.equal(toRecord(kafka('{"text":"t"}', { key: Buffer.from('key-ü') })).id, 'key-ü');
  assert.equal(toRecord(kafka('{"id":null,"text":"t"}', { key: Buffer.from('k') })).id, 'k');
  assert.equal(toRecord(kafka('{"text":"t"}')).id, 'mail/3/41');
  // An empty or binary key is no id: the position is used instead.
  assert.equal(toRecord(kafka('{"text":"t"}', { key: Buffer.alloc(0) })).id, 'mail/3/41');
  assert.equal(toRecord(kafka('{"text":"t"}', { key: Buffer.from([0xff, 0xfe]) })).id, 'mail/3/41');
  // Custom field names.
  const fields = { id: 'msg_id', text: 'body', label: 'is_spam' };
  const custom = toRecord(kafka('{"msg_id":"x","body":"b","is_spam":"0","id":"no","text":"no"}'), { ...json, fields });
  assert.equal(custom.id, 'x');
  assert.equal(custom.text, 'b');
  assert.equal(custom.label, '0');
});

test('should reject ids that are not strings or exact integers', () => {
  assertRejected(toRecord(kafka('{"id":{"a":1},"text":"t"}')), 'invalid-id', /field "id" is an object/);
  assertRejected(toRecord(kafka('{"id":true,"text":"t"}')), 'invalid-id', /field "id" is a boolean/);
  assertRejected(toRecord(kafka('{"id":12345678901234567890,"text":"t"}')), 'invalid-id', /not an exact integer id; send it as a string/);
  assertRejected(toRecord(kafka('{"id":1.5,"text":"t"}')), 'invalid-id', /1\.5/);
  const empty = decode(toRecord(kafka('{"id":"","text":"t"}')));
  assert.ok(!empty.ok);
  assert.equal(empty.deadLetter.reason, 'invalid-id');
});

test('should pass labels through for the decoder to judge', () => {
  for (const [label, expected] of [['0', 0], ['1', 1], [0, 0], [1, 1], [null, null]] as const) {
    const decoded = decode(toRecord(kafka(JSON.stringify({ text: 't', label }))));
    assert.ok(decoded.ok);
    assert.equal(decoded.message.label, expected);
  }
  const absent = decode(toRecord(kafka('{"text":"t"}')));
  assert.ok(absent.ok);
  assert.equal(absent.message.label, null);
  for (const label of ['yes', 2, true, [1], { v: 1 }]) {
    const record = toRecord(kafka(JSON.stringify({ text: 't', label })));
    assert.deepEqual(record.label, label);
    const decoded = decode(record);
    assert.ok(!decoded.ok, `label ${JSON.stringify(label)} must be rejected`);
    assert.equal(decoded.deadLetter.reason, 'invalid-label');
    assert.equal(decoded.deadLetter.original, record.original);
  }
});

test('should turn values that are not JSON objects into undecodable dead letters', () => {
  assertRejected(toRecord(kafka('{"text": "t"')), 'undecodable', /^value is not valid JSON: /);
  assertRejected(toRecord(kafka('not json')), 'undecodable', /not valid JSON/);
  assertRejected(toRecord(kafka('[{"text":"t"}]')), 'undecodable', /is JSON but an array, expected an object with a "text" field/);
  assertRejected(toRecord(kafka('"just text"')), 'undecodable', /a string/);
  assertRejected(toRecord(kafka('42')), 'undecodable', /a number/);
  assertRejected(toRecord(kafka('null')), 'undecodable', /null/);
  // Raw control characters are not allowed inside JSON strings; a NUL byte is one.
  assertRejected(toRecord(kafka(Buffer.from('{"text":"a\u0000b"}'))), 'undecodable', /not valid JSON/);
});

test('should treat an empty or whitespace-only value as missing text, like a tombstone', () => {
  assertRejected(toRecord(kafka('')), 'missing-text', /^message value is empty$/);
  assertRejected(toRecord(kafka(' \r\n\t')), 'missing-text', /^message value is only whitespace$/);
});

test('should ignore a leading byte order mark and keep the value as received', () => {
  const value = Buffer.from('\uFEFF{"id":"bom","text":"hi"}');
  const record = toRecord(kafka(value));
  assert.equal(record.rejected, undefined);
  assert.equal(record.text, 'hi');
  assert.equal(record.original, value);
  // Only a leading one: anywhere else it is not JSON.
  assertRejected(toRecord(kafka('{"text":"hi"}\uFEFF')), 'undecodable', /not valid JSON/);
});

test('should name the text field when it is missing, null or not a string', () => {
  assertRejected(toRecord(kafka('{"id":"a"}')), 'missing-text', /field "text" is missing/);
  assertRejected(toRecord(kafka('{"text":null}')), 'missing-text', /field "text" is null/);
  assertRejected(toRecord(kafka('{"text":42}')), 'invalid-text', /field "text" is a number, expected a string/);
  assertRejected(toRecord(kafka('{"text":["a"]}')), 'invalid-text', /field "text" is an array/);
  assertRejected(toRecord(kafka('{"text":{"a":"b"}}')), 'invalid-text', /field "text" is an object/);
  assertRejected(toRecord(kafka('{"text":true}')), 'invalid-text', /field "text" is a boolean/);
  // Only the object's own fields count: "constructor" must not find Object.prototype's.
  const inherited = { ...json, fields: { id: 'toString', text: 'constructor', label: '__proto__' } };
  assertRejected(toRecord(kafka('{}'), inherited), 'missing-text', /field "constructor" is missing/);
  const own = toRecord(kafka('{"constructor":"c"}'), inherited);
  assert.equal(own.text, 'c');
  assert.equal(own.id, 'mail/3/41');
  assert.equal(own.label, null);
});

test('should keep deeply nested and extra fields from getting in the way', () => {
  const deep = `{"nested":${'['.repeat(100_000)}${']'.repeat(100_000)},"text":"t","id":"d"}`;
  const record = toRecord(kafka(deep), { ...json, maxMessageBytes: 1 << 20 });
  assert.equal(record.rejected, undefined);
  assert.equal(record.text, 't');
  assert.equal(record.id, 'd');
  const deepText = toRecord(kafka(`{"text":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`), { ...json, maxMessageBytes: 1 << 20 });
  assertRejected(deepText, 'invalid-text', /field "text" is an object/);
});

test('should keep NUL characters and non-ASCII text that JSON escapes carry', () => {
  const record = toRecord(kafka('{"text":"a\\u0000b \\ud83d\\ude00 日本"}'));
  assert.equal(record.text, 'a\u0000b 😀 日本');
  const decoded = decode(record);
  assert.ok(decoded.ok);
  assert.equal(decoded.message.text, 'a\u0000b 😀 日本');
  // A lone surrogate escape has no UTF-8 form: it would become U+FFFD in every output.
  assertRejected(toRecord(kafka('{"text":"a\\ud800b"}')), 'invalid-utf8', /field "text" has an unpaired surrogate/);
});

test('should reject values that are not valid UTF-8 before parsing them', () => {
  const value = Buffer.concat([Buffer.from('{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
  const record = toRecord(kafka(value));
  assertRejected(record, 'invalid-utf8', /value is not valid UTF-8 \(15 bytes\)/);
  assert.equal(record.original, value);
  const decoded = decode(record);
  assert.ok(!decoded.ok);
  assert.equal(decoded.deadLetter.original, value, 'the dead letter keeps the exact bytes');
  // Overlong encodings and surrogates encoded as UTF-8 are invalid too.
  assertRejected(toRecord(kafka(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))), 'invalid-utf8', /not valid UTF-8/);
  assertRejected(toRecord(kafka(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))), 'invalid-utf8', /not valid UTF-8/);
});

test('should reject a JSON value above the size limit without parsing it', () => {
  // Not JSON at all: had it been parsed, the reason would be undecodable.
  const huge = Buffer.alloc(8 << 20, 0x5b);
  const record = toRecord(kafka(huge), { ...json, maxMessageBytes: 1 << 20 });
  assertRejected(record, 'oversized', /value is 8388608 bytes, limit is 1048576/);
  assert.equal(record.original, huge);
  const atLimit = JSON.stringify({ text: 'x'.repeat(1024 - 11) });
  assert.equal(Buffer.byteLength(atLimit), 1024);
  assert.equal(toRecord(kafka(atLimit)).rejected, undefined);
  assertRejected(toRecord(kafka(JSON.stringify({ text: 'x'.repeat(1024 - 10) }))), 'oversized', /1025 bytes, limit is 1024/);
});

test('should treat a null value (a tombstone) as missing text, keeping the key', () => {
  const key = Buffer.from('gone');
  for (const options of [json, text]) {
    const record = toRecord(kafka(null, { key }), options);
    assertRejected(record, 'missing-text', /tombstone/);
    const decoded = decode(record);
    assert.ok(!decoded.ok);
    assert.equal(decoded.deadLetter.original.byteLength, 0);
    assert.equal(decoded.deadLetter.key, key);
  }
});

test('should take the value bytes as the text in text format', () => {
  const value = Buffer.from('{"not":"parsed"} \u0000 ok');
  const record = toRecord(kafka(value, { key: Buffer.from('k1') }), text);
  assert.equal(record.text, value);
  assert.equal(record.id, 'k1');
  assert.equal(record.label, null);
  assert.equal(record.rejected, undefined);
  const decoded = decode(record);
  assert.ok(decoded.ok);
  assert.equal(decoded.message.text, '{"not":"parsed"} \u0000 ok');
  assert.equal(decoded.message.label, null);
  // Size, UTF-8 and emptiness are the decoder's, with the same reasons as replay.
  const bad = decode(toRecord(kafka(Buffer.from([0x68, 0xc3, 0x28])), text));
  assert.ok(!bad.ok);
  assert.equal(bad.deadLetter.reason, 'invalid-utf8');
  const big = decode(toRecord(kafka(Buffer.alloc(2000, 0x61)), text));
  assert.ok(!big.ok);
  assert.equal(big.deadLetter.reason, 'oversized');
  const empty = decode(toRecord(kafka(' \n'), text));
  assert.ok(!empty.ok);
  assert.equal(empty.deadLetter.reason, 'empty-text');
  assert.equal(toRecord(kafka('x'), text).id, 'mail/3/41');
});

test('should read the Kafka timestamp, and null when there is none', () => {
  assert.equal(toRecord(kafka('{"text":"t"}', { timestamp: '0' })).position.timestampMs, 0);
  assert.equal(toRecord(kafka('{"text":"t"}', { timestamp: '-1' })).position.timestampMs, null);
  assert.equal(toRecord(kafka('{"text":"t"}', { timestamp: '' })).position.timestampMs, null);
  assert.equal(toRecord(kafka('{"text":"t"}', { timestamp: 'x' })).position.timestampMs, null);
});

test('should keep int64 offsets exact', () => {
  const record = toRecord(kafka('{"text":"t"}', { offset: '9223372036854775806' }));
  assert.equal(record.position.offset, 9223372036854775806n);
  assert.equal(record.id, 'mail/3/9223372036854775806');
});
