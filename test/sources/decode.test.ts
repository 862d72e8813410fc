import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord } from '../../src/sources/decode.js';
import type { RawRecord } from '../../src/message.js';

const position = { source: 'in.parquet', partition: 0, offset: 7n, timestampMs: null };
const opts = { maxMessageBytes: 1024 };
const raw = (over: Partial<RawRecord>): RawRecord => ({ position, id: 'a', text: 'hello', label: null, ...over });

test('should decode valid UTF-8 bytes and strings with 0/1/empty labels', () => {
  const bytes = new TextEncoder().encode('héllo');
  const fromBytes = decodeRecord(raw({ text: bytes, label: 1 }), opts);
  assert.ok(fromBytes.ok);
  const { original, ...message } = fromBytes.message;
  assert.deepEqual(message, { id: 'a', text: 'héllo', label: 1, position });
  assert.equal(original?.(), bytes);
  for (const [label, expected] of [[0, 0], [1n, 1], ['0', 0], [null, null], [undefined, null]] as const) {
    const decoded = decodeRecord(raw({ label }), opts);
    assert.ok(decoded.ok);
    assert.equal(decoded.message.label, expected);
  }
});

test('should map text labels through decode.labels, keeping 0, 1 and null', () => {
  const labels = { spam: 1, ham: 0 } as const;
  for (const [label, expected] of [['spam', 1], ['ham', 0], [1, 1], ['0', 0], [null, null]] as const) {
    const decoded = decodeRecord(raw({ label }), { ...opts, labels });
    assert.ok(decoded.ok, `label ${String(label)}`);
    assert.equal(decoded.message.label, expected);
  }
  // Labels are matched exactly: a different case, or a name on Object.prototype, is not one of them.
  for (const label of ['Spam', 'toString', 'constructor']) {
    const decoded = decodeRecord(raw({ label }), { ...opts, labels });
    assert.equal(decoded.ok, false);
    if (decoded.ok) return;
    assert.equal(decoded.deadLetter.reason, 'invalid-label');
    assert.match(decoded.deadLetter.detail, /one of decode\.labels \("spam", "ham"\)/);
  }
});

test('should derive an id from the position when the source has none', () => {
  const decoded = decodeRecord(raw({ id: null }), opts);
  assert.ok(decoded.ok);
  assert.equal(decoded.message.id, 'in.parquet:7');
});

const badCases: Array<[string, Partial<RawRecord>, string, RegExp]> = [
  ['invalid UTF-8', { text: Uint8Array.from([0x68, 0xc3, 0x28]) }, 'invalid-utf8', /not valid UTF-8/],
  ['an oversized text', { text: 'x'.repeat(1025) }, 'oversized', /1025 bytes, limit is 1024/],
  ['oversized bytes', { text: new Uint8Array(5_000) }, 'oversized', /5000 bytes/],
  ['an empty text', { text: '  \n' }, 'empty-text', /empty/],
  ['a missing text', { text: null }, 'missing-text', /no text/],
  ['a label that is not 0/1', { label: 'spam' }, 'invalid-label', /^label must be 0, 1 or null \(map text labels to 0\/1 with decode\.labels, e\.g\. \{"spam": 1\}\), got "spam"$/],
  ['a label of 2', { label: 2 }, 'invalid-label', /got 2$/],
  ['an INT64 label of 2', { label: 2n }, 'invalid-label', /got 2$/],
  ['an empty id', { id: '' }, 'invalid-id', /id is empty/],
  // Unpaired surrogates have no UTF-8 form: written out, they would silently become U+FFFD.
  ['an id with an unpaired surrogate', { id: 'a\ud800' }, 'invalid-id', /id "a\\ud800" has an unpaired surrogate/],
  ['a string text with an unpaired surrogate', { text: 'a\udc00b' }, 'invalid-utf8', /unpaired surrogate/],
  ['a label that is an object', { label: { v: 1 } }, 'invalid-label', /got an object$/],
];
for (const [what, over, reason, detail] of badCases) {
  test(`should turn ${what} into a dead letter with reason ${reason} and the original bytes`, () => {
    const record = raw(over);
    const decoded = decodeRecord(record, opts);
    assert.equal(decoded.ok, false);
    if (decoded.ok) return;
    assert.equal(decoded.deadLetter.reason, reason);
    assert.match(decoded.deadLetter.detail, detail);
    assert.equal(decoded.deadLetter.position, position);
    // The source's own bytes; else a string text's UTF-8 (an unpaired surrogate becomes
    // U+FFFD, the best a string allows); nothing when there was no text.
    if (record.text instanceof Uint8Array) assert.equal(decoded.deadLetter.original, record.text);
    else assert.deepEqual(decoded.deadLetter.original, new TextEncoder().encode(record.text ?? ''));
  });
}

test('should prefer the record’s own original bytes for dead letters', () => {
  const original = Uint8Array.from([1, 2, 3]);
  const decoded = decodeRecord(raw({ label: 9, original }), opts);
  assert.ok(!decoded.ok);
  assert.equal(decoded.deadLetter.original, original);
});

test('should return a source’s own rejection as the dead letter, before any other check', () => {
  const original = Uint8Array.from([0x7b, 0x7b]);
  const key = Uint8Array.from([0x6b]);
  const rejected = { reason: 'undecodable', detail: 'value is not valid JSON: nope' } as const;
  // Text and label that would pass (or fail differently) must not be looked at.
  const decoded = decodeRecord(raw({ text: 'fine', label: 'spam', original, key, rejected }), opts);
  assert.ok(!decoded.ok);
  assert.deepEqual(decoded.deadLetter, { position, reason: 'undecodable', detail: rejected.detail, original, key });
});

test('should carry the key to dead letters and messages only when the source has one', () => {
  const key = Uint8Array.from([1, 2]);
  const withKey = decodeRecord(raw({ key, label: 'x' }), opts);
  assert.ok(!withKey.ok);
  assert.equal(withKey.deadLetter.key, key);
  const good = decodeRecord(raw({ key: null }), opts);
  assert.ok(good.ok);
  assert.equal(good.message.key, null);
  const replay = decodeRecord(raw({ label: 'x' }), opts);
  assert.ok(!replay.ok);
  assert.equal('key' in replay.deadLetter, false);
});
