/**
 * The learner's guard against a training step with a NaN or infinite loss or gradient: the
 * step is rejected, the model keeps its last good weights and Adam state, a counter says so.
 *
 * The poison goes through the real code path, with no test hook: one embedding row is set
 * to NaN (or to a huge value), and only a row carrying that token id reaches it. Batches
 * without that token train exactly as before (their gradient for the row is 0, and Adam
 * leaves a weight with zero moments where it is), so a twin learner that never saw the
 * poisoned batch is the reference for "the rejected step left no trace".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { RecordBatch } from 'apache-arrow';
import { Registry } from 'prom-client';
import { tokenMatrix } from '../../src/batch/builder.js';
import type { TokenizedMessage } from '../../src/message.js';
import { PipelineMetrics } from '../../src/metrics/definitions.js';
import { labelledRows } from '../../src/model/labelled-rows.js';
import { PrequentialLearner, type RejectedUpdate } from '../../src/model/learner.js';
import { LayerNames, buildNetwork, resolveNetworkConfig } from '../../src/model/network.js';
import { SMALL_NETWORK, SyntheticStream, batchOf, expectNoLeakedTensors, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen;
const vocabSize = SMALL_NETWORK.vocabSize;
/** The token whose embedding row is poisoned; clean batches never use it. */
const POISON = vocabSize - 1;
const STEP = 8;

test.before(async () => {
  await useWasm();
});

/** A stream whose tokens stay below POISON. */
function cleanStream(seed: number, rows = STEP): SyntheticStream {
  return new SyntheticStream(seed, { maxLen, vocabSize: POISON, rows });
}

/** `rows` labelled messages from `stream`; those at `poisoned` indices end with the POISON token. */
function batchWith(stream: SyntheticStream, rows: number, poisoned: number[]): { batch: RecordBatch; messages: TokenizedMessage[] } {
  const messages = Array.from({ length: rows }, (_, i) => {
    const m = stream.message(i % 2 === 0 ? 1 : 0, true);
    if (poisoned.includes(i)) m.tokens[maxLen - 1] = POISON;
    return m;
  });
  return { batch: batchOf(messages, maxLen), messages };
}

function setEmbeddingRow(learner: PrequentialLearner, row: number, value: number): void {
  const layer = learner.model.getLayer(LayerNames.EMBEDDING);
  const [table] = layer.getWeights();
  const values = table!.dataSync().slice();
  values.fill(value, row * table!.shape[1]!, (row + 1) * table!.shape[1]!);
  const replaced = tf.tensor(values, table!.shape);
  layer.setWeights([replaced]);
  replaced.dispose();
}

/**
 * Every bit of the training state: model and optimiser weights (Adam's moments and step
 * count, as a checkpoint stores them) and Adam's running powers.
 */
async function trainingState(learner: PrequentialLearner): Promise<{ weights: Buffer; adamPowers: unknown; version: number }> {
  const state = await learner.checkpointState(null);
  const data = state.artifacts.weightData!;
  const weights = Buffer.concat((Array.isArray(data) ? data : [data]).map((b) => Buffer.from(b)));
  return { weights, adamPowers: state.adamPowers, version: state.modelVersion };
}

/** Two learners with the same seed and history (a few clean steps, then the poisoned row). */
async function twins(t: { after: (fn: () => void) => void }, options: { poison?: number; onRejectedUpdate?: (e: RejectedUpdate) => void } = {}) {
  const make = (onRejectedUpdate?: (e: RejectedUpdate) => void) =>
    PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: STEP, ...(onRejectedUpdate ? { onRejectedUpdate } : {}) });
  const subject = make(options.onRejectedUpdate);
  const reference = make();
  t.after(() => {
    subject.dispose();
    reference.dispose();
  });
  const history = cleanStream(11, 24);
  for (let i = 0; i < 4; i++) {
    const batch = history.batch();
    await subject.process(batch);
    await reference.process(batch);
  }
  for (const learner of [subject, reference]) setEmbeddingRow(learner, POISON, options.poison ?? Number.NaN);
  return { subject, reference };
}

test('should reject a step with NaN gradients, leaving weights and Adam state bit-identical', async (t) => {
  const events: RejectedUpdate[] = [];
  const { subject } = await twins(t, { onRejectedUpdate: (e) => events.push(e) });
  const { batch, messages } = batchWith(cleanStream(12), STEP, [3]);
  const before = await trainingState(subject);

  const result = await expectNoLeakedTensors(() => subject.process(batch));

  assert.deepEqual(await trainingState(subject), before, 'weights, Adam moments, step count and powers are unchanged');
  assert.equal(result.trainSteps, 0);
  assert.equal(result.rejectedSteps, 1);
  assert.equal(result.trainedRows, 0);
  assert.equal(result.rejectedRows, STEP);
  assert.equal(result.loss, null);
  assert.equal(result.modelVersionAfter, result.modelVersion);
  assert.equal(subject.rejectedUpdates, 1);
  assert.ok(Number.isNaN(result.scores[3]!), 'the poisoned row scores NaN');
  assert.ok(result.scores.every((s, i) => i === 3 || Number.isFinite(s)), 'and no other row does');

  assert.equal(events.length, 1, 'one event per rejected step');
  const [event] = events;
  // The loss clips scores to [1e-7, 1 − 1e-7], NaN included, so it stays finite: the NaN
  // shows in the gradients.
  assert.equal(event!.reason, 'gradient');
  assert.ok(Number.isFinite(event!.loss));
  assert.equal(event!.rows, STEP);
  assert.equal(event!.modelVersion, before.version);
  assert.equal(event!.rejectedUpdates, 1);
  const offsets = messages.map((m) => m.position.offset);
  assert.deepEqual(event!.positions, [{ source: 'synthetic', partition: 0, firstOffset: String(offsets[0]), lastOffset: String(offsets.at(-1)) }]);
  assert.match(
    event!.message,
    new RegExp(
      `^training step rejected: a gradient is NaN or infinite \\(loss ${event!.loss}\\) on 8 rows ` +
        `\\(synthetic/0@${offsets[0]}-${offsets.at(-1)}\\); the model stays at version ${before.version} \\(1 rejected so far\\)$`,
    ),
  );
  // The running training loss never saw the NaN.
  assert.ok(Number.isFinite(subject.evaluation().lastTrainLoss!));
});

test('should train the next clean batch exactly as if the rejected step never happened', async (t) => {
  const { subject, reference } = await twins(t);
  await subject.process(batchWith(cleanStream(13), STEP, [0, 5]).batch);
  assert.equal(subject.rejectedUpdates, 1);

  const next = cleanStream(14, 16).batch();
  const a = await subject.process(next);
  const b = await reference.process(next);
  assert.equal(a.trainSteps, 2);
  assert.equal(a.rejectedSteps, 0);
  assert.ok(Number.isFinite(a.loss!));
  assert.equal(a.loss, b.loss);
  assert.deepEqual(a.scores, b.scores);
  assert.equal(subject.modelVersion, reference.modelVersion);
  assert.deepEqual(await trainingState(subject), await trainingState(reference));
});

test('should reject only the poisoned step of a batch and apply the others', async (t) => {
  const { subject } = await twins(t);
  const before = subject.modelVersion;
  const { batch } = batchWith(cleanStream(15), 3 * STEP, [STEP + 2]);
  const result = await subject.process(batch);
  assert.equal(result.trainSteps, 2);
  assert.equal(result.rejectedSteps, 1);
  assert.equal(result.trainedRows, 2 * STEP);
  assert.equal(result.rejectedRows, STEP);
  assert.ok(Number.isFinite(result.loss!));
  assert.equal(subject.modelVersion, before + 2);
  assert.equal(subject.rejectedUpdates, 1);
  assert.equal(subject.evaluation().trainedRows, 4 * 24 + 2 * STEP, 'rejected rows are not counted as trained');
});

test('should reject a step with infinite gradients', async (t) => {
  const events: RejectedUpdate[] = [];
  const { subject } = await twins(t, { poison: Number.POSITIVE_INFINITY, onRejectedUpdate: (e) => events.push(e) });
  const before = await trainingState(subject);
  const result = await subject.process(batchWith(cleanStream(16), STEP, [1]).batch);
  assert.equal(result.rejectedSteps, 1);
  assert.equal(events[0]?.reason, 'gradient');
  assert.deepEqual(await trainingState(subject), before);
});

test('should reject the step the nan-loss fault injection poisons (textstream run --inject-fault nan-loss:N)', async (t) => {
  const events: RejectedUpdate[] = [];
  const make = (nanLossAtStep: number | null) =>
    PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: STEP, nanLossAtStep, onRejectedUpdate: (e) => events.push(e) });
  const subject = make(3);
  const reference = make(null);
  t.after(() => {
    subject.dispose();
    reference.dispose();
  });
  // Step 1 (it also creates Adam's state), then steps 2 to 4: the 3rd is poisoned.
  const warmUp = batchWith(cleanStream(21), STEP, []).batch;
  await subject.process(warmUp);
  await reference.process(warmUp);
  const batch = batchWith(cleanStream(20), 3 * STEP, []).batch;
  const result = await expectNoLeakedTensors(() => subject.process(batch));
  assert.equal(result.trainSteps, 2);
  assert.equal(result.rejectedSteps, 1);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.reason, 'loss');
  assert.ok(Number.isNaN(events[0]!.loss));
  // The reference trains on the same rows without the poisoned step's: then both are bit-identical.
  await reference.process(batch.slice(0, STEP));
  await reference.process(batch.slice(2 * STEP));
  assert.deepEqual((await trainingState(subject)).weights, (await trainingState(reference)).weights);
});

test('should count rejected steps in textstream_model_updates_rejected_total', async (t) => {
  const { subject } = await twins(t);
  const registry = new Registry();
  // As src/runtime/components.ts reads the learner into ModelState at scrape time.
  new PipelineMetrics(registry, () => ({ backend: 'wasm', lstm: subject.lstm, version: subject.modelVersion, accuracy: null, auc: null, logLoss: null, trainLoss: null, updatesRejected: subject.rejectedUpdates }), { processMetrics: false });
  assert.match(await registry.metrics(), /^textstream_model_updates_rejected_total 0$/m);
  const stream = cleanStream(19);
  await subject.process(batchWith(stream, 2 * STEP, [0, STEP]).batch);
  await subject.process(batchWith(stream, STEP, [2]).batch);
  assert.match(await registry.metrics(), /^textstream_model_updates_rejected_total 3$/m);
});

test('should keep tf.memory() flat over many rejected and applied steps', async (t) => {
  const { subject } = await twins(t);
  const stream = cleanStream(17);
  await subject.process(batchWith(stream, 2 * STEP, [0]).batch);
  const warm = tf.memory();
  for (let i = 0; i < 20; i++) {
    await expectNoLeakedTensors(() => subject.process(batchWith(stream, 2 * STEP, i % 2 === 0 ? [1] : []).batch));
  }
  assert.equal(subject.rejectedUpdates, 11);
  assert.equal(tf.memory().numTensors, warm.numTensors);
  assert.equal(tf.memory().numBytes, warm.numBytes);
});

for (const lstm of ['fused', 'stock'] as const) {
  test(`should train bit-identically to tfjs trainOnBatch (${lstm} LSTM)`, async (t) => {
    // The guarded step computes what trainOnBatch does, split so the update can be skipped.
    const network = { ...SMALL_NETWORK, lstm };
    const learner = PrequentialLearner.create({ network, trainBatchSize: STEP });
    const model = buildNetwork(resolveNetworkConfig(network));
    t.after(() => {
      learner.dispose();
      model.optimizer.dispose();
      model.dispose();
    });
    const stream = new SyntheticStream(18, { maxLen, vocabSize, rows: STEP });
    for (let i = 0; i < 6; i++) {
      const batch = stream.batch();
      const { labels } = labelledRows(batch);
      const x = tf.tensor2d(tokenMatrix(batch), [STEP, maxLen], 'int32');
      const y = tf.tensor2d(labels, [STEP, 1]);
      const expected = (await model.trainOnBatch(x, y)) as number;
      tf.dispose([x, y]);
      const result = await learner.process(batch);
      assert.equal(result.loss, expected, `step ${i}: loss`);
    }
    const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Buffer.from(w.dataSync().buffer));
    assert.deepEqual(weights(learner.model), weights(model));
  });
}
