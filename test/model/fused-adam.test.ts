/**
 * The one-pass native Adam update against tfjs' own AdamOptimizer.applyGradients on the
 * wasm backend: the same weights, moments and beta powers, bit for bit, over several
 * steps, on sizes that cover the vector tails and the threaded split, with gradients from
 * tiny to large and zeros (the embedding's untouched rows); and what it leaves for a
 * checkpoint (the optimiser's weights, names included) is what tfjs leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { FusedAdamOptimizer } from '../../src/model/fused-adam.js';
import { fusedLstmUnavailableReason, setFusedLstmThreads } from '../../src/model/fused-lstm.js';
import { expectNoLeakedTensors, rng, useWasm } from './helpers.js';

test.before(async () => {
  await useWasm();
});

const SHAPES = [[70_001], [37, 3], [1]];

function values(seed: number, size: number, scale: number): Float32Array {
  const r = rng(seed);
  // A quarter zeros; the rest spread over many magnitudes.
  return Float32Array.from({ length: size }, () => (r() < 0.25 ? 0 : (r() * 2 - 1) * scale * 10 ** Math.floor(r() * 8 - 4)));
}

function bits(t: tf.Tensor): Uint32Array {
  return new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer);
}

function assertSameBits(a: tf.Tensor, b: tf.Tensor, what: string): void {
  const x = bits(a);
  const y = bits(b);
  assert.equal(x.length, y.length, what);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}[${i}]: ${a.dataSync()[i]} vs ${b.dataSync()[i]}`);
  }
}

for (const threads of [1, 2]) {
  test(`should update weights, moments and beta powers bit-identically to tfjs' Adam (${threads} thread(s))`, { skip: fusedLstmUnavailableReason() ?? false }, async () => {
    setFusedLstmThreads(threads);
    const stock = tf.train.adam(0.001, 0.9, 0.999, 1e-7);
    const fused = new FusedAdamOptimizer(0.001, 0.9, 0.999, 1e-7);
    const vars = (prefix: string) => SHAPES.map((shape, k) => tf.variable(tf.tensor(values(k + 1, shape.reduce((a, b) => a * b), 0.1), shape), true, `${prefix}${threads}_${k}`));
    const stockVars = vars('stock');
    const fusedVars = vars('fused');
    try {
      const step = (n: number) => {
        const grads = SHAPES.map((shape, k) => tf.tensor(values(100 * n + k, shape.reduce((a, b) => a * b), 1), shape));
        stock.applyGradients(stockVars.map((v, k) => ({ name: v.name, tensor: grads[k]! })));
        // Steps alternate the array and the map form tfjs accepts.
        const named = fusedVars.map((v, k) => ({ name: v.name, tensor: grads[k]! }));
        // (tfjs types the map as variables; minimize passes it gradient tensors.)
        fused.applyGradients(n % 2 === 0 ? named : (Object.fromEntries(named.map((g) => [g.name, g.tensor])) as Parameters<typeof fused.applyGradients>[0]));
        tf.dispose(grads);
        stockVars.forEach((v, k) => assertSameBits(fusedVars[k]!, v, `step ${n} weight ${k}`));
      };
      step(0); // creates the moment variables
      // Later steps allocate nothing that outlives them.
      await expectNoLeakedTensors(() => [1, 2, 3].forEach(step));
      const stockWeights = await stock.getWeights();
      const fusedWeights = await fused.getWeights();
      assert.deepEqual(fusedWeights.map((w) => w.name.replace('fused', 'stock')), stockWeights.map((w) => w.name));
      fusedWeights.forEach((w, k) => assertSameBits(w.tensor, stockWeights[k]!.tensor, w.name));
      tf.dispose([...stockWeights, ...fusedWeights].map((w) => w.tensor));
      for (const key of ['accBeta1', 'accBeta2'] as const) {
        const s = (stock as unknown as Record<string, tf.Variable>)[key]!;
        const f = (fused as unknown as Record<string, tf.Variable>)[key]!;
        assertSameBits(f, s, key);
      }
      assert.equal(fused.iterations, stock.iterations);
    } finally {
      setFusedLstmThreads(null);
      tf.dispose([...stockVars, ...fusedVars]);
      stock.dispose();
      fused.dispose();
    }
  });
}
