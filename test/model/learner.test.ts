import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ErrorCodes, TextstreamError } from '../../src/errors.js';
import { labelledRows } from '../../src/model/labelled-rows.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { SMALL_NETWORK, SyntheticStream, batchOf, expectNoLeakedTensors, maxAbsDiff, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen;
const vocabSize = SMALL_NETWORK.vocabSize;

function weightsOf(learner: PrequentialLearner): Float32Array[] {
  return learner.model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

test.before(async () => {
  await useWasm();
});

test('should score every row, then train only on the labelled rows', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 4 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(1, { maxLen, vocabSize, rows: 20, labelledFraction: 0.5 });
  const batch = stream.batch();
  // Counted from the Arrow column itself, not with the learner's own labelledRows().
  const labelled = batch.numRows - batch.getChild('label')!.nullCount;
  assert.ok(labelled > 0 && labelled < 20, 'the fixture should mix labelled and unlabelled rows');

  const result = await learner.process(batch);
  assert.equal(result.scores.length, 20);
  assert.ok(result.scores.every((s) => s > 0 && s < 1));
  assert.equal(result.labelledRows, labelled);
  assert.equal(result.trainedRows, labelled);
  assert.equal(result.trainSteps, Math.ceil(labelled / 4));
  assert.equal(result.modelVersion, 0);
  assert.equal(result.modelVersionAfter, Math.ceil(labelled / 4));
  assert.equal(learner.modelVersion, result.modelVersionAfter);
  assert.equal(learner.rowsSeen, 20);
  assert.equal(typeof result.loss, 'number');
  const snap = learner.evaluation();
  assert.equal(snap.count, labelled, 'only labelled rows are evaluated');
  assert.equal(snap.trainedRows, labelled);
});

test('should score before training: the scores are the untrained model’s', async (t) => {
  // Two learners with the same seed: one only scores, the other scores then trains.
  const scorer = PrequentialLearner.create({ network: SMALL_NETWORK });
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => {
    scorer.dispose();
    learner.dispose();
  });
  const batch = new SyntheticStream(2, { maxLen, vocabSize, rows: 16 }).batch();
  const scored = await scorer.score(batch);
  const processed = await learner.process(batch);
  assert.deepEqual(processed.scores, scored.scores);
  assert.equal(processed.modelVersionAfter, 1);
  const after = await learner.score(batch);
  assert.notDeepEqual(after.scores, scored.scores, 'training should have moved the model');
  assert.equal(after.modelVersion, 1);
  // The pre-training scores of one full minibatch give the same loss the training step saw.
  assert.ok(Math.abs(learner.evaluation().logLoss! - processed.loss!) < 1e-5);
});

test('should score each training minibatch right before the step that trains on it', async (t) => {
  // The reference is Keras' loop: predict_on_batch(chunk), then train_on_batch(chunk), chunk
  // after chunk. Scoring the whole batch first would give chunks 2 and 3 the scores of a
  // model two and one steps stale.
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  const reference = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  const stale = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => [learner, reference, stale].forEach((l) => l.dispose()));
  const stream = new SyntheticStream(12, { maxLen, vocabSize, rows: 0 });
  const messages = Array.from({ length: 24 }, (_, i) => stream.message(i % 3 === 0 ? 1 : 0, true));
  const processed = await learner.process(batchOf(messages, maxLen));

  const expected = new Float32Array(24);
  for (let start = 0; start < 24; start += 8) {
    const chunk = batchOf(messages.slice(start, start + 8), maxLen);
    expected.set((await reference.score(chunk)).scores, start);
    await reference.retrain(chunk);
  }
  assert.ok(maxAbsDiff(processed.scores, expected) < 1e-6, `max difference ${maxAbsDiff(processed.scores, expected)}`);
  const batchLevel = (await stale.score(batchOf(messages, maxLen))).scores;
  assert.ok(maxAbsDiff(processed.scores.subarray(0, 8), batchLevel.subarray(0, 8)) < 1e-6, 'the first chunk meets the untrained model');
  assert.ok(maxAbsDiff(processed.scores.subarray(8), batchLevel.subarray(8)) > 1e-4, 'later chunks must see the steps before them');
  // The evaluation counts exactly these scores.
  assert.equal(learner.evaluation().count, 24);
});

test('should score unlabelled rows with the model as it stood before the batch', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 4 });
  const scorer = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => [learner, scorer].forEach((l) => l.dispose()));
  const batch = new SyntheticStream(13, { maxLen, vocabSize, rows: 20, labelledFraction: 0.5 }).batch();
  const { rows: labelled } = labelledRows(batch);
  const before = (await scorer.score(batch)).scores;
  const processed = await learner.process(batch);
  assert.ok(processed.trainSteps > 1);
  const isLabelled = new Set(labelled);
  const unlabelled = Array.from({ length: 20 }, (_, r) => r).filter((r) => !isLabelled.has(r));
  assert.ok(unlabelled.length > 0);
  for (const r of unlabelled) assert.ok(Math.abs(processed.scores[r]! - before[r]!) < 1e-6, `row ${r}`);
});

test('should clip a step\'s gradients to clipNorm, and name the option when it is invalid', async (t) => {
  // Adam divides by the gradients' running RMS, so clipping shows in how steps weigh
  // against each other (and against Adam's epsilon), not in one step's size: after ten
  // steps the weights differ.
  const free = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  const clipped = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8, clipNorm: 1e-6 });
  t.after(() => [free, clipped].forEach((l) => l.dispose()));
  const a = new SyntheticStream(14, { maxLen, vocabSize, rows: 32 });
  const b = new SyntheticStream(14, { maxLen, vocabSize, rows: 32 });
  for (let i = 0; i < 10; i++) {
    await free.process(a.batch());
    await clipped.process(b.batch());
  }
  assert.notDeepEqual(weightsOf(free), weightsOf(clipped), 'clipping should change the updates');
  assert.throws(
    () => PrequentialLearner.create({ network: SMALL_NETWORK, clipNorm: 0 }),
    (err: unknown) => err instanceof ConfigError && err.path === 'model.clipNorm',
  );
});

test('should not train on a batch without labelled rows', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => learner.dispose());
  const before = weightsOf(learner);
  const batch = new SyntheticStream(3, { maxLen, vocabSize, rows: 10, labelledFraction: 0 }).batch();
  const result = await learner.process(batch);
  assert.equal(result.scores.length, 10);
  assert.equal(result.trainSteps, 0);
  assert.equal(result.loss, null);
  assert.equal(learner.modelVersion, 0);
  assert.equal(learner.evaluation().count, 0);
  assert.deepEqual(weightsOf(learner), before);
});

test('should count one model version per training step and report the version that scored', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 4 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(4, { maxLen, vocabSize, rows: 10 });
  const first = await learner.process(stream.batch());
  assert.deepEqual([first.modelVersion, first.trainSteps, first.modelVersionAfter], [0, 3, 3]); // 4 + 4 + 2 rows
  const second = await learner.process(stream.batch());
  assert.deepEqual([second.modelVersion, second.modelVersionAfter], [3, 6]);
  assert.equal(learner.evaluation().trainSteps, 6);
});

test('should take steps of the trainBatchSize a call asks for, and of its own otherwise', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 4 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(4, { maxLen, vocabSize, rows: 10 });
  assert.equal((await learner.process(stream.batch())).trainSteps, 3); // 4 + 4 + 2 rows
  assert.equal((await learner.process(stream.batch(), { trainBatchSize: 2 })).trainSteps, 5);
  assert.equal((await learner.process(stream.batch())).trainSteps, 3, 'the option holds for its call only');
  assert.equal(learner.trainBatchSize, 4);
  assert.throws(
    () => learner.process(stream.batch(), { trainBatchSize: 1.5 }),
    (err: unknown) => err instanceof ConfigError && err.path === 'model.trainBatchSize',
  );
});

test('should serialise overlapping calls so each batch sees the previous one’s model', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(5, { maxLen, vocabSize, rows: 8 });
  const results = await Promise.all([learner.process(stream.batch()), learner.process(stream.batch()), learner.process(stream.batch())]);
  assert.deepEqual(
    results.map((r) => r.modelVersion),
    [0, 1, 2],
  );
});

test('should push prequential accuracy well above chance on a separable stream', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 16 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(6, { maxLen, vocabSize, rows: 32, labelledFraction: 0.9 });
  for (let i = 0; i < 40; i++) await learner.process(stream.batch());
  const snap = learner.evaluation();
  // Classes are balanced, so chance is 0.5; every score counted was made before training.
  assert.ok(snap.recentAccuracy! > 0.85, `recent accuracy ${snap.recentAccuracy}`);
  assert.ok(snap.auc! > 0.85, `auc ${snap.auc}`);
  assert.ok(snap.recentTrainLoss! < 0.5, `recent training loss ${snap.recentTrainLoss}`);
});

test('should keep tf.memory().numTensors flat over 50 batches', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(7, { maxLen, vocabSize, rows: 24, labelledFraction: 0.7 });
  // Warm-up: Adam creates its moment variables on the first step.
  for (let i = 0; i < 3; i++) await learner.process(stream.batch());
  const warm = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  for (let i = 0; i < 50; i++) {
    await expectNoLeakedTensors(async () => {
      await learner.process(stream.batch());
      await learner.score(stream.batch());
    });
  }
  assert.equal(tf.memory().numTensors, warm);
  assert.equal(tf.memory().numBytes, bytes);
});

test('should free all of its tensors on dispose', async () => {
  const before = tf.memory().numTensors;
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK });
  await learner.process(new SyntheticStream(8, { maxLen, vocabSize, rows: 8 }).batch());
  learner.dispose();
  learner.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(learner.process(new SyntheticStream(8, { maxLen, vocabSize, rows: 8 }).batch()), TextstreamError);
});

test('should reject token ids outside the vocabulary with a clear error', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(9, { maxLen, vocabSize, rows: 2 });
  const bad = stream.message(1, true);
  bad.tokens[maxLen - 1] = vocabSize;
  const batch = batchOf([stream.message(0, true), bad], maxLen);
  await assert.rejects(learner.process(batch), (err: unknown) => {
    assert.ok(err instanceof TextstreamError);
    assert.equal(err.code, ErrorCodes.INPUT_INVALID);
    assert.match(err.message, /row 1 \(id m\d+\) has token id 200 outside \[0, 200\)/);
    return true;
  });
  assert.equal(learner.modelVersion, 0);
  // The learner stays usable after a rejected batch.
  await learner.process(stream.batch());
});

test('should reject a batch whose sequence length is not the model’s maxLen', async (t) => {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK });
  t.after(() => learner.dispose());
  const batch = new SyntheticStream(10, { maxLen: maxLen + 1, vocabSize, rows: 2 }).batch();
  await assert.rejects(learner.process(batch), /expects maxLen 12/);
});

test('should read labels from the Arrow validity bitmap, not from placeholder values', () => {
  const stream = new SyntheticStream(11, { maxLen, vocabSize, rows: 4 });
  const batch = batchOf([stream.message(1, true), stream.message(1, false), stream.message(0, true), stream.message(0, false)], maxLen);
  const { rows, labels } = labelledRows(batch);
  assert.deepEqual(Array.from(rows), [0, 2]);
  assert.deepEqual(Array.from(labels), [1, 0]);
  const sliced = labelledRows(batch.slice(1, 4));
  assert.deepEqual(Array.from(sliced.rows), [1]);
  assert.deepEqual(Array.from(sliced.labels), [0]);
});

test('should name the bad option when a batch size is invalid', () => {
  assert.throws(
    () => PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 0 }),
    (err: unknown) => err instanceof ConfigError && err.path === 'model.trainBatchSize',
  );
});
