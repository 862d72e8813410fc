import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IHeaders, Message } from 'kafkajs';
import { SourceError } from '../../src/errors.js';
import type { NetworkConfig } from '../../src/model/network.js';
import { decodeSnapshot, encodeSnapshot, type ModelSnapshot } from '../../src/model/snapshot-codec.js';
import {
  IgnoredReasons,
  SnapshotAssembler,
  SnapshotHeaders,
  type AssembledSnapshot,
  type ChunkRecord,
  type IgnoredSnapshot,
} from '../../src/snapshots/chunks.js';
import { snapshotMessages } from '../../src/snapshots/topic.js';

/** A small limit makes the ≈ 8.5 kB snapshots below three chunks each. */
const SMALL_CHUNKS = 4096;
const TOPIC = 'snapshots';

/**
 * A snapshot of a one-tensor model, made by hand: assembling needs real payloads, not a
 * trained model, so these tests need neither tfjs nor a broker.
 */
function snapshot(producer: string, id: string, floats = 2048): ModelSnapshot {
  return {
    artifacts: {
      modelTopology: { name: 'test' },
      weightSpecs: [{ name: 'w', shape: [floats], dtype: 'float32' }],
      weightData: Float32Array.from({ length: floats }, (_, i) => i).buffer,
    },
    network: {} as NetworkConfig,
    modelVersion: 3,
    rowsSeen: 10,
    tokenizer: null,
    evaluation: null,
    adamPowers: null,
    id,
    producer,
    publishedAtMs: 1_700_000_000_000,
    metrics: null,
  };
}

/** A record as a consumer delivers it: the value and the header values as Buffers. */
function delivered(message: Message): ChunkRecord {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = Buffer.from(String(value));
  return { value: Buffer.from(message.value as Buffer), headers };
}

/** The chunk records of a snapshot, as `publishSnapshot` writes them. */
function chunksOf(s: ModelSnapshot, maxMessageBytes = SMALL_CHUNKS): ChunkRecord[] {
  return snapshotMessages(encodeSnapshot(s), s, maxMessageBytes).map(delivered);
}

function withHeader(record: ChunkRecord, name: string, value: string | undefined): ChunkRecord {
  const headers = { ...record.headers };
  if (value === undefined) delete headers[name];
  else headers[name] = Buffer.from(value);
  return { ...record, headers };
}

/** An assembler fed records at offsets 0, 1, 2…, keeping what it hands back and what it reports. */
class Log {
  readonly completed: AssembledSnapshot[] = [];
  readonly ignored: IgnoredSnapshot[] = [];
  readonly assembler: SnapshotAssembler;
  #offset = 0n;

  constructor(maxPendingBytes?: number) {
    this.assembler = new SnapshotAssembler({ topic: TOPIC, maxPendingBytes, onIgnored: (i) => this.ignored.push(i) });
  }

  /** Feeds the records; returns what each one completed. */
  add(...records: ChunkRecord[]): (AssembledSnapshot | null)[] {
    return records.map((record) => {
      const done = this.assembler.add(this.#offset++, record);
      if (done !== null) this.completed.push(done);
      return done;
    });
  }

  ids(): string[] {
    return this.completed.map((c) => c.id);
  }

  reasons(): [string, string | null][] {
    return this.ignored.map((i) => [i.reason, i.id]);
  }
}

test('should hand back a snapshot when its last chunk arrives, with the exact payload and the offsets of its first and last chunk', () => {
  const original = snapshot('trainer-a', 'a-1');
  const chunks = chunksOf(original);
  assert.equal(chunks.length, 3);
  const log = new Log();
  log.add({ value: null, headers: {} });
  const results = log.add(...chunks);
  assert.deepEqual(results.slice(0, -1), [null, null], 'nothing before the last chunk');
  const done = results.at(-1)!;
  assert.deepEqual({ ...done, payload: null }, { id: 'a-1', producer: 'trainer-a', firstOffset: 1n, lastOffset: 3n, payload: null });
  assert.ok(done.payload.equals(Buffer.from(encodeSnapshot(original))), 'the payload is the encoded snapshot, byte for byte');
  assert.equal(decodeSnapshot(done.payload).id, 'a-1');
  assert.deepEqual(log.ignored, []);
});

test('should assemble by snapshot id, whatever the order of the chunks and whatever lands between them', () => {
  const a = chunksOf(snapshot('trainer-a', 'a-1'));
  const b = chunksOf(snapshot('trainer-b', 'b-1'));
  const log = new Log();
  log.add(a[2]!, b[0]!, a[0]!, b[1]!, b[2]!, a[1]!);
  assert.deepEqual(log.ids(), ['b-1', 'a-1']);
  assert.deepEqual(log.ignored, []);
});

test('should skip tombstones and the late or repeated chunks of a finished snapshot without reporting them', () => {
  const chunks = chunksOf(snapshot('trainer-a', 'a-1'));
  const log = new Log();
  log.add({ value: null, headers: {} }, ...chunks);
  assert.deepEqual(log.add(chunks[0]!, ...chunks), [null, null, null, null]);
  assert.deepEqual(log.ids(), ['a-1']);
  assert.deepEqual(log.ignored, []);
});

test('should let a repeated chunk of an unfinished snapshot replace the earlier copy, as a retried publish repeats it', () => {
  const chunks = chunksOf(snapshot('trainer-a', 'a-1'));
  const damaged = Buffer.from(chunks[1]!.value!);
  damaged[10] = damaged[10]! ^ 0xff;
  const log = new Log();
  log.add(chunks[0]!, { ...chunks[1]!, value: damaged }, chunks[1]!, chunks[2]!);
  assert.deepEqual(log.ids(), ['a-1']);
  assert.deepEqual(log.ignored, []);
});

test('should report a record that is not a snapshot chunk as invalid-record, saying what is wrong with its headers', () => {
  const chunk = chunksOf(snapshot('trainer-a', 'a-1'))[0]!;
  const log = new Log();
  log.add(
    { value: Buffer.from('not a snapshot'), headers: {} },
    withHeader(chunk, SnapshotHeaders.PRODUCER, undefined),
    withHeader(chunk, SnapshotHeaders.PAYLOAD_SHA256, 'abc'),
    withHeader(chunk, SnapshotHeaders.CHUNK_INDEX, '-1'),
    withHeader(chunk, SnapshotHeaders.CHUNK_INDEX, '3'),
  );
  assert.deepEqual(
    log.ignored.map((i) => [i.reason, i.id, i.producer, i.firstOffset, i.lastOffset]),
    [
      [IgnoredReasons.INVALID_RECORD, null, null, '0', '0'],
      [IgnoredReasons.INVALID_RECORD, 'a-1', null, '1', '1'],
      [IgnoredReasons.INVALID_RECORD, 'a-1', 'trainer-a', '2', '2'],
      [IgnoredReasons.INVALID_RECORD, 'a-1', 'trainer-a', '3', '3'],
      [IgnoredReasons.INVALID_RECORD, 'a-1', 'trainer-a', '4', '4'],
    ],
  );
  assert.deepEqual(
    log.ignored.map((i) => i.message),
    [
      `topic ${TOPIC}: record at offset 0 is not a snapshot chunk: header textstream.snapshot.id is missing`,
      `topic ${TOPIC}: record at offset 1 is not a snapshot chunk: header textstream.snapshot.producer is missing`,
      `topic ${TOPIC}: record at offset 2 is not a snapshot chunk: header textstream.snapshot.payload-sha256 is not a hex SHA-256`,
      `topic ${TOPIC}: record at offset 3 is not a snapshot chunk: header textstream.snapshot.chunk-index is not a non-negative integer: "-1"`,
      `topic ${TOPIC}: record at offset 4 is not a snapshot chunk: chunk index 3 is outside the chunk count 3`,
    ],
  );
  assert.deepEqual(log.completed, []);
});

test('should report a chunk that contradicts the earlier chunks of its snapshot, and complete the snapshot from the others', () => {
  const chunks = chunksOf(snapshot('trainer-a', 'a-1'));
  const log = new Log();
  log.add(chunks[0]!, withHeader(chunks[1]!, SnapshotHeaders.CHUNK_COUNT, '7'), chunks[1]!, chunks[2]!);
  assert.deepEqual(log.ids(), ['a-1']);
  assert.deepEqual(log.reasons(), [[IgnoredReasons.INVALID_RECORD, 'a-1']]);
  assert.equal(log.ignored[0]!.message, `topic ${TOPIC}: chunk 1 of snapshot a-1 at offset 1 disagrees with the snapshot's earlier chunks on count`);
});

test('should report a snapshot with a damaged chunk as checksum-mismatch, and one with fewer bytes than its headers say as invalid-record', () => {
  const damaged = chunksOf(snapshot('trainer-a', 'damaged'));
  const value = Buffer.from(damaged[1]!.value!);
  value[100] = value[100]! ^ 0xff;
  damaged[1] = { ...damaged[1]!, value };
  const short = chunksOf(snapshot('trainer-b', 'short')).map((c) => withHeader(c, SnapshotHeaders.PAYLOAD_BYTES, '999999'));
  const log = new Log();
  log.add(...damaged, ...short);
  assert.deepEqual(log.completed, []);
  assert.deepEqual(
    log.ignored.map((i) => [i.reason, i.id, i.firstOffset, i.lastOffset]),
    [
      [IgnoredReasons.CHECKSUM_MISMATCH, 'damaged', '0', '2'],
      [IgnoredReasons.INVALID_RECORD, 'short', '3', '5'],
    ],
  );
  assert.equal(log.ignored[0]!.message, `topic ${TOPIC}: snapshot damaged from trainer-a does not match its SHA-256: a chunk is damaged`);
  const shortBytes = encodeSnapshot(snapshot('trainer-b', 'short')).length;
  assert.equal(log.ignored[1]!.message, `topic ${TOPIC}: snapshot short from trainer-b has ${shortBytes} bytes in its chunks, its headers say 999999`);
});

test('should report an intact payload that is not a snapshot as undecodable', () => {
  const text = Buffer.from('a payload that is not a snapshot');
  const log = new Log();
  log.add(...snapshotMessages(text, { id: 'text', producer: 'trainer-a', modelVersion: 0 }, SMALL_CHUNKS).map(delivered));
  assert.deepEqual(log.completed, []);
  assert.deepEqual(log.reasons(), [[IgnoredReasons.UNDECODABLE, 'text']]);
  assert.match(log.ignored[0]!.message, /^topic snapshots: snapshot text from trainer-a does not decode: not a textstream snapshot/);
});

test('should drop the unfinished snapshots of the same producer that started earlier when one completes, and keep later and other producers\' ones', () => {
  const older = chunksOf(snapshot('trainer-a', 'older'));
  const other = chunksOf(snapshot('trainer-b', 'other'));
  const latest = chunksOf(snapshot('trainer-a', 'latest'));
  const later = chunksOf(snapshot('trainer-a', 'later'));
  const log = new Log();
  log.add(older[0]!, other[0]!, latest[0]!, later[0]!, latest[1]!, latest[2]!);
  assert.deepEqual(log.ids(), ['latest']);
  assert.deepEqual(log.reasons(), [[IgnoredReasons.SUPERSEDED, 'older']]);
  assert.deepEqual([log.ignored[0]!.firstOffset, log.ignored[0]!.lastOffset], ['0', '0']);
  assert.equal(log.ignored[0]!.message, `topic ${TOPIC}: snapshot older from trainer-a was never completed (1 of 3 chunks) and is superseded by latest`);

  // The superseded snapshot's remaining chunks (as compaction may leave them) are skipped quietly.
  log.add(older[1]!, older[2]!, other[1]!, other[2]!, later[1]!, later[2]!);
  assert.deepEqual(log.ids(), ['latest', 'other', 'later']);
  assert.equal(log.ignored.length, 1);
});

test('should evict the oldest unfinished snapshots once they hold more than maxPendingBytes, and skip their later chunks', () => {
  const a = chunksOf(snapshot('trainer-a', 'a-1'));
  const b = chunksOf(snapshot('trainer-b', 'b-1', 1000));
  assert.equal(b.length, 2);
  const maxPendingBytes = a[0]!.value!.length + b[0]!.value!.length - 1;
  const log = new Log(maxPendingBytes);
  log.add(a[0]!, b[0]!);
  assert.deepEqual(log.reasons(), [[IgnoredReasons.EVICTED, 'a-1']]);
  assert.equal(
    log.ignored[0]!.message,
    `topic ${TOPIC}: snapshot a-1 from trainer-a was dropped unfinished (1 of 3 chunks): unfinished snapshots held more than maxPendingBytes ${maxPendingBytes}`,
  );
  log.add(b[1]!, a[1]!, a[2]!);
  assert.deepEqual(log.ids(), ['b-1']);
  assert.equal(log.ignored.length, 1);
});

test('should report the unfinished snapshots as incomplete when the input ends, and only once', () => {
  const chunks = chunksOf(snapshot('trainer-a', 'cut-short'));
  const log = new Log();
  log.add(chunks[0]!, chunks[2]!);
  assert.deepEqual(log.ignored, []);
  log.assembler.finish();
  log.assembler.finish();
  assert.deepEqual(log.ignored, [
    {
      reason: IgnoredReasons.INCOMPLETE,
      id: 'cut-short',
      producer: 'trainer-a',
      firstOffset: '0',
      lastOffset: '1',
      message: `topic ${TOPIC}: snapshot cut-short from trainer-a is incomplete: 2 of 3 chunks (a publish cut short or still running)`,
    },
  ]);
});

test('should refuse a maxPendingBytes that is not a positive integer', () => {
  for (const maxPendingBytes of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new SnapshotAssembler({ topic: TOPIC, maxPendingBytes, onIgnored: () => undefined }), (err: unknown) => {
      assert.ok(err instanceof SourceError);
      assert.equal(err.message, `maxPendingBytes must be a positive integer, got ${maxPendingBytes}`);
      return true;
    });
  }
});

test('should cut a payload into keyed chunks that fit under maxMessageBytes, and refuse a limit that leaves too little room', () => {
  const payload = Buffer.from(encodeSnapshot(snapshot('trainer-a', 'a-1', 20_000)));
  const identity = { id: 'a-1', producer: 'trainer-a', modelVersion: 3 };
  const messages = snapshotMessages(payload, identity, SMALL_CHUNKS);
  const values = messages.map((m) => m.value as Buffer);
  assert.ok(Buffer.concat(values).equals(payload), 'the chunks are the payload, in order');
  assert.equal(messages.length, Math.ceil(payload.length / values[0]!.length), 'every chunk but the last is full');
  assert.deepEqual(
    messages.map((m) => m.key),
    messages.map((_, i) => `trainer-a/${i}`),
  );
  for (const m of messages) {
    const headerBytes = Object.entries(m.headers!).reduce((n, [name, value]) => n + name.length + String(value).length, 0);
    assert.ok(String(m.key).length + (m.value as Buffer).length + headerBytes < SMALL_CHUNKS, 'a record fits under the limit');
  }
  assert.deepEqual(messages.at(-1)!.headers, {
    [SnapshotHeaders.ID]: 'a-1',
    [SnapshotHeaders.PRODUCER]: 'trainer-a',
    [SnapshotHeaders.MODEL_VERSION]: '3',
    [SnapshotHeaders.CHUNK_INDEX]: String(messages.length - 1),
    [SnapshotHeaders.CHUNK_COUNT]: String(messages.length),
    [SnapshotHeaders.PAYLOAD_BYTES]: String(payload.length),
    [SnapshotHeaders.PAYLOAD_SHA256]: messages[0]!.headers![SnapshotHeaders.PAYLOAD_SHA256],
  });
  assert.throws(() => snapshotMessages(payload, identity, 1500), (err: unknown) => err instanceof SourceError && /leaves -?\d+ bytes of snapshot data per record after key and headers; it must leave at least 1024/.test(err.message));
  assert.throws(() => snapshotMessages(payload, identity, 0), { name: 'SourceError', message: 'maxMessageBytes must be a positive integer, got 0' });
});
