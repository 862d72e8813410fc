import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pythonLower } from '../../src/text/lowercase.js';

// Expected values from CPython 3.11: `python3 -c "print(repr(s.lower()))"`; the full
// table is re-checked against the venv's Python in keras-parity.test.ts.
test("should lower-case like Python's str.lower() where JS agrees", () => {
  assert.equal(pythonLower('Hello WORLD 123'), 'hello world 123');
  assert.equal(pythonLower('İstanbul'), 'i\u0307stanbul'); // 'İ'.lower() == 'i̇' (two code points)
  assert.equal(pythonLower('ΟΔΟΣ. Σ ΣΑ'), 'οδος. σ σα'); // final sigma only at a word end
  assert.equal(pythonLower('ǅ ß ẞ Ω K Å'), 'ǆ ß ß ω k å');
});

test('should leave letters Python 3.11 does not know as upper case, as Python does', () => {
  // U+A7CB (Unicode 16): 'Ɤ'.lower() == 'Ɤ' in Python 3.11, 'ɤ' in Node 20.
  assert.equal(pythonLower('\uA7CBx\u1C89'), '\uA7CBx\u1C89');
  assert.equal(pythonLower('A\u{10D50}B'), 'a\u{10D50}b');
  // The unknown letter ends the sigma's word, as a string end does: 'ΑΣ𐵐'.lower() == 'ας𐵐'.
  assert.equal(pythonLower('ΑΣ\u{10D50}'), 'ας\u{10D50}');
});
