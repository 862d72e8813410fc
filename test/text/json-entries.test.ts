import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonObjectEntries } from '../../src/text/json-entries.js';

test('should list members in document order, integer-like keys included', () => {
  const text = '{"the": 5, "2002": 4, "10": 3, "a\\"b": 2, "nested": {"x": [1, {"y": 2}]}, "0": 1}';
  assert.deepEqual(Object.keys(JSON.parse(text) as object), ['0', '10', '2002', 'the', 'a"b', 'nested']);
  assert.deepEqual(jsonObjectEntries(text), [
    ['the', 5],
    ['2002', 4],
    ['10', 3],
    ['a"b', 2],
    ['nested', { x: [1, { y: 2 }] }],
    ['0', 1],
  ]);
});

test('should keep the first position and the last value of a duplicate key, like Python', () => {
  assert.deepEqual(jsonObjectEntries('{"a": 1, "b": 2, "a": 3}'), [['a', 3], ['b', 2]]);
});

test('should return null for anything but a JSON object', () => {
  for (const text of ['', '[1]', '"x"', '3', 'null', '{"a": 1', '{a: 1}']) assert.equal(jsonObjectEntries(text), null, text);
  assert.deepEqual(jsonObjectEntries(' {} '), []);
});
