import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { io } from '@tensorflow/tfjs';
import { CheckpointError, ErrorCodes, TextstreamError } from '../../src/errors.js';
import { applyAverage, federatedAverage, modelWeightsOf, type ModelWeights, type WeightValues } from '../../src/model/averaging.js';
import type { CheckpointState } from '../../src/model/checkpoint.js';
import { PrequentialLearner, labelledRows } from '../../src/model/learner.js';
import { SMALL_NETWORK, SyntheticStream, expectNoLeakedTensors, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen!;
const vocabSize = SMALL_NETWORK.vocabSize!;
const MODEL_WEIGHTS = ['embedding/embeddings', 'lstm/kernel', 'lstm/recurrent_kernel', 'lstm/bias', 'dense/kernel', 'dense/bias'];

test.before(async () => {
  await useWasm();
});

/** A learner of the small network that has trained on one batch (so Adam's moments are not zero). */
async function trainedLearner(seed: number, dataSeed: number): Promise<PrequentialLearner> {
  const learner = PrequentialLearner.create({ network: { ...SMALL_NETWORK, seed }, trainBatchSize: 8 });
  await learner.process(new SyntheticStream(dataSeed, { maxLen, vocabSize, rows: 16 }).batch());
  return learner;
}

function weight(shape: number[], values: number[]): WeightValues {
  return { shape, dtype: 'float32', values: Float32Array.from(values) };
}

/** The optimiser's part of a checkpoint: its weight specs and their bytes. */
function optimizerPart(state: CheckpointState): { specs: io.WeightsManifestEntry[]; bytes: Uint8Array } {
  const specs = state.artifacts.weightSpecs!;
  const data = new Uint8Array(state.artifacts.weightData as ArrayBuffer);
  const firstOptimizer = specs.findIndex((s) => s.group === 'optimizer');
  assert.ok(firstOptimizer > 0, 'the checkpoint should hold optimiser weights after the model weights');
  let offset = 0;
  for (const spec of specs.slice(0, firstOptimizer)) offset += spec.shape.reduce((n, d) => n * d, 1) * 4;
  return { specs: specs.slice(firstOptimizer), bytes: data.slice(offset) };
}

/**
 * `state` with its model weights replaced by `weights`, written byte by byte into the
 * artifacts (not through the learner), optimiser weights kept.
 */
function withModelWeights(state: CheckpointState, weights: ModelWeights): CheckpointState {
  const parts: Uint8Array[] = [];
  const data = new Uint8Array(state.artifacts.weightData as ArrayBuffer);
  let offset = 0;
  for (const spec of state.artifacts.weightSpecs!) {
    const bytes = spec.shape.reduce((n, d) => n * d, 1) * 4;
    const replacement = spec.group === 'optimizer' ? undefined : weights.get(spec.name);
    parts.push(replacement === undefined ? data.slice(offset, offset + bytes) : new Uint8Array(replacement.values.slice().buffer));
    offset += bytes;
  }
  const out = new Uint8Array(offset);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return { ...state, artifacts: { ...state.artifacts, weightData: out.buffer } };
}

test('should read the same model weights, and no optimiser weight, from a learner and from its checkpoint', async (t) => {
  const learner = await trainedLearner(7, 1);
  t.after(() => learner.dispose());
  const state = await learner.checkpointState(null);
  assert.ok(state.artifacts.weightSpecs!.some((s) => s.group === 'optimizer'), 'fixture: the checkpoint holds Adam state');
  const fromState = modelWeightsOf(state);
  const fromLearner = await expectNoLeakedTensors(() => modelWeightsOf(learner));
  assert.deepEqual([...fromState.keys()], MODEL_WEIGHTS);
  assert.deepEqual(fromLearner, fromState);
  assert.deepEqual(fromState.get('lstm/kernel')!.shape, [SMALL_NETWORK.embeddingDim, 4 * SMALL_NETWORK.units!]);
});

test('should weight each weight element by rows: rows 1 and 3 give 0.25·a + 0.75·b', async (t) => {
  const a = await trainedLearner(7, 1);
  const b = await trainedLearner(8, 2);
  t.after(() => {
    a.dispose();
    b.dispose();
  });
  const wa = modelWeightsOf(a);
  const wb = modelWeightsOf(b);
  const averaged = federatedAverage([
    { weights: wa, rows: 1 },
    { weights: wb, rows: 3 },
  ]);
  assert.deepEqual([...averaged.keys()], MODEL_WEIGHTS);
  for (const name of MODEL_WEIGHTS) {
    const x = wa.get(name)!.values;
    const y = wb.get(name)!.values;
    const got = averaged.get(name)!;
    assert.deepEqual(got.shape, wa.get(name)!.shape);
    assert.notDeepEqual(x, y, `fixture: ${name} should differ between the learners`);
    // Exact: 0.25·x and 0.75·y are exact in float64, so this is (x + 3y)/4 rounded once
    // in float64 and once to float32, which is what federatedAverage computes.
    const expected = Float32Array.from(x, (xi, i) => 0.25 * xi + 0.75 * y[i]!);
    assert.deepEqual(got.values, expected, name);
  }
});

test('should return the first input exactly at rows 1:0, a lone input as it is, and equal inputs unchanged', async (t) => {
  const a = await trainedLearner(7, 1);
  const b = await trainedLearner(8, 2);
  t.after(() => {
    a.dispose();
    b.dispose();
  });
  const wa = modelWeightsOf(a);
  const wb = modelWeightsOf(b);
  assert.deepEqual(federatedAverage([{ weights: wa, rows: 1 }, { weights: wb, rows: 0 }]), wa);
  assert.deepEqual(federatedAverage([{ weights: wb, rows: 0 }, { weights: wa, rows: 5 }]), wa);
  assert.deepEqual(federatedAverage([{ weights: wa, rows: 17 }]), wa);
  assert.deepEqual(federatedAverage([{ weights: wa, rows: 0 }]), wa);
  assert.deepEqual(federatedAverage([{ weights: wa, rows: 3 }, { weights: wa, rows: 7 }, { weights: wa, rows: 11 }]), wa);
  // New arrays: changing the result leaves the input alone.
  const copy = federatedAverage([{ weights: wa, rows: 1 }]);
  copy.get('dense/bias')!.values[0] = 42;
  assert.notEqual(wa.get('dense/bias')!.values[0], 42);
});

test('should fall back to the plain mean when every input has 0 rows', () => {
  const averaged = federatedAverage([
    { weights: new Map([['w', weight([2], [1, 10])]]), rows: 0 },
    { weights: new Map([['w', weight([2], [3, 20])]]), rows: 0 },
  ]);
  assert.deepEqual(averaged.get('w')!.values, Float32Array.from([2, 15]));
});

test('should reject mismatched weights with an error naming the first weight that differs', () => {
  const reference = new Map([
    ['a', weight([2], [1, 2])],
    ['b', weight([2, 2], [1, 2, 3, 4])],
    ['c', weight([1], [5])],
  ]);
  const average = (other: ModelWeights): unknown => federatedAverage([{ weights: reference, rows: 1 }, { weights: other, rows: 1 }]);
  const expectError = (other: ModelWeights, message: RegExp): void => {
    assert.throws(() => average(other), (err: unknown) => err instanceof CheckpointError && message.test(err.message));
  };
  expectError(
    new Map([['a', weight([2], [1, 2])], ['b', weight([4], [1, 2, 3, 4])], ['c', weight([3], [1, 2, 3])]]),
    /^weight b has shape \[2, 2\] in inputs\[0\] but \[4\] in inputs\[1\]$/,
  );
  expectError(new Map([['a', weight([2], [1, 2])], ['c', weight([1], [5])]]), /^weight b is in inputs\[0\] but not in inputs\[1\]$/);
  expectError(
    new Map([...reference, ['d', weight([1], [0])]]),
    /^weight d is in inputs\[1\] but not in inputs\[0\]$/,
  );
  expectError(new Map([...reference, ['a', weight([2], [1])]]), /^weight a in inputs\[1\] has 1 values; its shape \[2\] holds 2$/);
  const int32 = { shape: [2], dtype: 'int32', values: Int32Array.from([1, 2]) } as unknown as WeightValues;
  expectError(new Map([...reference, ['c', int32]]), /^weight c in inputs\[1\] is int32; only float32/);
  // A NaN would reach every trainer.
  expectError(new Map([...reference, ['c', weight([1], [Number.NaN])]]), /^weight c of inputs\[1\] holds NaN or ±Infinity/);

  for (const rows of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => federatedAverage([{ weights: reference, rows: 1 }, { weights: reference, rows }]),
      (err: unknown) => err instanceof TextstreamError && err.code === ErrorCodes.INPUT_INVALID && /^inputs\[1\]\.rows must be/.test(err.message),
    );
  }
  assert.throws(() => federatedAverage([]), /at least one input/);
});

test('should apply an average to the model weights only: optimiser state, counters and evaluation stay bit-identical', async (t) => {
  const a = await trainedLearner(7, 1);
  const b = await trainedLearner(8, 2);
  t.after(() => {
    a.dispose();
    b.dispose();
  });
  const before = await a.checkpointState(null);
  const averaged = federatedAverage([
    { weights: modelWeightsOf(before), rows: 1 },
    { weights: modelWeightsOf(b), rows: 3 },
  ]);

  await expectNoLeakedTensors(() => applyAverage(a, averaged));

  const after = await a.checkpointState(null);
  assert.deepEqual(modelWeightsOf(a), averaged);
  assert.deepEqual(modelWeightsOf(after), averaged);
  assert.deepEqual(optimizerPart(after), optimizerPart(before));
  assert.ok(before.adamPowers !== null);
  assert.deepEqual(after.adamPowers, before.adamPowers);
  assert.equal(after.modelVersion, before.modelVersion);
  assert.equal(after.rowsSeen, before.rowsSeen);
  assert.deepEqual(after.evaluation, before.evaluation);
  assert.deepEqual(after.trainedThrough, before.trainedThrough);

  // A learner built from the averaged weights (written into the checkpoint's bytes, not
  // through the learner) with a's optimiser state scores, and then trains, exactly like a.
  const built = await PrequentialLearner.fromCheckpoint(withModelWeights(before, averaged), { trainBatchSize: 8 });
  t.after(() => built.dispose());
  const stream = new SyntheticStream(3, { maxLen, vocabSize, rows: 16 });
  const heldOut = stream.batch();
  assert.deepEqual((await a.score(heldOut)).scores, (await built.score(heldOut)).scores);
  const next = stream.batch();
  const trainedA = await a.process(next);
  const trainedBuilt = await built.process(next);
  assert.deepEqual(trainedA.scores, trainedBuilt.scores);
  assert.equal(trainedA.loss, trainedBuilt.loss);
  assert.deepEqual(modelWeightsOf(a), modelWeightsOf(built), 'the step after an average should use the kept Adam state');
});

test('should reject averaged weights that do not fit the learner, or are not finite, and change nothing', async (t) => {
  const a = await trainedLearner(7, 1);
  t.after(() => a.dispose());
  const weights = modelWeightsOf(a);
  const missing = new Map(weights);
  missing.delete('lstm/bias');
  const zeroed = new Map([...missing].map(([name, w]) => [name, { ...w, values: new Float32Array(w.values.length) }]));
  await assert.rejects(applyAverage(a, zeroed), (err: unknown) => err instanceof CheckpointError && err.message === 'weight lstm/bias is missing');
  const extra = new Map([...weights, ['lstm/extra', weight([1], [0])]]);
  await assert.rejects(applyAverage(a, extra), (err: unknown) => err instanceof CheckpointError && /^weight lstm\/extra is not a weight of this model/.test(err.message));
  const reshaped = new Map(weights);
  reshaped.set('dense/kernel', weight([1, SMALL_NETWORK.units!], [...weights.get('dense/kernel')!.values]));
  await assert.rejects(applyAverage(a, reshaped), (err: unknown) => err instanceof CheckpointError && /^weight dense\/kernel has shape \[1, 8\]/.test(err.message));
  const poisoned = new Map(weights);
  poisoned.set('dense/bias', weight([1], [Number.POSITIVE_INFINITY]));
  await assert.rejects(applyAverage(a, poisoned), (err: unknown) => err instanceof CheckpointError && err.message === 'weight dense/bias holds NaN or ±Infinity');
  assert.deepEqual(modelWeightsOf(a), weights);
});

test('should learn above chance with two trainers on different halves of a stream, averaged every few batches', async (t) => {
  // FedAvg starts every trainer from the same weights: the same seed.
  const trainers = [0, 1].map(() => PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 16 }));
  t.after(() => trainers.forEach((l) => l.dispose()));
  const stream = new SyntheticStream(11, { maxLen, vocabSize, rows: 32 });
  const rows = [0, 0];
  for (let round = 0; round < 4; round++) {
    // Each trainer takes every other batch: two disjoint halves of the stream.
    for (let i = 0; i < 10; i++) {
      const k = i % 2;
      rows[k]! += (await trainers[k]!.process(stream.batch())).trainedRows;
    }
    const averaged = federatedAverage(trainers.map((l, k) => ({ weights: modelWeightsOf(l), rows: rows[k]! })));
    for (const l of trainers) await applyAverage(l, averaged);
    rows.fill(0);
  }
  assert.deepEqual(modelWeightsOf(trainers[0]!), modelWeightsOf(trainers[1]!), 'after an average every trainer holds the same model');

  const heldOut = new SyntheticStream(12, { maxLen, vocabSize, rows: 256 }).batch();
  const { labels } = labelledRows(heldOut);
  const { scores } = await trainers[0]!.score(heldOut);
  let correct = 0;
  for (let i = 0; i < scores.length; i++) if ((scores[i]! > 0.5 ? 1 : 0) === labels[i]) correct++;
  // Balanced classes: chance is 0.5. A sanity check, not a bound on FedAvg's quality.
  const accuracy = correct / scores.length;
  assert.ok(accuracy > 0.75, `held-out accuracy ${accuracy}`);
});
