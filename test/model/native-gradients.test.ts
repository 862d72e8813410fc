/**
 * The addon's embedding-gradient scatter and gradient sum of squares against the
 * JavaScript loops they stand in for (kept here as the reference, the same order of
 * operations): bit-identical results, out-of-range ids dropped, NaN and Infinity carried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fusedLstmUnavailableReason, nativeGradientHelpers } from '../../src/model/fused-lstm.js';
import { rng } from './helpers.js';

const skip = fusedLstmUnavailableReason() ?? false;

function referenceSegmentSum(x: Float32Array, ids: Int32Array, inner: number, out: Float32Array): void {
  const segments = out.length / inner;
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    if (id < 0 || id >= segments) continue;
    for (let k = 0; k < inner; k++) out[id * inner + k]! += x[r * inner + k]!;
  }
}

function referenceSumOfSquares(a: Float32Array): number {
  const s = new Float64Array(8);
  let i = 0;
  for (; i + 8 <= a.length; i += 8) for (let l = 0; l < 8; l++) s[l]! += a[i + l]! * a[i + l]!;
  for (; i < a.length; i++) s[0]! += a[i]! * a[i]!;
  return s[0]! + s[1]! + s[2]! + s[3]! + s[4]! + s[5]! + s[6]! + s[7]!;
}

test('should scatter-add rows exactly as the JavaScript loop does, dropping out-of-range ids', { skip }, () => {
  const r = rng(5);
  const inner = 64;
  const segments = 300;
  const rows = 3200;
  const x = Float32Array.from({ length: rows * inner }, () => (r() * 2 - 1) * 10 ** Math.floor(r() * 6 - 3));
  // Repeated ids (summation order matters), and a few outside [0, segments).
  const ids = Int32Array.from({ length: rows }, () => Math.floor(r() * (segments + 20)) - 10);
  const expected = new Float32Array(segments * inner);
  const actual = new Float32Array(segments * inner);
  referenceSegmentSum(x, ids, inner, expected);
  nativeGradientHelpers()!.segmentSum(x, ids, inner, actual);
  assert.deepEqual(new Uint32Array(actual.buffer), new Uint32Array(expected.buffer));
  assert.throws(() => nativeGradientHelpers()!.segmentSum(x, ids, 63, actual), /disagree/);
});

test('should sum squares exactly as the JavaScript loop does, carrying NaN and Infinity', { skip }, () => {
  const r = rng(9);
  for (const n of [0, 7, 8, 640_003]) {
    const a = Float32Array.from({ length: n }, () => (r() * 2 - 1) * 10 ** Math.floor(r() * 10 - 5));
    assert.equal(nativeGradientHelpers()!.sumOfSquares(a), referenceSumOfSquares(a), `n ${n}`);
  }
  assert.ok(Number.isNaN(nativeGradientHelpers()!.sumOfSquares(Float32Array.of(1, NaN, 2))));
  assert.equal(nativeGradientHelpers()!.sumOfSquares(Float32Array.of(1, -Infinity)), Infinity);
});
