import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/errors.js';
import { buildNetwork, defaultNetworkConfig, parameterCounts, resolveNetworkConfig } from '../../src/model/network.js';
import { repoRoot } from '../helpers/paths.js';
import { KERAS_SEED_NETWORK, maxAbsDiff, rng, useWasm } from './helpers.js';

const run = promisify(execFile);
// Creating the venv downloads TensorFlow when it is missing (CI creates it beforehand).
const VENV_TIMEOUT_MS = 20 * 60_000;
const SCRIPT_TIMEOUT_MS = 3 * 60_000;

test.before(async () => {
  await useWasm();
});

test('should have the seed model’s layer shapes and parameter counts', () => {
  const model = buildNetwork(resolveNetworkConfig({ ...KERAS_SEED_NETWORK, seed: 1 }));
  try {
    // Keras' model.summary() for the seed model:
    //   embedding (Embedding)  (None, 100, 64)  640000   = 10000·64
    //   lstm (LSTM)            (None, 64)       33024    = 4·64·(64 + 64 + 1)
    //   dense (Dense)          (None, 1)        65       = 64 + 1
    assert.deepEqual(parameterCounts(model), { embedding: 640_000, lstm: 33_024, dense: 65 });
    assert.deepEqual(
      model.layers.map((l) => l.outputShape),
      [
        [null, 100, 64],
        [null, 64],
        [null, 1],
      ],
    );
    assert.deepEqual(
      model.getWeights().map((w) => w.shape),
      [[10_000, 64], [64, 256], [64, 256], [256], [64, 1], [1]],
    );
  } finally {
    model.dispose();
  }
});

test('should initialise the LSTM bias like Keras’ unit_forget_bias (forget gate 1, others 0)', () => {
  const model = buildNetwork(resolveNetworkConfig({ ...KERAS_SEED_NETWORK, seed: 1, units: 4, embeddingDim: 3, vocabSize: 10, maxLen: 5 }));
  try {
    const bias = Array.from(model.getWeights()[3]!.dataSync());
    assert.deepEqual(bias, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  } finally {
    model.dispose();
  }
});

test('should initialise identically for the same seed and differently for another', () => {
  const config = { ...KERAS_SEED_NETWORK, vocabSize: 50, embeddingDim: 4, units: 4, maxLen: 6 };
  const weights = (seed: number): Float32Array[] => {
    const model = buildNetwork(resolveNetworkConfig({ ...config, seed }));
    const values = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
    model.dispose();
    return values;
  };
  const a = weights(11);
  const b = weights(11);
  const c = weights(12);
  for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i]);
  // Kernels and embeddings (not the constant biases) must differ for another seed.
  for (const i of [0, 1, 2, 4]) assert.notDeepEqual(a[i], c[i]);
});

test('should default to the network of a pipeline that sets nothing and name the bad field when invalid', () => {
  assert.deepEqual(
    { ...resolveNetworkConfig() },
    { vocabSize: 10_000, embeddingDim: 64, units: 64, maxLen: 100, learningRate: 0.003, seed: 42, lstm: 'auto' },
  );
  assert.deepEqual({ ...defaultNetworkConfig }, { ...resolveNetworkConfig() });
  assert.throws(() => resolveNetworkConfig({ ...defaultNetworkConfig, units: 0 }), (err: unknown) => err instanceof ConfigError && err.path === 'model.units');
  assert.throws(
    () => resolveNetworkConfig({ ...defaultNetworkConfig, learningRate: -1 }),
    (err: unknown) => err instanceof ConfigError && err.path === 'model.learningRate',
  );
});

interface KerasResult {
  predictions: number[];
  loss: number;
  params: number[];
  outputShapes: (number | null)[][];
  kerasVersion: string;
}

test(
  'should predict and differentiate exactly like the seed network in Keras, given the same weights, with either LSTM layer',
  { timeout: VENV_TIMEOUT_MS + SCRIPT_TIMEOUT_MS },
  async (t) => {
    const config = resolveNetworkConfig({ ...KERAS_SEED_NETWORK, seed: 5, lstm: 'stock' });
    const stock = buildNetwork(config);
    const fused = buildNetwork(resolveNetworkConfig({ ...KERAS_SEED_NETWORK, seed: 5, lstm: 'fused' }));
    t.after(() => {
      stock.dispose();
      fused.dispose();
    });
    // Weights far from the initialisation (embeddings ±1, kernels ~N(0, 0.5²)) drive every
    // gate into its non-linear range, so a swapped gate or transposed kernel shows at once.
    const r = rng(21);
    const weights = stock.getWeights().map((w, i) =>
      tf.tensor(
        Float32Array.from({ length: w.size }, () => (i === 0 ? r() * 2 - 1 : (r() + r() + r() - 1.5) * 0.8)),
        w.shape,
      ),
    );
    stock.setWeights(weights);
    fused.setWeights(weights);
    tf.dispose(weights);

    const rows = 6;
    const tokens = new Int32Array(rows * config.maxLen);
    for (let row = 0; row < rows; row++) {
      const length = [100, 1, 37, 64, 99, 12][row]!; // left padding like pad_sequences
      for (let j = config.maxLen - length; j < config.maxLen; j++) tokens[row * config.maxLen + j] = Math.floor(r() * config.vocabSize);
    }
    tokens[config.maxLen - 1] = config.vocabSize - 1;
    const labels = Float32Array.from([1, 0, 1, 1, 0, 0]);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'textstream-keras-model-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const inDir = path.join(dir, 'in');
    const outDir = path.join(dir, 'out');
    mkdirSync(inDir);
    const ours = stock.getWeights();
    const flat = new Float32Array(ours.reduce((n, w) => n + w.size, 0));
    let offset = 0;
    for (const w of ours) {
      flat.set(w.dataSync(), offset);
      offset += w.size;
    }
    writeFileSync(
      path.join(inDir, 'spec.json'),
      JSON.stringify({ ...config, rows, weights: stock.weights.map((w) => ({ name: w.originalName, shape: w.shape })) }),
    );
    writeFileSync(path.join(inDir, 'weights.f32'), new Uint8Array(flat.buffer));
    writeFileSync(path.join(inDir, 'tokens.i32'), new Uint8Array(tokens.buffer));
    writeFileSync(path.join(inDir, 'labels.f32'), new Uint8Array(labels.buffer));

    const { stdout } = await run('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { timeout: VENV_TIMEOUT_MS, maxBuffer: 16 << 20 });
    await run(stdout.trim(), [path.join(repoRoot, 'scripts', 'keras_model_reference.py'), inDir, outDir], {
      timeout: SCRIPT_TIMEOUT_MS,
      maxBuffer: 16 << 20,
    });
    const keras = JSON.parse(readFileSync(path.join(outDir, 'result.json'), 'utf8')) as KerasResult;

    assert.deepEqual(keras.params, [640_000, 33_024, 65]);
    assert.deepEqual(keras.outputShapes, stock.layers.map((l) => l.outputShape));
    assert.deepEqual(keras.outputShapes, fused.layers.map((l) => l.outputShape));

    const x = tf.tensor2d(tokens, [rows, config.maxLen], 'int32');
    const y = tf.tensor2d(labels, [rows, 1]);
    t.after(() => tf.dispose([x, y]));
    const kerasGrads = new Float32Array(readFileSync(path.join(outDir, 'grads.f32')).buffer.slice(0));
    for (const [lstm, model] of [['stock', stock], ['fused', fused]] as const) {
      const predictions = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
      const spread = Math.max(...predictions) - Math.min(...predictions);
      assert.ok(spread > 0.2, `test weights should spread the predictions, got ${spread}`);
      const predictionDiff = maxAbsDiff(predictions, keras.predictions);
      assert.ok(predictionDiff < 1e-5, `${lstm} LSTM: predictions differ from Keras ${keras.kerasVersion} by ${predictionDiff}`);

      // The backward pass, including our wasm kernel replacements, against TensorFlow's.
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value: loss, grads } = tf.variableGrads(
        () => tf.mean<tf.Scalar>(tf.metrics.binaryCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)),
        variables,
      );
      t.after(() => tf.dispose([loss, ...Object.values(grads)]));
      assert.ok(Math.abs(loss.dataSync()[0]! - keras.loss) < 1e-5, `${lstm} LSTM: loss ${loss.dataSync()[0]} vs Keras ${keras.loss}`);
      let offset = 0;
      for (const v of variables) {
        const g = grads[v.name]!.dataSync();
        const expected = kerasGrads.subarray(offset, offset + g.length);
        offset += g.length;
        const scale = expected.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
        const diff = maxAbsDiff(g, expected);
        // float32 sums over 100 time steps in a different order: within 2e-5 of the largest (measured ≈ 4e-6).
        assert.ok(diff <= 2e-5 * scale + 1e-7, `${lstm} LSTM, ${v.name}: gradient differs by ${diff} (largest ${scale})`);
      }
      assert.equal(offset, kerasGrads.length);
    }
  },
);
