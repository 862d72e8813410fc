import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ReportAggregator, type ReportRow } from '../../src/report/aggregate.js';
import { BASE_MS, Timeline } from '../../src/report/timeline.js';
import { countDeadLetters, pipelineOf } from '../../src/report/read.js';

const row = (t: number, score: number, label: number | null, offset = 0n, partition = 0): ReportRow => ({
  score,
  predicted: score > 0.5 ? 1 : 0,
  label,
  processedAtMs: t,
  source: 'topic-a',
  partition,
  offset,
});

test('should bucket rows by processing time and report rows per second', () => {
  const timeline = new Timeline({ maxBuckets: 100 });
  // 3 rows at t=0 ms, 1 row at t=25 ms, 2 rows at t=41 ms: buckets of 10 ms.
  for (const t of [0, 0, 0, 25, 41, 41]) timeline.add(1_000_000 + t, 0.5, 0, null);
  const { widthMs, points } = timeline.summary();
  assert.equal(widthMs, BASE_MS);
  assert.deepEqual(
    points.map((p) => [p.startMs - 1_000_000, p.rows]),
    [[0, 3], [10, 0], [20, 1], [30, 0], [40, 2]],
  );
  assert.equal(points[0]!.rowsPerSecond, 300);
});

test('should double the bucket width, merging aligned neighbours exactly, when the span outgrows maxBuckets', () => {
  const timeline = new Timeline({ maxBuckets: 4 });
  // 10 rows, one every 10 ms over 100 ms: 10 buckets of 10 ms do not fit in 4, 4 of 40 ms do.
  for (let i = 0; i < 10; i++) timeline.add(i * 10, 0.9, 1, 1);
  const { widthMs, points } = timeline.summary();
  assert.equal(widthMs, 40);
  assert.deepEqual(points.map((p) => p.rows), [4, 4, 2]);
  assert.equal(points.reduce((s, p) => s + p.rows, 0), 10, 'no row lost in merges');
  // Rows arriving in any order (older files read later) end in the same buckets.
  const shuffled = new Timeline({ maxBuckets: 4 });
  for (const i of [9, 0, 5, 3, 1, 8, 2, 7, 6, 4]) shuffled.add(i * 10, 0.9, 1, 1);
  assert.deepEqual(shuffled.summary(), timeline.summary());
});

test('should widen sparse buckets for display until nearly all of them hold rows', () => {
  const timeline = new Timeline();
  // One sink write every 100 ms for 2 s: 10 ms buckets would be 9 empty to 1 full, and at
  // 80 ms 5 of 26 would still be empty.
  for (let t = 0; t <= 2000; t += 100) timeline.add(t, 0.5, 0, null);
  const { widthMs, points } = timeline.summary();
  assert.equal(widthMs, 160);
  assert.ok(points.every((p) => p.rows > 0));
  assert.equal(points.reduce((s, p) => s + p.rows, 0), 21);
});

test('should draw a steady replay as a steady rate, not one flipping between a burst and 0', () => {
  // A replay: 256-row batches written every 320 ± 15 ms for 8 s, as the report saw them.
  const replay = (): Timeline => {
    const timeline = new Timeline();
    let t = 1_000_000;
    for (let batch = 0; batch < 25; batch++) {
      for (let r = 0; r < 256; r++) timeline.add(t, 0.5, 0, null);
      t += 320 + ((batch * 7) % 31) - 15;
    }
    return timeline;
  };
  const empty = (points: readonly { rows: number }[]): number => points.filter((p) => p.rows === 0).length;
  const { points } = replay().summary();
  assert.ok(points.length >= 8, `${points.length} points`);
  assert.ok(empty(points) <= points.length / 10, `empty buckets inside the run: ${points.map((p) => p.rows).join(' ')}`);
  // What the report drew before: buckets narrower than the gap between writes, many empty.
  const comb = replay().summary({ minFill: 0.5 }).points;
  assert.ok(empty(comb) > comb.length / 4, `the old rule: ${comb.map((p) => p.rows).join(' ')}`);
});

test('should compute cumulative and per-bucket accuracy and AUC at bucket boundaries', () => {
  const timeline = new Timeline();
  // Bucket 0: two right (0.9→1, 0.1→0). Bucket 1 (empty). Bucket 2: one wrong (0.8→0), one unlabelled.
  timeline.add(0, 0.9, 1, 1);
  timeline.add(1, 0.1, 0, 0);
  timeline.add(20, 0.8, 1, 0);
  timeline.add(21, 0.2, 0, null);
  const [a, b, c] = timeline.summary().points;
  assert.deepEqual([a!.bucketAccuracy, a!.cumulativeAccuracy, a!.cumulativeAuc], [1, 1, 1]);
  assert.deepEqual([b!.rows, b!.bucketAccuracy, b!.cumulativeAccuracy], [0, null, 1]);
  assert.equal(c!.bucketAccuracy, 0);
  assert.equal(c!.cumulativeAccuracy, 2 / 3);
  // Positive 0.9 vs negatives 0.1 and 0.8: both won → AUC 1.
  assert.equal(c!.cumulativeAuc, 1);
  assert.equal(c!.rows, 2);
});

test('should summarise rows, partitions, offsets, labels and the score histogram', () => {
  const agg = new ReportAggregator();
  agg.addRows('f1', 'p', [row(0, 0.97, 1, 5n), row(0, 0.02, 0, 6n), row(1, 0.6, 0, 7n), row(1, 0.55, null, 8n)]);
  agg.addRows('f2', 'p', [row(2, 0.4, 1, 0n, 1), row(2, NaN, 1, 1n, 1)]);
  const data = agg.summary('out');
  assert.equal(data.rows, 6);
  assert.equal(data.files, 2);
  assert.equal(data.labelled, 4, 'the NaN score is left out, as the evaluator does');
  assert.equal(data.nonFiniteScores, 1);
  assert.equal(data.unlabelled, 1);
  assert.equal(data.accuracy, 2 / 4);
  // Positives 0.97, 0.4 vs negatives 0.02, 0.6: wins 0.97>both, 0.4>0.02 → 3 of 4.
  assert.equal(data.auc, 0.75);
  assert.deepEqual([data.firstOffset, data.lastOffset], ['0', '8']);
  assert.deepEqual(
    data.partitions.map((p) => [p.partition, p.files, p.rows, p.firstOffset, p.lastOffset]),
    [[0, 1, 4, '5', '8'], [1, 1, 2, '0', '1']],
  );
  const h = data.scoreHistogram;
  assert.equal(h.positive[19], 1);
  assert.equal(h.positive[8], 1);
  assert.equal(h.negative[0], 1);
  assert.equal(h.negative[12], 1);
  assert.equal(h.unlabelled[11], 1);
  assert.equal([...h.positive, ...h.negative, ...h.unlabelled].reduce((s, n) => s + n, 0), 5);
});

test('should say there are no labelled rows rather than invent figures', () => {
  const agg = new ReportAggregator();
  agg.addRows('f', 'p', [row(0, 0.3, null), row(5, 0.7, null)]);
  const data = agg.summary('out');
  assert.equal(data.labelled, 0);
  assert.equal(data.accuracy, null);
  assert.equal(data.auc, null);
  assert.ok(data.timeline.points.length > 0);
  assert.ok(data.timeline.points.every((p) => p.cumulativeAccuracy === null && p.cumulativeAuc === null));
  const empty = new ReportAggregator().summary('out');
  assert.equal(empty.rows, 0);
  assert.deepEqual(empty.timeline.points, []);
});

test('should count dead letters by reason and keep unreadable lines visible', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'dead-letters.jsonl');
  await writeFile(file, ['{"reason":"oversized"}', '{"reason":"invalid-utf8"}', '', 'not json', '{"reason":"oversized"}', '{}'].join('\n'));
  const { byReason, unreadable } = await countDeadLetters(file);
  assert.deepEqual([...byReason], [['oversized', 2], ['invalid-utf8', 1]]);
  assert.equal(unreadable, 2);
  const agg = new ReportAggregator();
  agg.addDeadLetters(file, byReason, unreadable);
  assert.deepEqual(agg.summary(dir).deadLetters.byReason, [['oversized', 2], ['invalid-utf8', 1], ['(unreadable line)', 2]]);
  assert.equal(agg.summary(dir).deadLetters.total, 5);
});

test('should take the pipeline name from the output layout', () => {
  assert.equal(pipelineOf('out', path.join('out', 'spam', 'x', 'partition-0', 'a.parquet')), 'spam');
  assert.equal(pipelineOf('out/spam', path.join('out', 'spam', 't', 'partition-3', 'a.parquet')), 'spam');
  // The legacy layout has the same depth.
  assert.equal(pipelineOf('out', path.join('out', 'spam', 'file=x.parquet', 'partition=0', 'a.parquet')), 'spam');
});
