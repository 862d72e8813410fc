import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Placeholders, normalizeText } from '../../src/text/normalize.js';
import { textToWordSequence } from '../../src/text/word-sequence.js';

test('should use placeholder words that Keras keeps as single tokens', () => {
  for (const word of Object.values(Placeholders)) assert.deepEqual(textToWordSequence(word), [word]);
});

test('should be idempotent', () => {
  for (const text of [
    'Visit HTTP://WWW.Example.com/x?y=1 or mail Bob@Example.COM, call 555-1234 at 10:30',
    'ﬁ Ｆｕｌｌ ① İstanbul V\u200Bi\u200Ba \u0000 x',
    '  $1,000.00  ',
  ]) {
    const once = normalizeText(text);
    assert.equal(normalizeText(once), once, text);
  }
});
