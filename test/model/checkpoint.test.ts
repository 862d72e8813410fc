import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../../src/errors.js';
import { loadCheckpointDir, loadLatestCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { SMALL_NETWORK, SyntheticStream, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen!;
const vocabSize = SMALL_NETWORK.vocabSize!;
const tokenizer = { class_name: 'Tokenizer', config: { num_words: 200, oov_token: '<OOV>', word_index: '{"<OOV>": 1, "free": 2}' } };

function tempRoot(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'textstream-ckpt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function weightsOf(learner: PrequentialLearner): Float32Array[] {
  return learner.model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

/** A learner with some training history: many steps, so Adam's state matters. */
async function trained(steps: number): Promise<{ learner: PrequentialLearner; stream: SyntheticStream }> {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  const stream = new SyntheticStream(1, { maxLen, vocabSize, rows: 16, labelledFraction: 0.75 });
  while (learner.modelVersion < steps) await learner.process(stream.batch());
  return { learner, stream };
}

test.before(async () => {
  await useWasm();
});

test('should resume from a checkpoint with identical scores and a bit-identical next training step', async (t) => {
  const root = tempRoot(t);
  // > 60 steps: where tfjs' own Adam restore (pow instead of the running product) drifts.
  const { learner, stream } = await trained(80);
  t.after(() => learner.dispose());
  const saved = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  assert.ok(saved.dir.startsWith(root));

  const state = await loadLatestCheckpoint(root);
  assert.ok(state !== null);
  assert.deepEqual(state.tokenizer, tokenizer);
  assert.equal(state.modelVersion, learner.modelVersion);
  assert.equal(state.rowsSeen, learner.rowsSeen);
  const resumed = await PrequentialLearner.fromCheckpoint(state, { trainBatchSize: 8 });
  t.after(() => resumed.dispose());
  assert.equal(resumed.modelVersion, learner.modelVersion);
  assert.equal(resumed.rowsSeen, learner.rowsSeen);
  assert.deepEqual(resumed.evaluation(), learner.evaluation());
  assert.deepEqual(weightsOf(resumed), weightsOf(learner));

  const next = stream.batch();
  const a = await learner.process(next);
  const b = await resumed.process(next);
  assert.deepEqual(b.scores, a.scores);
  assert.equal(b.loss, a.loss);
  assert.equal(b.modelVersionAfter, a.modelVersionAfter);
  // Same weights after the step means Adam's moments, step count and powers came back.
  assert.deepEqual(weightsOf(resumed), weightsOf(learner));
});

test('should return null when nothing was ever published, ignoring a temp dir left by a crash', async (t) => {
  const root = tempRoot(t);
  assert.equal(await loadLatestCheckpoint(path.join(root, 'missing')), null);
  mkdirSync(path.join(root, '.tmp-0d2c'));
  writeFileSync(path.join(root, '.tmp-0d2c', 'manifest.json'), '{"format": "textstream-checkp');
  assert.equal(await loadLatestCheckpoint(root), null);
});

test('should load the published checkpoint when a later save died half-way', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(2);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  // What a crash mid-save leaves: a temp dir with some files, LATEST untouched.
  const tmp = path.join(root, '.tmp-7f3e');
  mkdirSync(tmp);
  writeFileSync(path.join(tmp, 'weights.bin'), new Uint8Array(100));
  const state = await loadLatestCheckpoint(root);
  assert.equal(state?.modelVersion, learner.modelVersion);
});

test('should throw CheckpointError for a truncated or corrupted checkpoint', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  const { dir } = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const weights = path.join(dir, 'weights.bin');
  const original = readFileSync(weights);

  truncateSync(weights, original.length - 10);
  await assert.rejects(loadLatestCheckpoint(root), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /weights\.bin has \d+ bytes, the manifest says \d+/);
    return true;
  });

  const flipped = Buffer.from(original);
  flipped[1000] = flipped[1000]! ^ 0xff;
  writeFileSync(weights, flipped);
  await assert.rejects(loadLatestCheckpoint(root), /weights\.bin does not match its SHA-256/);

  writeFileSync(weights, original);
  assert.ok(await loadCheckpointDir(dir));
  const manifest = path.join(dir, 'manifest.json');
  const text = readFileSync(manifest, 'utf8');
  writeFileSync(manifest, text.slice(0, text.length / 2));
  await assert.rejects(loadCheckpointDir(dir), /manifest\.json is not valid JSON/);

  rmSync(manifest);
  await assert.rejects(loadCheckpointDir(dir), (err: unknown) => err instanceof CheckpointError && /manifest\.json is missing/.test(err.message));

  writeFileSync(path.join(root, 'LATEST'), '../../etc\n');
  await assert.rejects(loadLatestCheckpoint(root), CheckpointError);
});

test('should refuse a checkpoint whose network differs from the configured one', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const state = (await loadLatestCheckpoint(root))!;
  await assert.rejects(
    PrequentialLearner.fromCheckpoint(state, { network: { ...SMALL_NETWORK, vocabSize: 300 } }),
    /checkpoint has network.vocabSize = 200 but the configuration asks for 300/,
  );
});

test('should keep only the newest checkpoints and leak no tensors across save and load', async (t) => {
  const root = tempRoot(t);
  const { learner, stream } = await trained(1);
  t.after(() => learner.dispose());
  const beforeSaves = tf.memory().numTensors;
  for (let i = 0; i < 4; i++) {
    await learner.process(stream.batch());
    await saveCheckpoint(root, await learner.checkpointState(tokenizer), { keep: 2 });
  }
  assert.equal(tf.memory().numTensors, beforeSaves, 'saving leaks no tensors');
  const dirs = readdirSync(root).filter((e) => e.startsWith('ckpt-'));
  assert.equal(dirs.length, 2);
  assert.equal(readFileSync(path.join(root, 'LATEST'), 'utf8').trim(), dirs.sort().at(-1));
  assert.deepEqual(
    readdirSync(root).filter((e) => e.startsWith('.tmp-')),
    [],
  );

  const before = tf.memory().numTensors;
  const resumed = await PrequentialLearner.fromCheckpoint((await loadLatestCheckpoint(root))!);
  resumed.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('should throw CheckpointError, leaking nothing, when the weights do not fit the network', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const state = (await loadLatestCheckpoint(root))!;
  const before = tf.memory().numTensors;
  await assert.rejects(
    PrequentialLearner.fromCheckpoint({ ...state, network: { ...state.network, units: 16 } }),
    (err: unknown) => err instanceof CheckpointError && /weights could not be restored/.test(err.message),
  );
  assert.equal(tf.memory().numTensors, before);
});
