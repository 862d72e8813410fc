import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenizerError } from '../../src/errors.js';
import { KERAS_DEFAULT_FILTERS, WordSplitter, textToWordSequence } from '../../src/text/word-sequence.js';

test("should split like Keras' text_to_word_sequence docstring example", () => {
  // >>> tf.keras.preprocessing.text.text_to_word_sequence('This is a sample sentence.')
  // ['this', 'is', 'a', 'sample', 'sentence']
  assert.deepEqual(textToWordSequence('This is a sample sentence.'), ['this', 'is', 'a', 'sample', 'sentence']);
});

test("should keep apostrophes, '\\r' and Unicode spaces inside words, like Keras", () => {
  assert.equal(KERAS_DEFAULT_FILTERS, '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n');
  assert.deepEqual(textToWordSequence("Don't\r\nstop\u00a0now\ttab"), ["don't\r", 'stop\u00a0now', 'tab']);
});

test('should honour custom filters, separators and lower=false', () => {
  assert.deepEqual(textToWordSequence('A-B c', { filters: '', lower: false }), ['A-B', 'c']);
  assert.deepEqual(textToWordSequence('a,b\nc', { split: '\n', filters: ',' }), ['a', 'b', 'c']);
  // Multi-character separator: filters become ': ' first, then Python's str.split(': ').
  assert.deepEqual(textToWordSequence('a:b c::d', { split: ': ' }), ['a', 'b c', 'd']);
  // Astral filter characters take the literal path and still match whole code points.
  assert.deepEqual(textToWordSequence('x😀y z', { filters: '😀' }), ['x', 'y', 'z']);
});

test('should visit words from either end and stop when asked', () => {
  const splitter = new WordSplitter({ filters: KERAS_DEFAULT_FILTERS, lower: true, split: ' ' });
  const seen: string[] = [];
  splitter.scan('One, two; THREE four', true, (w) => seen.push(w) < 3);
  assert.deepEqual(seen, ['four', 'three', 'two']);
  const literal = new WordSplitter({ filters: ',', lower: false, split: '::' });
  const seenLiteral: string[] = [];
  literal.scan('a,b::c', true, (w) => seenLiteral.push(w) < 2);
  assert.deepEqual(seenLiteral, ['c', 'b']);
});

test('should reject an empty separator, as Python does', () => {
  assert.throws(() => textToWordSequence('a b', { split: '' }), TokenizerError);
});
