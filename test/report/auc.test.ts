import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUC_BINS, aucFromHistogram, scoreBin } from '../../src/model/auc.js';
import { OnlineEvaluator } from '../../src/model/evaluation.js';
import { mulberry32 } from '../../src/random.js';
import { bruteForceAuc } from '../helpers/auc.js';

function histograms(scores: number[], labels: number[], bins = AUC_BINS): { pos: Float64Array; neg: Float64Array } {
  const pos = new Float64Array(bins);
  const neg = new Float64Array(bins);
  scores.forEach((s, i) => ((labels[i] === 1 ? pos : neg)[scoreBin(s, bins)]! += 1));
  return { pos, neg };
}

test('should match the brute-force AUC within its stated bound on random scores', () => {
  const random = mulberry32(11);
  for (const separation of [0, 0.5, 2, 6]) {
    const scores: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 600; i++) {
      const label = random() < 0.4 ? 1 : 0;
      const logit = (label === 1 ? separation : -separation) + 2 * (random() - 0.5) * 3;
      scores.push(Math.fround(1 / (1 + Math.exp(-logit))));
      labels.push(label);
    }
    const { pos, neg } = histograms(scores, labels);
    const estimate = aucFromHistogram(pos, neg)!;
    const exact = bruteForceAuc(scores, labels);
    assert.ok(Math.abs(estimate.auc - exact) <= estimate.maxError + 1e-12, `separation ${separation}: ${estimate.auc} vs ${exact} ± ${estimate.maxError}`);
    assert.ok(estimate.maxError < 0.01);
  }
});

test('should count tied scores as half a win, exactly as the brute force does', () => {
  // Few distinct values, so most pairs are ties; every tie shares a bin.
  const scores = [0.1, 0.1, 0.5, 0.5, 0.5, 0.9, 0.9, 0.1, 0.5, 0.9];
  const labels = [0, 1, 0, 1, 1, 1, 0, 0, 1, 1];
  const { pos, neg } = histograms(scores, labels);
  const estimate = aucFromHistogram(pos, neg)!;
  assert.equal(estimate.auc, bruteForceAuc(scores, labels));
  // All-tied scores: AUC ½, and the bound says the histogram cannot tell anything apart.
  const tied = histograms([0.3, 0.3, 0.3, 0.3], [0, 1, 0, 1]);
  assert.deepEqual(aucFromHistogram(tied.pos, tied.neg), { auc: 0.5, maxError: 0.5 });
});

test('should give 1 and 0 for perfect and inverted rankings, and null with one class', () => {
  const perfect = histograms([0.01, 0.2, 0.8, 0.99], [0, 0, 1, 1]);
  assert.equal(aucFromHistogram(perfect.pos, perfect.neg)!.auc, 1);
  const inverted = histograms([0.01, 0.2, 0.8, 0.99], [1, 1, 0, 0]);
  assert.equal(aucFromHistogram(inverted.pos, inverted.neg)!.auc, 0);
  const onlyPositives = histograms([0.3, 0.7], [1, 1]);
  assert.equal(aucFromHistogram(onlyPositives.pos, onlyPositives.neg), null);
});

test('should bin scores as the pipeline evaluator does, so the report repeats the run’s AUC', () => {
  const random = mulberry32(3);
  const scores = Float32Array.from({ length: 500 }, () => random());
  const labels = Array.from({ length: 500 }, (_, i) => (scores[i]! + random() * 0.5 > 0.7 ? 1 : 0));
  const evaluator = new OnlineEvaluator();
  evaluator.observe(scores, Array.from(scores.keys()), labels);
  const { pos, neg } = histograms([...scores], labels);
  assert.equal(aucFromHistogram(pos, neg)!.auc, evaluator.snapshot().auc);
});
