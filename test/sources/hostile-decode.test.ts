/**
 * The hostile corpus (test/helpers/hostile-corpus.ts) through the pure stages a worker runs
 * before batching: kafkaMessageToRecord → decodeRecord → cleanText → Tokenizer.encode.
 * A failure names the stage that decided the outcome, so it points at the code to fix;
 * test/integration/hostile-input.test.ts runs the same corpus through a real worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeadLetterReason, Label } from '../../src/message.js';
import { decodeRecord } from '../../src/sources/decode.js';
import { kafkaMessageToRecord, type KafkaMessageOptions } from '../../src/sources/kafka-message.js';
import { cleanText } from '../../src/text/clean.js';
import { padSequence } from '../../src/text/pad.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { HOSTILE_CASES, HOSTILE_MAX_MESSAGE_BYTES, expectedRow, type HostileCase } from '../helpers/hostile-corpus.js';

const TOPIC = 'hostile';
const PARTITION = 1;
const options: KafkaMessageOptions = {
  format: 'json',
  fields: { id: 'id', text: 'text', label: 'label' },
  maxMessageBytes: HOSTILE_MAX_MESSAGE_BYTES,
};

type Stage = 'kafka-message' | 'decode' | 'clean';
type Outcome =
  | { kind: 'row'; id: string; label: Label | null; text: string }
  | { kind: 'dead-letter'; stage: Stage; reason: DeadLetterReason; detail: string; original: Uint8Array; key: Uint8Array | null | undefined };

/** One case as the worker's stages treat it, at offset `offset`. */
function runStages(c: HostileCase, offset: number): Outcome {
  const record = kafkaMessageToRecord({ key: c.key, value: c.value, offset: String(offset), timestamp: '1700000000000' }, TOPIC, PARTITION, options);
  const decoded = decodeRecord(record, { maxMessageBytes: HOSTILE_MAX_MESSAGE_BYTES });
  if (!decoded.ok) {
    const { reason, detail, original, key } = decoded.deadLetter;
    return { kind: 'dead-letter', stage: record.rejected ? 'kafka-message' : 'decode', reason, detail, original, key };
  }
  const { id, label, text } = decoded.message;
  const cleaned = cleanText(text);
  // What runtime/pipeline.ts (cleanAll) does with a text that cleans to nothing.
  if (cleaned === '') {
    return { kind: 'dead-letter', stage: 'clean', reason: 'empty-text', detail: 'text is empty after cleaning', original: decoded.message.original!(), key: decoded.message.key };
  }
  return { kind: 'row', id, label, text: cleaned };
}

const outcomes = HOSTILE_CASES.map((c, offset) => ({ c, offset, outcome: runStages(c, offset) }));

for (const { c, offset, outcome } of outcomes) {
  test(`should turn "${c.name}" into ${'row' in c.expected ? 'a row' : `a ${c.expected.deadLetter} dead letter`}`, () => {
    const row = expectedRow(c);
    if (row === null) {
      const expected = c.expected as { deadLetter: DeadLetterReason; detail?: RegExp };
      assert.equal(outcome.kind, 'dead-letter', `became a row: ${JSON.stringify(outcome).slice(0, 300)}`);
      if (outcome.kind !== 'dead-letter') return;
      assert.equal(outcome.reason, expected.deadLetter, `the ${outcome.stage} stage said ${outcome.reason}: ${outcome.detail}`);
      if (expected.detail) assert.match(outcome.detail, expected.detail, `detail from the ${outcome.stage} stage`);
      assert.ok(Buffer.from(outcome.original).equals(c.value ?? Buffer.alloc(0)), 'the dead letter carries the original bytes');
      assert.equal(outcome.key, c.key, 'the dead letter keeps the key');
      return;
    }
    assert.equal(outcome.kind, 'row', outcome.kind === 'dead-letter' ? `the ${outcome.stage} stage said ${outcome.reason}: ${outcome.detail}` : '');
    if (outcome.kind !== 'row') return;
    assert.equal(outcome.id, row.idFromPosition ? `${TOPIC}/${PARTITION}/${offset}` : row.id);
    assert.equal(outcome.label, row.label ?? null);
    if (row.text !== undefined) assert.equal(outcome.text, row.text);
    for (const part of row.textContains ?? []) assert.ok(outcome.text.includes(part), `cleaned text lacks ${JSON.stringify(part)}`);
    // No output may hold what UTF-8 cannot carry, nor invisible or control characters.
    assert.doesNotMatch(outcome.text, /[\p{Cs}\p{Cf}\x00-\x1F\x7F-\x9F]/u);
    assert.doesNotMatch(outcome.id, /\p{Cs}/u);
  });
}

test('should give every row case exactly maxLen tokens, the last ones of long texts', () => {
  const rows = outcomes.flatMap(({ outcome }) => (outcome.kind === 'row' ? [outcome] : []));
  const tokenizer = new Tokenizer({ numWords: 10_000, maxLen: 100 }).fitOnTexts(rows.map((r) => r.text)).freeze();
  for (const r of rows) {
    const tokens = tokenizer.encode(r.text);
    assert.equal(tokens.length, 100);
    // encode reads long texts from the end and stops early; it must equal the full route.
    assert.deepEqual([...tokens], [...padSequence(tokenizer.textToSequence(r.text), 100)], r.id);
  }
  const long = rows.find((r) => r.id === 'h-100k-words')!;
  const lastWords = long.text.split(' ').slice(-100).join(' ');
  assert.deepEqual([...tokenizer.encode(long.text)], [...tokenizer.encode(lastWords)], 'the last 100 words, not the first');
  assert.equal(tokenizer.encode(long.text)[99], tokenizer.wordIndex.get('lastword'));
});

test('should decide the whole corpus quickly (no backtracking, no deep recursion)', () => {
  const started = performance.now();
  HOSTILE_CASES.forEach((c, offset) => runStages(c, offset));
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 5, `the corpus took ${seconds.toFixed(1)} s through the pure stages`);
});
