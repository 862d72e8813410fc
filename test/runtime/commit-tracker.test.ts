import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommitTracker } from '../../src/runtime/commit-tracker.js';
import type { SourcePosition } from '../../src/message.js';
import type { DurableFile } from '../../src/sinks/sink.js';

const at = (partition: number, offset: number, timestampMs: number | null = null): SourcePosition => ({
  source: 't',
  partition,
  offset: BigInt(offset),
  timestampMs,
});
const file = (partition: number, first: number, last: number): DurableFile => ({
  path: 'x',
  source: 't',
  partition,
  firstOffset: BigInt(first),
  lastOffset: BigInt(last),
  rows: last - first + 1,
  bytes: 1,
});
const committed = (tracker: CommitTracker): string[] => tracker.takeCommittable().map((p) => `${p.partition}/${p.offset}`);

test('should commit a partition only through records that are all done', () => {
  const tracker = new CommitTracker();
  tracker.track([0, 1, 2, 3].map((o) => at(0, o)));
  tracker.markDone([at(0, 2)]); // a dead letter behind rows 0..1, still in an open file
  assert.deepEqual(committed(tracker), []);
  tracker.markDurable(file(0, 0, 1));
  assert.deepEqual(committed(tracker), ['0/2'], 'rows 0..1 durable, dead letter 2 done, row 3 pending');
  assert.deepEqual(committed(tracker), [], 'nothing moved since');
  assert.equal(tracker.inFlightCount, 1);
  tracker.markDurable(file(0, 3, 3));
  assert.deepEqual(committed(tracker), ['0/3']);
});

test('should return each row’s source timestamp once, when the file holding it becomes durable', () => {
  const tracker = new CommitTracker();
  tracker.track(Array.from({ length: 10 }, (_, o) => at(0, o, 1_000 + o * 1_000)));
  tracker.track([at(1, 0, 5_000), at(1, 1)]);
  assert.deepEqual(tracker.markDurable(file(0, 0, 4)), [1_000, 2_000, 3_000, 4_000, 5_000]);
  assert.equal(tracker.inFlightCount, 7);
  assert.deepEqual(tracker.markDurable(file(0, 5, 9)), [6_000, 7_000, 8_000, 9_000, 10_000]);
  assert.deepEqual(tracker.markDurable(file(0, 5, 9)), [], 'already durable: nothing more');
  // Dead letters and records without a timestamp (replay) have no latency to report.
  tracker.markDone([at(1, 0, 5_000)]);
  assert.deepEqual(tracker.markDurable(file(1, 0, 1)), []);
  assert.equal(tracker.inFlightCount, 0);
});

test('should forget everything in flight on clear, and keep order over many records', () => {
  const tracker = new CommitTracker();
  for (let round = 0; round < 3; round++) {
    tracker.track(Array.from({ length: 5_000 }, (_, i) => at(0, round * 5_000 + i, 0)));
    assert.equal(tracker.markDurable(file(0, round * 5_000, round * 5_000 + 2_499)).length, 2_500);
  }
  assert.deepEqual(committed(tracker), ['0/2499'], 'rounds 2 and 3 wait behind round 1’s second half');
  assert.equal(tracker.markDurable(file(0, 2_500, 14_999)).length, 7_500, 'rows already durable are not reported twice');
  assert.deepEqual(committed(tracker), ['0/14999']);
  tracker.track([at(0, 15_000)]);
  tracker.clear();
  assert.equal(tracker.inFlightCount, 0);
  assert.deepEqual(committed(tracker), []);
});

test('should not count a dead letter waiting behind an open file as in flight', () => {
  const tracker = new CommitTracker();
  tracker.track([0, 1, 2, 3].map((o) => at(0, o)));
  tracker.markDone([at(0, 2)]);
  assert.equal(tracker.inFlightCount, 3, 'rows 0, 1 and 3; dead letter 2 has left');
  assert.deepEqual(committed(tracker), [], 'yet nothing can be committed');
  tracker.markDurable(file(0, 0, 1));
  assert.equal(tracker.inFlightCount, 1);
});
