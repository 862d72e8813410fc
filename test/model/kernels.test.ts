/**
 * Every wasm kernel we register or replace must agree with tfjs' stock cpu kernels (the
 * reference implementation) on random input. The cpu backend is switched to directly
 * (not via selectBackend) so its kernels stay stock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { expectNoLeakedTensors, maxAbsDiff, rng, useWasm } from './helpers.js';

async function on(backend: 'cpu' | 'wasm', fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const out = fn();
    return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** Runs `fn` on cpu and wasm and checks the outputs agree (same count, shapes, values). */
async function agree(fn: () => tf.Tensor | tf.Tensor[], tolerance = 0): Promise<void> {
  const expected = await on('cpu', fn);
  const actual = await expectNoLeakedTensors(() => on('wasm', fn));
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const diff = maxAbsDiff(actual[i]!, expected[i]!);
    assert.ok(diff <= tolerance, `output ${i} differs by ${diff} (tolerance ${tolerance})`);
  }
}

function randomValues(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

test.before(async () => {
  await useWasm();
});

test('should compute UnsortedSegmentSum on wasm exactly as the cpu backend does', async () => {
  const r = rng(1);
  const rows = 300;
  // Ids include -1 and numSegments, which TensorFlow drops, and many repeats.
  const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * 52) - 1);
  const x = randomValues(2, rows * 8);
  await agree(() => tf.unsortedSegmentSum(tf.tensor2d(x, [rows, 8]), tf.tensor1d(ids, 'int32'), 50), 1e-6);
  await agree(() => tf.unsortedSegmentSum(tf.tensor1d(x.subarray(0, rows)), tf.tensor1d(ids, 'int32'), 50), 1e-6);
});

test('should give the Embedding (Gather) gradient on wasm that the cpu backend gives', async () => {
  const table = randomValues(3, 100 * 4);
  const r = rng(4);
  const idx = Int32Array.from({ length: 6 * 5 }, () => Math.floor(r() * 100));
  const weights = randomValues(5, 6 * 5 * 4);
  await agree(() => {
    const params = tf.tensor2d(table, [100, 4]);
    const grad = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.gather(p, tf.tensor2d(idx, [6, 5], 'int32')), tf.tensor3d(weights, [6, 5, 4]))));
    return grad(params);
  }, 1e-6);
});

test('should slice contiguous and strided boxes on wasm exactly as the cpu backend does', async () => {
  const x = randomValues(6, 5 * 6 * 7 * 3);
  const cases: [number[], number[]][] = [
    [[0, 0, 0, 0], [5, 6, 7, 3]],
    [[2, 0, 0, 0], [1, 6, 7, 3]],
    [[1, 2, 0, 0], [3, 2, 7, 3]],
    [[0, 1, 2, 1], [5, 4, 3, 2]],
    [[4, 5, 6, 2], [1, 1, 1, 1]],
    [[0, 0, 0, 0], [0, 6, 7, 3]],
  ];
  for (const [begin, size] of cases) {
    await agree(() => tf.slice(tf.tensor4d(x, [5, 6, 7, 3]), begin, size));
  }
  await agree(() => tf.slice(tf.tensor1d(x), [17], [40]));
});

test('should unstack and split on wasm exactly as the cpu backend does', async () => {
  const x = randomValues(7, 10 * 4 * 6);
  for (const axis of [0, 1, 2, -1]) await agree(() => tf.unstack(tf.tensor3d(x, [10, 4, 6]), axis));
  await agree(() => tf.split(tf.tensor2d(x.subarray(0, 4 * 24), [4, 24]), 4, 1));
  await agree(() => tf.split(tf.tensor2d(x.subarray(0, 4 * 24), [4, 24]), [5, 9, 10], -1));
  await agree(() => tf.split(tf.tensor3d(x, [10, 4, 6]), [3, 7], 0));
});

test('should multiply transposed matrices on wasm as the cpu backend does', async () => {
  const a = randomValues(8, 33 * 65);
  const b = randomValues(9, 33 * 65);
  const A = (): tf.Tensor2D => tf.tensor2d(a, [33, 65]);
  const B = (): tf.Tensor2D => tf.tensor2d(b, [33, 65]);
  // Sums of 33–65 products: float32 reordering error stays far below 1e-4.
  await agree(() => tf.matMul(A(), B(), true, false), 1e-4);
  await agree(() => tf.matMul(A(), B(), false, true), 1e-4);
  await agree(() => tf.matMul(A(), tf.transpose(B()), true, true), 1e-4);
  await agree(() => tf.matMul(tf.reshape(A(), [3, 11, 65]), tf.reshape(B(), [3, 11, 65]), false, true), 1e-4);
  await agree(() => tf.matMul(A(), tf.transpose(B())), 1e-4);
});

test('should gather embedding rows on wasm exactly as the cpu backend does, and reject bad ids', async () => {
  const r = rng(5);
  const table = randomValues(6, 40 * 7);
  const ids = Int32Array.from({ length: 6 * 9 }, () => Math.floor(r() * 40));
  ids[0] = 0;
  ids[1] = 39;
  await agree(() => tf.gather(tf.tensor2d(table, [40, 7]), tf.tensor2d(ids, [6, 9], 'int32')));
  await agree(() => tf.gather(tf.tensor1d(Int32Array.from(ids), 'int32'), tf.tensor1d([3, 0, 3], 'int32')));
  // Not axis 0: the stock kernel's path.
  await agree(() => tf.gather(tf.tensor2d(table, [40, 7]), tf.tensor1d([6, 0, 2], 'int32'), 1));
  await tf.setBackend('wasm');
  assert.throws(
    () => tf.tidy(() => tf.gather(tf.tensor2d(table, [40, 7]), tf.tensor1d([1, 40], 'int32')).dataSync()),
    /index value 40 is not in \[0, 39\]/,
  );
});

test('should share data for Identity and identity-permutation Transpose on wasm, and keep it alive by reference', async () => {
  const values = randomValues(7, 6 * 5);
  await agree(() => tf.transpose(tf.tensor2d(values, [6, 5]), [0, 1]));
  await agree(() => tf.transpose(tf.tensor2d(values, [6, 5]), [1, 0])); // the stock path
  await agree(() => tf.clone(tf.tensor2d(values, [6, 5])));
  await tf.setBackend('wasm');
  await expectNoLeakedTensors(() => {
    const x = tf.tensor2d(values, [6, 5]);
    const shared = [tf.clone(x), tf.transpose(x, [0, 1])];
    x.dispose();
    // The input is gone; its data lives on for the outputs that share it.
    for (const t of shared) assert.deepEqual(t.dataSync(), values);
    tf.dispose(shared);
  });
});
