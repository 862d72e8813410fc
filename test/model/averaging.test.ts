import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { io } from '@tensorflow/tfjs';
import { CheckpointError, ErrorCodes, TextstreamError } from '../../src/errors.js';
import { applyAverage, federatedAverage, federatedUpdate, modelWeightsOf, type ModelWeights, type WeightValues } from '../../src/model/averaging.js';
import type { CheckpointState } from '../../src/model/checkpoint.js';
import { labelledRows } from '../../src/model/labelled-rows.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { SMALL_NETWORK, SyntheticStream, expectNoLeakedTensors, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen;
const vocabSize = SMALL_NETWORK.vocabSize;
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

/** Two learners with different seeds and data (their weights differ), disposed after the test. */
async function twoLearners(t: TestContext): Promise<[PrequentialLearner, PrequentialLearner]> {
  const a = await trainedLearner(7, 1);
  const b = await trainedLearner(8, 2);
  t.after(() => {
    a.dispose();
    b.dispose();
  });
  return [a, b];
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
  assert.deepEqual(fromState.get('lstm/kernel')!.shape, [SMALL_NETWORK.embeddingDim, 4 * SMALL_NETWORK.units]);
});

test('should weight each weight element by rows: rows 1 and 3 give 0.25·a + 0.75·b', async (t) => {
  const [a, b] = await twoLearners(t);
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
  const [a, b] = await twoLearners(t);
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

/** The bytes of every weight, so that -0 and +0 (equal to deepEqual) differ. */
function bytesOf(weights: ModelWeights): Map<string, Uint8Array> {
  return new Map([...weights].map(([name, w]) => [name, new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength)]));
}

test('should move the base by η times the row-weighted mean update, and carry momentum: hand-computed elements', () => {
  // Dyadic values, so every step below is exact in float64 and float32.
  const base = new Map([['w', weight([4], [1, 0, 2, -1])]]);
  const inputs = [
    { weights: new Map([['w', weight([4], [2, 1, 2, 0])]]), rows: 1 },
    { weights: new Map([['w', weight([4], [1, 2, 4, -2])]]), rows: 3 },
  ];
  // mean = (1·a + 3·b)/4 = [1.25, 1.75, 3.5, -1.5]; Δ = mean − base = [0.25, 1.75, 1.5, -0.5].
  assert.deepEqual(federatedAverage(inputs).get('w')!.values, Float32Array.from([1.25, 1.75, 3.5, -1.5]));
  const plain = federatedUpdate(base, inputs);
  assert.deepEqual(plain.weights.get('w')!.values, Float32Array.from([1.25, 1.75, 3.5, -1.5]));
  assert.deepEqual(plain.velocity.get('w')!.values, Float32Array.from([0.25, 1.75, 1.5, -0.5]));
  // η = 2: base + 2·Δ = [1.5, 3.5, 5, -2].
  const doubled = federatedUpdate(base, inputs, { serverLearningRate: 2 });
  assert.deepEqual(doubled.weights.get('w')!.values, Float32Array.from([1.5, 3.5, 5, -2]));
  assert.deepEqual(doubled.velocity.get('w')!.values, Float32Array.from([0.25, 1.75, 1.5, -0.5]));
  // η = 2, β = 0.5, v_prev = [1, -1, 0, 2]: v = 0.5·v_prev + Δ = [0.75, 1.25, 1.5, 0.5];
  // base + 2·v = [2.5, 2.5, 5, 0].
  const velocity = new Map([['w', weight([4], [1, -1, 0, 2])]]);
  const carried = federatedUpdate(base, inputs, { serverLearningRate: 2, serverMomentum: 0.5, velocity });
  assert.deepEqual(carried.weights.get('w')!.values, Float32Array.from([2.5, 2.5, 5, 0]));
  assert.deepEqual(carried.velocity.get('w')!.values, Float32Array.from([0.75, 1.25, 1.5, 0.5]));
  // Momentum without a previous velocity (the first round) is no momentum.
  assert.deepEqual(federatedUpdate(base, inputs, { serverLearningRate: 2, serverMomentum: 0.9 }), doubled);
  // Without momentum a velocity is ignored.
  assert.deepEqual(federatedUpdate(base, inputs, { serverLearningRate: 2, velocity }), doubled);
});

test('should add up the trainers\' updates at η = N with equal rows', () => {
  const base = new Map([['w', weight([2], [1, -1])]]);
  const updates = [
    [0.5, 0.25],
    [-0.125, 1],
    [2, -0.5],
  ];
  const inputs = updates.map((u) => ({ weights: new Map([['w', weight([2], [1 + u[0]!, -1 + u[1]!])]]), rows: 256 }));
  // base + Σ_k (w_k − base) = [1 + 2.375, −1 + 0.75].
  assert.deepEqual(federatedUpdate(base, inputs, { serverLearningRate: 3 }).weights.get('w')!.values, Float32Array.from([3.375, -0.25]));
});

test('should equal plain FedAvg bit for bit at η = 1 without momentum, whatever the base', async (t) => {
  const a = await trainedLearner(7, 1);
  const b = await trainedLearner(8, 2);
  const base = await trainedLearner(9, 3);
  t.after(() => [a, b, base].forEach((l) => l.dispose()));
  const inputs = [
    { weights: modelWeightsOf(a), rows: 3 },
    { weights: modelWeightsOf(b), rows: 5 },
  ];
  const averaged = federatedAverage(inputs);
  for (const options of [{}, { serverLearningRate: 1 }, { serverLearningRate: 1, serverMomentum: 0.9 }]) {
    const update = federatedUpdate(modelWeightsOf(base), inputs, options);
    assert.deepEqual(bytesOf(update.weights), bytesOf(averaged), JSON.stringify(options));
  }
  // Signed zeros too: a mean of -0 stays -0 whatever the base.
  const zero = [{ weights: new Map([['w', weight([1], [-0])]]), rows: 1 }];
  const fromZero = federatedUpdate(new Map([['w', weight([1], [1])]]), zero);
  assert.ok(Object.is(fromZero.weights.get('w')!.values[0], -0));

  // η ≠ 1 on real weights: within float32 rounding of base + η·(mean − base).
  const eta = 2;
  const w = modelWeightsOf(base);
  const update = federatedUpdate(w, inputs, { serverLearningRate: eta });
  for (const [name, { values }] of update.weights) {
    const m = averaged.get(name)!.values;
    const bv = w.get(name)!.values;
    values.forEach((x, i) => {
      const expected = bv[i]! + eta * (m[i]! - bv[i]!);
      assert.ok(Math.abs(x - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `${name}[${i}]: ${x} vs ${expected}`);
    });
  }
});

test('should reject bad options, a base or velocity that does not match the inputs, and a non-finite update, naming what is wrong', () => {
  const reference = new Map([
    ['a', weight([2], [1, 2])],
    ['b', weight([2, 2], [1, 2, 3, 4])],
  ]);
  const inputs = [{ weights: reference, rows: 1 }];
  const invalid = (options: Parameters<typeof federatedUpdate>[2], message: RegExp): void => {
    assert.throws(
      () => federatedUpdate(reference, inputs, options),
      (err: unknown) => err instanceof TextstreamError && err.code === ErrorCodes.INPUT_INVALID && message.test(err.message),
    );
  };
  for (const eta of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) invalid({ serverLearningRate: eta }, /^options\.serverLearningRate must be a finite number > 0, got /);
  for (const beta of [1, -0.1, Number.NaN]) invalid({ serverMomentum: beta }, /^options\.serverMomentum must be a number in \[0, 1\), got /);
  assert.throws(() => federatedUpdate(reference, []), /^InputError: federatedUpdate needs at least one input$/);

  const mismatched = (base: ModelWeights, velocity: ModelWeights | null, message: RegExp): void => {
    assert.throws(
      () => federatedUpdate(base, inputs, { serverMomentum: 0.9, velocity }),
      (err: unknown) => err instanceof CheckpointError && message.test(err.message),
    );
  };
  mismatched(new Map([['a', weight([2], [1, 2])]]), null, /^weight b is in inputs\[0\] but not in base$/);
  mismatched(new Map([['a', weight([2], [1, 2])], ['b', weight([4], [1, 2, 3, 4])]]), null, /^weight b has shape \[2, 2\] in inputs\[0\] but \[4\] in base$/);
  mismatched(reference, new Map([...reference, ['c', weight([1], [0])]]), /^weight c is in velocity but not in inputs\[0\]$/);
  mismatched(new Map([...reference, ['a', weight([2], [Number.NaN, 0])]]), null, /^weight a of base holds NaN or ±Infinity/);
  mismatched(reference, new Map([...reference, ['b', weight([2, 2], [0, 0, Number.NEGATIVE_INFINITY, 0])]]), /^weight b of velocity holds NaN or ±Infinity$/);
  // η·Δ beyond float32: Δ = 3e38 − (−3e38), η = 2.
  assert.throws(
    () => federatedUpdate(new Map([['w', weight([1], [-3e38])]]), [{ weights: new Map([['w', weight([1], [3e38])]]), rows: 1 }], { serverLearningRate: 2 }),
    (err: unknown) => err instanceof CheckpointError && /^the update of weight w is not finite/.test(err.message),
  );
});

test('should apply an average to the model weights only: optimiser state, counters and evaluation stay bit-identical', async (t) => {
  const [a, b] = await twoLearners(t);
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
  reshaped.set('dense/kernel', weight([1, SMALL_NETWORK.units], [...weights.get('dense/kernel')!.values]));
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
