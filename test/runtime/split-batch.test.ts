import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitBatch } from '../../src/runtime/split-batch.js';

const WHOLE = { maxRows: 256, trainBatchSize: 32 };

test('should give a trainer its share of one trainer’s batch and step, by its share of the partitions', () => {
  assert.deepEqual(splitBatch(WHOLE, 4, 4), WHOLE);
  assert.deepEqual(splitBatch(WHOLE, 2, 4), { maxRows: 128, trainBatchSize: 16 });
  assert.deepEqual(splitBatch(WHOLE, 1, 4), { maxRows: 64, trainBatchSize: 8 });
});

test('should round a share up, so the trainers together never take smaller steps than one trainer', () => {
  // 3 trainers on 4 partitions: 2 + 1 + 1.
  assert.deepEqual(splitBatch(WHOLE, 2, 4), { maxRows: 128, trainBatchSize: 16 });
  assert.deepEqual(splitBatch(WHOLE, 1, 3), { maxRows: 86, trainBatchSize: 11 });
  assert.deepEqual(splitBatch({ maxRows: 3, trainBatchSize: 1 }, 1, 64), { maxRows: 1, trainBatchSize: 1 });
});

test('should keep the whole sizes with no partition assigned', () => {
  assert.deepEqual(splitBatch(WHOLE, 0, 4), WHOLE);
});

test('should refuse counts that are not a share', () => {
  assert.throws(() => splitBatch(WHOLE, 5, 4), /assignedPartitions must be an integer in 0…4, got 5/);
  assert.throws(() => splitBatch(WHOLE, 1, 0), /topicPartitions must be a positive integer, got 0/);
  assert.throws(() => splitBatch(WHOLE, 0.5, 4), /assignedPartitions/);
});
