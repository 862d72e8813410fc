import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchBuilder, tokenMatrix } from '../../src/batch/builder.js';
import { retokenize } from '../../src/batch/retokenize.js';
import { Tokenizer } from '../../src/text/tokenizer.js';

const maxLen = 6;
const texts = ['free money now', 'meeting notes attached', 'money for the meeting'];

function tokenizerFittedOn(corpus: string[]): Tokenizer {
  return new Tokenizer({ numWords: 100, maxLen }).fitOnTexts(corpus).freeze();
}

function batchTokenizedWith(tokenizer: Tokenizer) {
  const builder = new BatchBuilder({ maxLen, maxRows: 10, maxAgeMs: 1000 });
  texts.forEach((text, i) =>
    builder.push({ id: `m${i}`, text, label: null, tokens: tokenizer.encode(text), position: { source: 't', partition: 0, offset: BigInt(i), timestampMs: null } }),
  );
  return builder.flush()!;
}

test('should re-encode the rows another vocabulary tokenized, in place, and count them', () => {
  const before = tokenizerFittedOn(['free money now']);
  const after = tokenizerFittedOn(['meeting notes attached money']);
  const batch = batchTokenizedWith(before);
  const encode = (text: string, out: Int32Array): Int32Array => after.encode(text, out);
  assert.equal(retokenize(batch, encode), 3);
  assert.deepEqual(
    Array.from(tokenMatrix(batch)),
    texts.flatMap((text) => Array.from(after.encode(text))),
  );
  assert.equal(retokenize(batch, encode), 0, 'rows already in the vocabulary are left alone');
});

test('should leave a batch the same vocabulary tokenized unchanged', () => {
  const tokenizer = tokenizerFittedOn(texts);
  const batch = batchTokenizedWith(tokenizer);
  const tokens = Array.from(tokenMatrix(batch));
  assert.equal(retokenize(batch, (text, out) => tokenizer.encode(text, out)), 0);
  assert.deepEqual(Array.from(tokenMatrix(batch)), tokens);
});
