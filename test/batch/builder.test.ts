import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tableFromIPC, tableToIPC, Table } from 'apache-arrow';
import { BatchBuilder, tokenMatrix } from '../../src/batch/builder.js';
import { Columns } from '../../src/batch/schema.js';
import type { TokenizedMessage } from '../../src/message.js';

const maxLen = 4;

function message(i: number, label: 0 | 1 | null): TokenizedMessage {
  return {
    id: `m${i}`,
    text: `text ${i} é`,
    label,
    tokens: Int32Array.from({ length: maxLen }, (_, j) => i * 10 + j),
    position: { source: 'corpus.parquet', partition: 0, offset: BigInt(i), timestampMs: i % 2 ? 1_700_000_000_000 + i : null },
  };
}

test('should flush a batch when maxRows is reached and keep every column value', () => {
  const builder = new BatchBuilder({ maxLen, maxRows: 3, maxAgeMs: 1000 });
  assert.equal(builder.push(message(0, 1)), null);
  assert.equal(builder.push(message(1, null)), null);
  const batch = builder.push(message(2, 0));
  assert.ok(batch);
  assert.equal(batch.numRows, 3);
  assert.equal(builder.length, 0);
  const rows = new Table(batch).toArray().map((r: { toJSON(): Record<string, unknown> }) => r.toJSON());
  assert.deepEqual(rows.map((r) => r[Columns.ID]), ['m0', 'm1', 'm2']);
  assert.deepEqual(rows.map((r) => r[Columns.LABEL]), [1, null, 0]);
  assert.deepEqual(rows.map((r) => r[Columns.TEXT]), ['text 0 é', 'text 1 é', 'text 2 é']);
  assert.deepEqual(rows.map((r) => r[Columns.OFFSET]), [0n, 1n, 2n]);
  assert.deepEqual(rows.map((r) => r[Columns.TIMESTAMP]), [null, 1_700_000_000_001, null]);
  assert.deepEqual([...(rows[1]![Columns.TOKENS] as Iterable<number>)], [10, 11, 12, 13]);
});

test('should close batches at the maxRows it was built with (a rebalance builds a new one)', () => {
  const whole = new BatchBuilder({ maxLen, maxRows: 4, maxAgeMs: 1000 });
  const share = new BatchBuilder({ maxLen, maxRows: 2, maxAgeMs: 1000 });
  assert.equal(whole.maxRows, 4);
  assert.equal(share.maxRows, 2);
  for (let i = 0; i < 3; i++) assert.equal(whole.push(message(i, 1)), null);
  assert.equal(whole.push(message(3, 1))?.numRows, 4);
  assert.equal(share.push(message(0, 1)), null);
  assert.equal(share.push(message(1, 1))?.numRows, 2);
});

test('should expose the token column as one flat matrix without copying', () => {
  const builder = new BatchBuilder({ maxLen, maxRows: 2, maxAgeMs: 1000 });
  builder.push(message(0, 0));
  const batch = builder.push(message(1, 1))!;
  const matrix = tokenMatrix(batch);
  assert.deepEqual([...matrix], [0, 1, 2, 3, 10, 11, 12, 13]);
  const child = batch.getChild(Columns.TOKENS)!.data[0]!.children[0]!;
  assert.equal(matrix.buffer, (child.values as Int32Array).buffer);
  assert.deepEqual([...tokenMatrix(batch.slice(1, 2))], [10, 11, 12, 13]);
});

test('should flush an underfull batch only once its oldest row exceeds maxAgeMs', () => {
  const builder = new BatchBuilder({ maxLen, maxRows: 100, maxAgeMs: 50 });
  builder.push(message(0, 0), 1000);
  builder.push(message(1, 0), 1040);
  assert.equal(builder.flushIfOlderThan(1049), null);
  const batch = builder.flushIfOlderThan(1050);
  assert.equal(batch?.numRows, 2);
  assert.equal(builder.flushIfOlderThan(5000), null);
  assert.equal(builder.flush(), null);
});

test('should round-trip through Arrow IPC with the declared schema', () => {
  const builder = new BatchBuilder({ maxLen, maxRows: 10, maxAgeMs: 1000 });
  for (let i = 0; i < 5; i++) builder.push(message(i, i % 2 ? 1 : 0));
  const table = tableFromIPC(tableToIPC(new Table(builder.flush()!)));
  assert.equal(table.numRows, 5);
  assert.equal(String(table.schema.fields.find((f) => f.name === Columns.TOKENS)!.type), 'FixedSizeList[4]<Int32>');
  assert.equal(String(table.schema.fields.find((f) => f.name === Columns.ID)!.type), 'Utf8');
});

test('should reject a message whose token count differs from maxLen', () => {
  const builder = new BatchBuilder({ maxLen, maxRows: 10, maxAgeMs: 1000 });
  assert.throws(() => builder.push({ ...message(0, 0), tokens: new Int32Array(3) }), /expected 4/);
});
