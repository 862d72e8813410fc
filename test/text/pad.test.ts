import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenizerError } from '../../src/errors.js';
import { padSequence, padSequences } from '../../src/text/pad.js';

const rows = (xs: Int32Array[]): number[][] => xs.map((x) => Array.from(x));

// Expected values are the examples in pad_sequences' docstring (tf_keras 2.21):
// >>> sequence = [[1], [2, 3], [4, 5, 6]]
test('should pad to the longest sequence at the front by default', () => {
  // >>> tf.keras.utils.pad_sequences(sequence)  → [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
  assert.deepEqual(rows(padSequences([[1], [2, 3], [4, 5, 6]])), [[0, 0, 1], [0, 2, 3], [4, 5, 6]]);
});

test('should pad with the given value', () => {
  // >>> tf.keras.utils.pad_sequences(sequence, value=-1)
  assert.deepEqual(rows(padSequences([[1], [2, 3], [4, 5, 6]], null, { value: -1 })), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]);
});

test("should pad at the end with padding 'post'", () => {
  // >>> tf.keras.utils.pad_sequences(sequence, padding='post')
  assert.deepEqual(rows(padSequences([[1], [2, 3], [4, 5, 6]], null, { padding: 'post' })), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]);
});

test('should truncate at the front by default and at the end with truncating post', () => {
  // >>> tf.keras.utils.pad_sequences(sequence, maxlen=2)  → [[0, 1], [2, 3], [5, 6]]
  assert.deepEqual(rows(padSequences([[1], [2, 3], [4, 5, 6]], 2)), [[0, 1], [2, 3], [5, 6]]);
  assert.deepEqual(rows(padSequences([[1], [2, 3], [4, 5, 6]], 2, { truncating: 'post' })), [[0, 1], [2, 3], [4, 5]]);
});

test('should give empty sequences a row of padding, and no rows for no sequences', () => {
  assert.deepEqual(rows(padSequences([[], [7]], 3)), [[0, 0, 0], [0, 0, 7]]);
  assert.deepEqual(rows(padSequences([[], []])), [[], []]);
  assert.deepEqual(padSequences([]), []);
});

test('should write one sequence into a caller buffer, overwriting it completely', () => {
  const out = new Int32Array(4).fill(9);
  assert.equal(padSequence([1, 2], 4, { padding: 'post' }, out), out);
  assert.deepEqual(Array.from(out), [1, 2, 0, 0]);
  assert.throws(() => padSequence([1], 4, {}, new Int32Array(3)), TokenizerError);
});

test('should reject invalid arguments the way Keras does, with a TokenizerError', () => {
  assert.throws(() => padSequences([[1]], 2, { padding: 'left' as 'pre' }), /padding must be 'pre' or 'post'/);
  assert.throws(() => padSequences([[1]], 2, { truncating: 'middle' as 'pre' }), /truncating must be 'pre' or 'post'/);
  assert.throws(() => padSequences([[1]], -1), /maxLen/);
  assert.throws(() => padSequences([[1]], 1.5), /maxLen/);
  assert.throws(() => padSequences([[1]], 2, { value: 0.5 }), /value must be an int32/);
});
