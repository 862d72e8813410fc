import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnlineEvaluator, predictedLabel } from '../../src/model/evaluation.js';
import { rng } from './helpers.js';
import { bruteForceAuc } from '../helpers/auc.js';

function allRows(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

test('should compute AUC within its stated error bound of the exact brute-force AUC', () => {
  const r = rng(3);
  for (const [n, shape] of [
    [2000, 'spread'],
    [3000, 'saturated'],
    [500, 'tied'],
  ] as const) {
    const labels = Uint8Array.from({ length: n }, () => (r() < 0.4 ? 1 : 0));
    const scores = Float32Array.from(labels, (y) => {
      // Overlapping classes; 'saturated' pushes scores to within 1e-6 of 0 and 1 as a
      // trained sigmoid does; 'tied' draws from ten values only.
      const z = (y === 1 ? 1 : -1) + 1.5 * (r() + r() + r() - 1.5) * 2;
      if (shape === 'tied') return Math.round(10 / (1 + Math.exp(-z))) / 10;
      return 1 / (1 + Math.exp(-(shape === 'saturated' ? 6 * z : z)));
    });
    const evaluator = new OnlineEvaluator();
    // In several calls, as batches arrive.
    for (let start = 0; start < n; start += 128) {
      const rows = allRows(Math.min(128, n - start));
      evaluator.observe(scores.subarray(start, start + rows.length), rows, labels.subarray(start, start + rows.length));
    }
    const snap = evaluator.snapshot();
    const exact = bruteForceAuc(scores, labels);
    assert.ok(snap.auc !== null && snap.aucMaxError !== null);
    assert.ok(
      Math.abs(snap.auc - exact) <= snap.aucMaxError + 1e-12,
      `${shape}: auc ${snap.auc} vs exact ${exact}, bound ${snap.aucMaxError}`,
    );
    if (shape === 'tied') {
      // Equal scores share a bin and count ½ exactly as in the exact AUC.
      assert.ok(Math.abs(snap.auc - exact) < 1e-12);
    } else {
      assert.ok(snap.aucMaxError < 2e-3, `${shape}: bound ${snap.aucMaxError} should be tight`);
    }
  }
});

test('should report accuracy at Keras’ threshold (score > 0.5) and clipped log loss', () => {
  assert.equal(predictedLabel(0.5), 0);
  assert.equal(predictedLabel(0.5000001), 1);
  const evaluator = new OnlineEvaluator();
  const scores = Float32Array.from([0.9, 0.2, 0.5, 0, 1]);
  evaluator.observe(scores, allRows(5), [1, 1, 1, 0, 0]);
  const snap = evaluator.snapshot();
  assert.equal(snap.count, 5);
  assert.equal(snap.positives, 3);
  assert.equal(snap.negatives, 2);
  assert.equal(snap.accuracy, 2 / 5); // 0.9→1 ✓, 0.2→0 ✗, 0.5→0 ✗, 0→0 ✓, 1→1 ✗
  const p1 = 1 - 1e-7;
  const expected = (-Math.log(Math.fround(0.9)) - Math.log(Math.fround(0.2)) - Math.log(0.5) - Math.log(p1) - Math.log(1 - p1)) / 5;
  assert.ok(Math.abs(snap.logLoss! - expected) < 1e-12);
});

test('should report nulls before data, and no AUC until both classes are seen', () => {
  const evaluator = new OnlineEvaluator();
  let snap = evaluator.snapshot();
  assert.equal(snap.count, 0);
  assert.equal(snap.accuracy, null);
  assert.equal(snap.logLoss, null);
  assert.equal(snap.auc, null);
  assert.equal(snap.trainLoss, null);
  evaluator.observe(Float32Array.from([0.7, 0.8]), allRows(2), [1, 1]);
  snap = evaluator.snapshot();
  assert.equal(snap.accuracy, 1);
  assert.equal(snap.auc, null);
});

test('should evaluate only the given rows and count non-finite scores apart', () => {
  const evaluator = new OnlineEvaluator();
  evaluator.observe(Float32Array.from([0.9, NaN, 0.1, 0.2]), Int32Array.from([1, 2, 3]), [1, 0, 0]);
  const snap = evaluator.snapshot();
  assert.equal(snap.count, 2);
  assert.equal(snap.nonFiniteScores, 1);
  assert.equal(snap.accuracy, 1);
});

test('should let recent accuracy follow a change that cumulative accuracy hides', () => {
  const evaluator = new OnlineEvaluator({ fading: 0.99 });
  const rows = allRows(100);
  for (let i = 0; i < 50; i++) evaluator.observe(new Float32Array(100).fill(0.9), rows, new Uint8Array(100).fill(1));
  for (let i = 0; i < 5; i++) evaluator.observe(new Float32Array(100).fill(0.9), rows, new Uint8Array(100).fill(0));
  const snap = evaluator.snapshot();
  assert.ok(snap.accuracy! > 0.9);
  assert.ok(snap.recentAccuracy! < 0.01);
});

test('should keep a row-weighted running training loss', () => {
  const evaluator = new OnlineEvaluator();
  evaluator.observeTraining(1, 32);
  evaluator.observeTraining(0.5, 16);
  const snap = evaluator.snapshot();
  assert.equal(snap.trainSteps, 2);
  assert.equal(snap.trainedRows, 48);
  assert.ok(Math.abs(snap.trainLoss! - (32 + 8) / 48) < 1e-12);
  assert.equal(snap.lastTrainLoss, 0.5);
  // Faded with the default 0.999 per row: the first step's 32 rows weigh d = 0.999^16 once
  // the second step's 16 rows are in.
  const d = 0.999 ** 16;
  assert.ok(Math.abs(snap.recentTrainLoss! - (32 * d * 1 + 16 * 0.5) / (32 * d + 16)) < 1e-12, `${snap.recentTrainLoss}`);
});

test('should survive a JSON round trip with an identical snapshot', () => {
  const evaluator = new OnlineEvaluator({ bins: 512 });
  const r = rng(9);
  const scores = Float32Array.from({ length: 300 }, () => r());
  const labels = Uint8Array.from(scores, (s) => (s + r() * 0.5 > 0.7 ? 1 : 0));
  evaluator.observe(scores, allRows(300), labels);
  evaluator.observeTraining(0.4, 300);
  const copy = OnlineEvaluator.fromJSON(JSON.parse(JSON.stringify(evaluator.toJSON())) as ReturnType<OnlineEvaluator['toJSON']>);
  assert.deepEqual(copy.snapshot(), evaluator.snapshot());
});
