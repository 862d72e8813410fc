/**
 * The fused LSTM against tfjs-layers' own LSTM (the stock layer, itself checked against
 * Keras in network.test.ts): same outputs and the same gradients for every input and
 * weight, on shapes that exercise both the 16-lane vector paths and their scalar tails,
 * with pad_sequences-style left padding; and the properties the pipeline relies on
 * (thread count doesn't change results, NaN propagates, checkpoints move between the two
 * layers, no tensors leak, a clear error when the addon is missing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { FusedLstmLayer, fusedLstm, setFusedLstmThreads } from '../../src/model/fused-lstm.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { buildNetwork, resolveNetworkConfig } from '../../src/model/network.js';
import { repoRoot } from '../helpers/paths.js';
import { KERAS_SEED_NETWORK, SMALL_NETWORK, SyntheticStream, expectNoLeakedTensors, maxAbsDiff, rng, useWasm } from './helpers.js';

const run = promisify(execFile);

test.before(async () => {
  await useWasm();
});

interface Shape {
  batch: number;
  steps: number;
  inputDim: number;
  units: number;
}

function randomTensor(seed: number, shape: number[], scale: number): tf.Tensor {
  const r = rng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale), shape);
}

/** x [batch, steps, inputDim] where row b starts with b·steps/batch copies of one padding vector. */
function paddedInput(seed: number, { batch, steps, inputDim }: Shape): tf.Tensor3D {
  const r = rng(seed);
  const pad = Float32Array.from({ length: inputDim }, () => r() * 0.1 - 0.05);
  const x = new Float32Array(batch * steps * inputDim);
  for (let b = 0; b < batch; b++) {
    const padded = Math.floor((b * steps) / batch);
    for (let t = 0; t < steps; t++) {
      for (let d = 0; d < inputDim; d++) x[(b * steps + t) * inputDim + d] = t < padded ? pad[d]! : r() * 2 - 1;
    }
  }
  return tf.tensor3d(x, [batch, steps, inputDim]);
}

/** The stock layer and a fused one holding the same (random, gate-saturating) weights. */
function layerPair(shape: Shape, seed: number): { stock: tf.layers.Layer; fused: FusedLstmLayer } {
  const init = { kernelInitializer: tf.initializers.glorotUniform({ seed }), recurrentInitializer: tf.initializers.orthogonal({ seed: seed + 1 }) };
  const stock = tf.layers.lstm({ name: 'lstm', units: shape.units, recurrentActivation: 'sigmoid', unitForgetBias: true, ...init });
  const fused = new FusedLstmLayer({ name: 'lstm', units: shape.units, ...init });
  // Applying to a symbolic input builds the weights the way a model does.
  for (const layer of [stock, fused]) layer.apply(tf.input({ shape: [shape.steps, shape.inputDim] }));
  const weights = [
    randomTensor(seed + 2, [shape.inputDim, 4 * shape.units], 0.6),
    randomTensor(seed + 3, [shape.units, 4 * shape.units], 0.6),
    randomTensor(seed + 4, [4 * shape.units], 0.5),
  ];
  stock.setWeights(weights);
  fused.setWeights(weights);
  tf.dispose(weights);
  return { stock, fused };
}

/** h_last and d(loss)/d(x, kernel, recurrent kernel, bias) for loss = mean(h · projection). */
function forwardAndGrads(layer: tf.layers.Layer, x: tf.Tensor3D, projection: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const xVar = tf.variable(x, true, `x${Math.random()}`);
    const variables = [xVar, ...layer.trainableWeights.map((w) => w.read() as tf.Variable)];
    const h = layer.apply(x, { training: false }) as tf.Tensor;
    const { grads } = tf.variableGrads(() => tf.mean<tf.Scalar>(tf.mul(layer.apply(xVar, { training: true }) as tf.Tensor, projection)), variables);
    const out = [h, ...variables.map((v) => grads[v.name]!)].map((t) => Float32Array.from(t.dataSync()));
    xVar.dispose();
    return out;
  });
}

/** Layers used outside a model can't be disposed by tfjs (it counts model uses); free their weights. */
function disposeWeights(...layers: tf.layers.Layer[]): void {
  for (const layer of layers) for (const w of layer.weights) w.dispose();
}

const NAMES = ['h', 'dx', 'dKernel', 'dRecurrentKernel', 'dBias'];

for (const shape of [
  { batch: 7, steps: 9, inputDim: 3, units: 5 }, // everything in the scalar tails
  { batch: 33, steps: 20, inputDim: 20, units: 20 }, // vector body + tails, 4·units = 80
  { batch: 32, steps: 100, inputDim: 64, units: 64 }, // the seed network
]) {
  test(`should match tf.layers.lstm outputs and all gradients within 1e-4 (${JSON.stringify(shape)})`, () => {
    const { stock, fused } = layerPair(shape, 11);
    const x = paddedInput(12, shape);
    const projection = randomTensor(99, [shape.batch, shape.units], 1);
    try {
      const expected = forwardAndGrads(stock, x, projection);
      const actual = forwardAndGrads(fused, x, projection);
      for (let i = 0; i < NAMES.length; i++) {
        const scale = expected[i]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assert.ok(scale > 0, `${NAMES[i]} should not be all zero`);
        const diff = maxAbsDiff(actual[i]!, expected[i]!);
        // 1e-4 absolute is the bar. Relative to the largest value, these weights (4× the
        // initialisation's scale, gates saturated) and long constant padding make the
        // gradients ill-conditioned: against a float64 LSTM, stock and fused both err by
        // ≈ 0.1–0.5 % of the largest dRecurrentKernel (measured 1.6e-6 and 5e-6 of 1.1e-3).
        // A swapped gate or a transposed kernel is off by O(1).
        assert.ok(diff <= 1e-4 && diff <= 2e-3 * scale, `${NAMES[i]} differs by ${diff} (largest ${scale})`);
      }
    } finally {
      tf.dispose([x, projection]);
      disposeWeights(stock, fused);
    }
  });
}

test('should give the same results whatever the thread count', () => {
  const shape = { batch: 29, steps: 12, inputDim: 16, units: 16 };
  const { fused } = layerPair(shape, 21);
  const x = paddedInput(22, shape);
  const projection = randomTensor(23, [shape.batch, shape.units], 1);
  try {
    const results = [1, 2, 3].map((threads) => {
      setFusedLstmThreads(threads);
      return forwardAndGrads(fused, x, projection);
    });
    for (const other of results.slice(1)) {
      // Samples are independent: outputs and dx are bit-identical; weight gradients are
      // summed per thread, so only their rounding may differ.
      assert.deepEqual(other[0], results[0]![0]);
      assert.deepEqual(other[1], results[0]![1]);
      for (let i = 2; i < NAMES.length; i++) assert.ok(maxAbsDiff(other[i]!, results[0]![i]!) < 1e-6, NAMES[i]);
    }
  } finally {
    setFusedLstmThreads(null);
    tf.dispose([x, projection]);
    disposeWeights(fused);
  }
});

test('should propagate NaN to the sample that has it and to no other', () => {
  const shape = { batch: 4, steps: 5, inputDim: 16, units: 16 };
  const { fused } = layerPair(shape, 31);
  const values = paddedInput(32, shape).dataSync().slice() as Float32Array;
  values[shape.steps * shape.inputDim + 3] = Number.NaN; // sample 1, step 0
  const h = tf.tidy(() => (fused.apply(tf.tensor3d(values, [shape.batch, shape.steps, shape.inputDim])) as tf.Tensor).dataSync());
  disposeWeights(fused);
  const perSample = (b: number) => Array.from(h.subarray(b * shape.units, (b + 1) * shape.units));
  assert.ok(perSample(1).every(Number.isNaN), 'the NaN sample gives NaN');
  for (const b of [0, 2, 3]) assert.ok(perSample(b).every(Number.isFinite), `sample ${b} stays finite`);
});

test('should reject weights whose shapes do not fit the input, naming the argument', () => {
  tf.tidy(() => {
    assert.throws(
      () => fusedLstm(tf.zeros([2, 3, 4]), tf.zeros([5, 8]), tf.zeros([2, 8]), tf.zeros([8]), false),
      /kernel has 40 elements, expected 32/,
    );
  });
});

test('should train without leaking tensors and load checkpoints of the stock layer and back', async () => {
  const network = { ...SMALL_NETWORK, units: 20, embeddingDim: 16 };
  const stream = new SyntheticStream(41, { maxLen: network.maxLen, vocabSize: network.vocabSize, rows: 48 });
  const batches = Array.from({ length: 4 }, () => stream.batch());
  const stock = PrequentialLearner.create({ network: { ...network, lstm: 'stock' } });
  const fused = PrequentialLearner.create({ network: { ...network, lstm: 'fused' } });
  assert.equal(stock.lstm, 'stock');
  assert.equal(fused.lstm, 'fused');
  try {
    await fused.process(batches[0]!); // creates Adam's slots
    await expectNoLeakedTensors(async () => {
      for (const batch of batches.slice(1)) await fused.process(batch);
    });
    for (const batch of batches) await stock.process(batch);
    for (const [from, to] of [
      [stock, 'fused'],
      [fused, 'stock'],
    ] as const) {
      const restored = await PrequentialLearner.fromCheckpoint(await from.checkpointState(null), { network: { ...network, lstm: to } });
      try {
        assert.equal(restored.lstm, to);
        const expected = (await from.score(batches[0]!)).scores;
        const actual = (await restored.score(batches[0]!)).scores;
        assert.ok(maxAbsDiff(actual, expected) < 1e-6, `${from.lstm} → ${to}: scores differ by ${maxAbsDiff(actual, expected)}`);
      } finally {
        restored.dispose();
      }
    }
  } finally {
    stock.dispose();
    fused.dispose();
  }
});

test('should train the seed network to the same weights as the stock layer, step for step', async () => {
  const config = { ...KERAS_SEED_NETWORK, vocabSize: 300, embeddingDim: 64, units: 64, maxLen: 100, seed: 3 };
  const stock = buildNetwork(resolveNetworkConfig({ ...config, lstm: 'stock' }));
  const fused = buildNetwork(resolveNetworkConfig({ ...config, lstm: 'fused' }));
  const r = rng(51);
  const x = tf.tensor2d(Int32Array.from({ length: 32 * 100 }, () => Math.floor(r() * 300)), [32, 100], 'int32');
  const y = tf.tensor2d(Float32Array.from({ length: 32 }, () => (r() < 0.5 ? 1 : 0)), [32, 1]);
  try {
    for (let step = 0; step < 5; step++) {
      await stock.trainOnBatch(x, y);
      await fused.trainOnBatch(x, y);
    }
    const a = stock.getWeights();
    const b = fused.getWeights();
    for (let i = 0; i < a.length; i++) {
      const diff = maxAbsDiff(a[i]!.dataSync(), b[i]!.dataSync());
      assert.ok(diff < 1e-5, `${stock.weights[i]!.originalName} differs by ${diff} after 5 Adam steps`);
    }
  } finally {
    tf.dispose([x, y]);
    stock.dispose();
    fused.dispose();
  }
});

test('should say how to build the addon when it is missing, and fall back under auto', async () => {
  const network = path.join(repoRoot, 'dist', 'src', 'model', 'network.js');
  const script = `
    const { defaultNetworkConfig, resolveNetworkConfig, lstmLayerKind } = await import(${JSON.stringify(network)});
    let error = null;
    try { resolveNetworkConfig({ ...defaultNetworkConfig, lstm: 'fused' }); } catch (e) { error = { path: e.path, message: e.message }; }
    console.log(JSON.stringify({ auto: lstmLayerKind({ lstm: 'auto' }), error }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TEXTSTREAM_FUSED_LSTM_ADDON: '/nonexistent/fused_lstm.node' },
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { auto: string; error: { path: string; message: string } | null };
  assert.equal(result.auto, 'stock');
  assert.equal(result.error?.path, 'model.lstm');
  assert.match(result.error.message, /\/nonexistent\/fused_lstm\.node.*scripts\/build-native\.sh/);
});
