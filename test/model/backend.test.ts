import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../../src/errors.js';
import { currentBackend, selectBackend, type RequestedBackend } from '../../src/model/backend.js';

const tfjsNodeInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

// Order matters: the tfjs engine is process-wide, and the cpu test must come last so the
// earlier ones prove that nothing else ever lands on cpu.

test('should pick wasm for auto when @tensorflow/tfjs-node is not installed, and say why', { skip: tfjsNodeInstalled }, async () => {
  const info = await selectBackend('auto');
  assert.equal(info.name, 'wasm');
  assert.equal(info.requested, 'auto');
  assert.match(info.reason, /tfjs-node is not installed/);
  assert.equal(typeof info.simd, 'boolean');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(currentBackend(), info);
});

test('should load the SIMD wasm build from the installed package', async () => {
  const info = await selectBackend('wasm');
  assert.equal(info.name, 'wasm');
  // Node 20 validates wasm SIMD; the non-SIMD build would be a silent 1.3–1.5× loss.
  assert.equal(info.simd, true);
});

test('should register the kernels the seed model needs on wasm', async () => {
  await selectBackend('wasm');
  assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'), 'the Embedding gradient needs UnsortedSegmentSum');
});

test('should throw BackendError, not fall back, when tensorflow is requested without tfjs-node', { skip: tfjsNodeInstalled }, async () => {
  await assert.rejects(selectBackend('tensorflow'), (err: unknown) => {
    assert.ok(err instanceof BackendError);
    assert.match(err.message, /@tensorflow\/tfjs-node.*not installed/);
    return true;
  });
  assert.equal(tf.getBackend(), 'wasm', 'a failed request must leave the previous backend in place');
});

test('should throw BackendError for an unknown backend name', async () => {
  await assert.rejects(selectBackend('webgpu' as RequestedBackend), BackendError);
});

test('should use the cpu backend only when it is asked for', async () => {
  assert.notEqual(tf.getBackend(), 'cpu');
  const info = await selectBackend('cpu');
  assert.equal(info.name, 'cpu');
  assert.equal(info.reason, 'requested');
  assert.equal(tf.getBackend(), 'cpu');
  await selectBackend('wasm');
});
