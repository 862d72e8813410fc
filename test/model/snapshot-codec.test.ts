import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointError } from '../../src/errors.js';
import type { CheckpointState } from '../../src/model/checkpoint.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { decodeSnapshot, encodeSnapshot, makeSnapshot, SNAPSHOT_FORMAT_VERSION, type ModelSnapshot } from '../../src/model/snapshot-codec.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { SMALL_NETWORK, SyntheticStream, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen;
const vocabSize = SMALL_NETWORK.vocabSize;
/** Header: magic 8, version 4, metadata length 4, weight length 8. */
const HEADER_BYTES = 24;

let learner: PrequentialLearner;
let stream: SyntheticStream;
let state: CheckpointState;

test.before(async () => {
  await useWasm();
  learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  stream = new SyntheticStream(5, { maxLen, vocabSize, rows: 16, labelledFraction: 0.75 });
  // Several steps, so Adam's state and the evaluation are not trivial.
  while (learner.modelVersion < 6) await learner.process(stream.batch());
  const tokenizer = new Tokenizer({ numWords: vocabSize, maxLen }).fitOnTexts(['free money now', 'meeting at noon']).freeze();
  state = await learner.checkpointState(tokenizer.toJSON());
});

test.after(() => learner.dispose());

function snapshot(): ModelSnapshot {
  return makeSnapshot(state, { producer: 'trainer-1', id: 'snap-1', publishedAtMs: 1_700_000_000_000 });
}

function weightBytes(s: CheckpointState): Buffer {
  const data = s.artifacts.weightData!;
  return Buffer.concat((Array.isArray(data) ? data : [data]).map((b) => Buffer.from(b)));
}

function flipByte(bytes: Uint8Array, at: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[at] = copy[at]! ^ 0x40;
  return copy;
}

test('should decode an encoded snapshot to exactly the state that was encoded', async (t) => {
  const original = snapshot();
  const bytes = encodeSnapshot(original);
  const decoded = decodeSnapshot(bytes);

  assert.equal(decoded.id, 'snap-1');
  assert.equal(decoded.producer, 'trainer-1');
  assert.equal(decoded.publishedAtMs, 1_700_000_000_000);
  assert.deepEqual(decoded.metrics, learner.evaluation());
  assert.equal(decoded.modelVersion, learner.modelVersion);
  assert.equal(decoded.rowsSeen, learner.rowsSeen);
  assert.deepEqual(decoded.network, state.network);
  assert.deepEqual(decoded.tokenizer, state.tokenizer);
  assert.deepEqual(decoded.evaluation, state.evaluation);
  assert.deepEqual(decoded.adamPowers, state.adamPowers);
  assert.deepEqual(decoded.trainedThrough, state.trainedThrough);
  assert.deepEqual(decoded.artifacts.weightSpecs, state.artifacts.weightSpecs);
  assert.ok(weightBytes(decoded).equals(weightBytes(state)), 'weights and optimizer state are bit-identical');
  // Everything the format carries survives: encoding the decoded snapshot gives the same bytes.
  assert.ok(Buffer.from(encodeSnapshot(decoded)).equals(Buffer.from(bytes)));

  const restored = await PrequentialLearner.fromCheckpoint(decoded, { trainBatchSize: 8 });
  t.after(() => restored.dispose());
  const batch = stream.batch();
  const expected = await learner.score(batch);
  const actual = await restored.score(batch);
  assert.equal(actual.modelVersion, expected.modelVersion);
  assert.ok(Buffer.from(actual.scores.buffer).equals(Buffer.from(expected.scores.buffer)), 'restored scores are bit-identical');
});

test('should take the metrics from the evaluation state unless given', () => {
  const withDefault = makeSnapshot(state, { producer: 'trainer-1' });
  assert.deepEqual(withDefault.metrics, learner.evaluation());
  assert.equal(typeof withDefault.metrics?.accuracy, 'number');
  assert.match(withDefault.id, /^[0-9a-f-]{36}$/);
  assert.notEqual(makeSnapshot(state, { producer: 'trainer-1' }).id, withDefault.id, 'every snapshot gets its own id');
  assert.equal(makeSnapshot({ ...state, evaluation: null }, { producer: 'trainer-1' }).metrics, null);
});

test('should refuse a payload with one damaged byte, saying its SHA-256 does not match', () => {
  const bytes = encodeSnapshot(snapshot());
  for (const at of [HEADER_BYTES + 10, Math.floor(bytes.length / 2), bytes.length - 40, bytes.length - 1]) {
    assert.throws(
      () => decodeSnapshot(flipByte(bytes, at)),
      (err: unknown) => err instanceof CheckpointError && /damaged: its SHA-256 does not match/.test(err.message),
      `byte ${at} of ${bytes.length}`,
    );
  }
});

test('should refuse a truncated payload, saying how long it is and how long it should be', () => {
  const bytes = encodeSnapshot(snapshot());
  assert.throws(() => decodeSnapshot(bytes.subarray(0, bytes.length - 1000)), {
    name: 'CheckpointError',
    message: `snapshot payload is truncated: ${bytes.length - 1000} bytes, the header declares ${bytes.length}`,
  });
  assert.throws(() => decodeSnapshot(bytes.subarray(0, 10)), { message: /truncated: 10 bytes, shorter than the 24-byte header/ });
  assert.throws(() => decodeSnapshot(new Uint8Array(0)), { message: /truncated: 0 bytes/ });
});

test('should refuse bytes after the payload', () => {
  const bytes = encodeSnapshot(snapshot());
  const longer = Buffer.concat([bytes, Buffer.from('xyz')]);
  assert.throws(() => decodeSnapshot(longer), { message: `snapshot payload has 3 unexpected bytes after the ${bytes.length} its header declares` });
});

test('should refuse bytes that are not a snapshot, and a format version it does not know', () => {
  assert.throws(() => decodeSnapshot(Buffer.from('{"modelTopology": {}, "weightSpecs": []}')), {
    name: 'CheckpointError',
    message: /not a textstream snapshot: the payload starts with 7b226d6f64656c54/,
  });
  const newer = Buffer.from(encodeSnapshot(snapshot()));
  newer.writeUInt32LE(SNAPSHOT_FORMAT_VERSION + 1, 8);
  assert.throws(() => decodeSnapshot(newer), { message: `snapshot has format version ${SNAPSHOT_FORMAT_VERSION + 1}; this build reads version ${SNAPSHOT_FORMAT_VERSION}` });
});

test('should name the bad field of a snapshot it cannot encode', () => {
  assert.throws(() => makeSnapshot(state, { producer: 'trainer one' }), { name: 'CheckpointError', message: /snapshot\.producer must be .*"trainer one"/ });
  assert.throws(() => encodeSnapshot({ ...snapshot(), publishedAtMs: Number.NaN }), { message: /snapshot\.publishedAtMs must be milliseconds since the epoch, got NaN/ });
  assert.throws(() => encodeSnapshot({ ...snapshot(), id: '' }), { message: /snapshot\.id must be a non-empty string/ });
  assert.throws(() => encodeSnapshot({ ...snapshot(), artifacts: { ...state.artifacts, weightData: undefined } }), { message: /snapshot snap-1: artifacts have no weights/ });
});
