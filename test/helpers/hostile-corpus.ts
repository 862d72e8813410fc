/**
 * Hostile Kafka messages and what must become of each (GitHub issue "hostile input"):
 * every one ends as a correct output row or as a dead letter with a specific reason.
 * Values are JSON with the fields id / text / label, as a `format: json` worker reads them
 * with `decode.maxMessageBytes` = HOSTILE_MAX_MESSAGE_BYTES.
 *
 * Used by test/sources/hostile-decode.test.ts (the pure stages, to point at the stage that
 * fails) and test/integration/hostile-input.test.ts (one real worker on a real broker).
 */
import type { DeadLetterReason, Label } from '../../src/message.js';

/** The `decode.maxMessageBytes` the expectations assume: 1 MiB, the default. */
export const HOSTILE_MAX_MESSAGE_BYTES = 1_048_576;
/** The topic's `max.message.bytes` the corpus needs (its largest value is 10 MiB). */
export const HOSTILE_TOPIC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface ExpectedRow {
  /** The row's id exactly. */
  id?: string;
  /** No id field and no usable key: the id is `<topic>/<partition>/<offset>`. */
  idFromPosition?: true;
  /** Default null (unlabelled). */
  label?: Label | null;
  /** The cleaned text exactly (the output's `text` column). */
  text?: string;
  /** Substrings the cleaned text holds, for texts too long to spell out. */
  textContains?: string[];
}

export type ExpectedOutcome = { row: ExpectedRow } | { deadLetter: DeadLetterReason; detail?: RegExp };

export interface HostileCase {
  /** Unique; names the case in failures. */
  name: string;
  key: Buffer | null;
  /** null: a tombstone. */
  value: Buffer | null;
  expected: ExpectedOutcome;
}

/** Text for one case; kept short so failures print readably. */
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
/** Strings as UTF-8 and numbers as raw bytes, concatenated: for bytes no string can hold. */
const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? utf8(p) : Buffer.from(p))));
const json = (value: unknown): Buffer => utf8(JSON.stringify(value));
const row = (expected: ExpectedRow): ExpectedOutcome => ({ row: expected });
const dead = (reason: DeadLetterReason, detail?: RegExp): ExpectedOutcome => (detail ? { deadLetter: reason, detail } : { deadLetter: reason });

/** A JSON value of exactly `size` bytes whose text ends with `marker`. */
function valueOfSize(id: string, size: number, marker: string): Buffer {
  const shell = JSON.stringify({ id, text: ` ${marker}` });
  const fill = size - Buffer.byteLength(shell);
  const words = 'lorem '.repeat(Math.ceil(fill / 6)).slice(0, fill);
  const value = json({ id, text: `${words} ${marker}` });
  if (value.byteLength !== size) throw new Error(`valueOfSize: ${value.byteLength} bytes, wanted ${size}`);
  return value;
}

/** `depth` nested arrays: `[[[…]]]`. */
const nestedArrays = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
/** `depth` nested objects: `{"a":{"a":…1…}}`. */
const nestedObjects = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** The 100 000-word text: a 1 000-word cycle between a first and a last word. */
export const LONG_TEXT_WORDS = 100_000;
const longText = ['firstword', ...Array.from({ length: LONG_TEXT_WORDS - 2 }, (_, i) => `word${i % 1000}`), 'lastword'].join(' ');

const cases: HostileCase[] = [
  // ---- invalid UTF-8: judged on the value's bytes, before parsing ----
  {
    name: 'invalid UTF-8: a Latin-1 byte inside the text',
    key: utf8('h-latin1-text'),
    value: bytes('{"id":"h-latin1-text","text":"caf', [0xe9], ' au lait","label":0}'),
    expected: dead('invalid-utf8', /^value is not valid UTF-8/),
  },
  {
    name: 'invalid UTF-8: the whole value in Latin-1 (not JSON either)',
    key: utf8('h-latin1-value'),
    value: bytes([0x72, 0xe9, 0x73, 0x75, 0x6d, 0xe9, 0x20, 0xe0, 0x20, 0x6a, 0x6f, 0x75, 0x72]),
    expected: dead('invalid-utf8'),
  },
  {
    // RFC 8259 requires the whole JSON text to be UTF-8; a bad byte anywhere makes the
    // record unreadable as sent, even in a field the pipeline would not use.
    name: 'invalid UTF-8: in a field the pipeline ignores',
    key: utf8('h-latin1-extra'),
    value: bytes('{"id":"h-latin1-extra","text":"fine text","note":"', [0xff], '"}'),
    expected: dead('invalid-utf8'),
  },
  {
    name: 'invalid UTF-8: an overlong encoding of "/"',
    key: utf8('h-overlong'),
    value: bytes('{"id":"h-overlong","text":"a', [0xc0, 0xaf], 'b"}'),
    expected: dead('invalid-utf8'),
  },
  {
    name: 'invalid UTF-8: a surrogate encoded as bytes (CESU-8)',
    key: utf8('h-cesu'),
    value: bytes('{"id":"h-cesu","text":"a', [0xed, 0xa0, 0x80], 'b"}'),
    expected: dead('invalid-utf8'),
  },
  {
    name: 'invalid UTF-8: a code point above U+10FFFF',
    key: utf8('h-above-max'),
    value: bytes('{"id":"h-above-max","text":"a', [0xf4, 0x90, 0x80, 0x80], 'b"}'),
    expected: dead('invalid-utf8'),
  },
  {
    name: 'invalid UTF-8: a sequence cut off at the end of the value',
    key: utf8('h-cut-off'),
    value: bytes('{"id":"h-cut-off","text":"euro "}', [0xe2, 0x82]),
    expected: dead('invalid-utf8'),
  },
  {
    name: 'invalid UTF-8: random binary',
    key: utf8('h-binary'),
    value: Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 167 + 13) % 256)),
    expected: dead('invalid-utf8'),
  },

  // ---- surrogates: JSON escapes can carry what UTF-8 cannot ----
  {
    name: 'lone surrogate: a high \\ud800 escape in the text',
    key: utf8('h-lone-high'),
    value: utf8('{"id":"h-lone-high","text":"bad \\ud800 text"}'),
    expected: dead('invalid-utf8', /unpaired surrogate/),
  },
  {
    name: 'lone surrogate: a low \\udc00 escape ending the text',
    key: utf8('h-lone-low'),
    value: utf8('{"id":"h-lone-low","text":"bad text\\udc00"}'),
    expected: dead('invalid-utf8', /unpaired surrogate/),
  },
  {
    name: 'lone surrogate: a pair in the wrong order (\\udc00\\ud800)',
    key: utf8('h-lone-reversed'),
    value: utf8('{"id":"h-lone-reversed","text":"x\\udc00\\ud800y"}'),
    expected: dead('invalid-utf8', /unpaired surrogate/),
  },
  {
    name: 'surrogate pair escape \\ud83d\\ude00 (a valid emoji)',
    key: utf8('h-emoji'),
    value: utf8('{"id":"h-emoji","text":"smile \\ud83d\\ude00 please","label":0}'),
    expected: row({ id: 'h-emoji', label: 0, text: 'smile \u{1F600} please' }),
  },
  {
    name: 'lone surrogate: in the id',
    key: utf8('h-lone-id'),
    value: utf8('{"id":"h-lone-id\\ud800","text":"fine text"}'),
    expected: dead('invalid-id', /unpaired surrogate/),
  },
  {
    name: 'lone surrogate: in the label',
    key: utf8('h-lone-label'),
    value: utf8('{"id":"h-lone-label","text":"fine text","label":"\\ud800"}'),
    expected: dead('invalid-label'),
  },
  {
    // Escapes in fields nobody reads put nothing into any output.
    name: 'lone surrogate: in a field the pipeline ignores',
    key: utf8('h-lone-extra'),
    value: utf8('{"id":"h-lone-extra","text":"fine text","note":"\\ud800","label":1}'),
    expected: row({ id: 'h-lone-extra', label: 1, text: 'fine text' }),
  },

  // ---- size: the limit is on the value, checked before parsing ----
  {
    name: 'a 10 MiB value',
    key: utf8('h-10mib'),
    value: valueOfSize('h-10mib', 10 * 1024 * 1024, 'end'),
    expected: dead('oversized', /^value is 10485760 bytes, limit is 1048576$/),
  },
  {
    name: 'a value one byte over the limit',
    key: utf8('h-limit-plus-1'),
    value: valueOfSize('h-limit-plus-1', HOSTILE_MAX_MESSAGE_BYTES + 1, 'end'),
    expected: dead('oversized', /^value is 1048577 bytes/),
  },
  {
    name: 'a value exactly at the limit',
    key: utf8('h-at-limit'),
    value: valueOfSize('h-at-limit', HOSTILE_MAX_MESSAGE_BYTES, 'atlimitend'),
    expected: row({ id: 'h-at-limit', textContains: ['lorem lorem', 'atlimitend'] }),
  },
  {
    name: 'a value just under the limit',
    key: utf8('h-under-limit'),
    value: valueOfSize('h-under-limit', HOSTILE_MAX_MESSAGE_BYTES - 100, 'underlimitend'),
    expected: row({ id: 'h-under-limit', textContains: ['lorem lorem', 'underlimitend'] }),
  },

  // ---- deeply nested JSON: V8's JSON.parse does not recurse; only the three fields are read ----
  {
    name: 'deeply nested JSON: 100 000 levels of arrays in an extra field',
    key: utf8('h-deep-extra'),
    value: utf8(`{"id":"h-deep-extra","nested":${nestedArrays(100_000)},"text":"deep but fine","label":0}`),
    expected: row({ id: 'h-deep-extra', label: 0, text: 'deep but fine' }),
  },
  {
    name: 'deeply nested JSON: 100 000 levels of objects as the text',
    key: utf8('h-deep-text'),
    value: utf8(`{"id":"h-deep-text","text":${nestedObjects(100_000)}}`),
    expected: dead('invalid-text', /field "text" is an object/),
  },
  {
    name: 'deeply nested JSON: 100 000 levels of arrays as the whole value',
    key: utf8('h-deep-value'),
    value: utf8(nestedArrays(100_000)),
    expected: dead('undecodable', /is JSON but an array/),
  },
  {
    name: 'deeply nested JSON: 100 000 levels as the label',
    key: utf8('h-deep-label'),
    value: utf8(`{"id":"h-deep-label","text":"fine text","label":${nestedArrays(100_000)}}`),
    expected: dead('invalid-label', /got an array/),
  },
  {
    name: 'deeply nested JSON: 100 000 levels as the id',
    key: utf8('h-deep-id'),
    value: utf8(`{"id":${nestedObjects(100_000)},"text":"fine text"}`),
    expected: dead('invalid-id', /field "id" is an object/),
  },
  {
    name: 'deeply nested JSON: 1 000 000 levels (over the limit)',
    key: utf8('h-deep-oversized'),
    value: utf8(`{"text":"x","nested":${nestedArrays(1_000_000)}}`),
    expected: dead('oversized'),
  },
  {
    name: 'deeply nested JSON: 300 000 brackets never closed',
    key: utf8('h-deep-unclosed'),
    value: utf8(`{"text":"x","nested":${'['.repeat(300_000)}`),
    expected: dead('undecodable', /not valid JSON/),
  },
  {
    // html-to-text recurses per element and used to overflow the stack (after seconds of parsing).
    name: 'deeply nested HTML: 60 000 <div> levels in the text',
    key: utf8('h-deep-html'),
    value: json({ id: 'h-deep-html', text: `${'<div>'.repeat(60_000)}deep inside &amp; found${'</div>'.repeat(60_000)}`, label: 1 }),
    expected: row({ id: 'h-deep-html', label: 1, text: 'deep inside & found' }),
  },
  {
    name: 'deeply nested HTML: 200 000 unclosed <b> tags',
    key: utf8('h-deep-html-unclosed'),
    value: json({ id: 'h-deep-html-unclosed', text: `${'<b>'.repeat(200_000)}bold claims`, label: 1 }),
    expected: row({ id: 'h-deep-html-unclosed', label: 1, text: 'bold claims' }),
  },

  // ---- values that are not a JSON object ----
  { name: 'not JSON: truncated object', key: utf8('h-truncated'), value: utf8('{"id":"h-truncated","text":"cut'), expected: dead('undecodable', /not valid JSON/) },
  { name: 'not JSON: garbage after the object', key: utf8('h-trailing'), value: utf8('{"text":"a"} trailing'), expected: dead('undecodable', /not valid JSON/) },
  { name: 'not JSON: plain text', key: utf8('h-plain'), value: utf8('hello, this is not json'), expected: dead('undecodable', /not valid JSON/) },
  { name: 'JSON but an array of records', key: utf8('h-array'), value: json([{ text: 'a' }]), expected: dead('undecodable', /an array/) },
  { name: 'JSON but a string', key: utf8('h-string'), value: json('just a string'), expected: dead('undecodable', /a string/) },
  { name: 'JSON but null', key: utf8('h-json-null'), value: utf8('null'), expected: dead('undecodable', /null/) },
  {
    // RFC 8259 lets a parser ignore a leading byte order mark; Windows producers send one.
    name: 'a UTF-8 byte order mark before the JSON value',
    key: utf8('h-bom'),
    value: utf8('\uFEFF{"id":"h-bom","text":"after the mark","label":0}'),
    expected: row({ id: 'h-bom', label: 0, text: 'after the mark' }),
  },

  // ---- extra, missing and mistyped fields ----
  {
    name: 'extra fields of every JSON type',
    key: utf8('h-extra'),
    value: json({ id: 'h-extra', text: 'plain words', label: 1, n: 1e308, b: false, z: null, o: { text: 'not this' }, a: [1, 'x'], s: 'y' }),
    expected: row({ id: 'h-extra', label: 1, text: 'plain words' }),
  },
  {
    name: 'an extra field named "constructor"',
    key: utf8('h-constructor'),
    value: utf8('{"id":"h-constructor","constructor":"x","text":"proto safe"}'),
    expected: row({ id: 'h-constructor', text: 'proto safe' }),
  },
  {
    // JSON.parse makes "__proto__" an own field; an inherited "text" must not be found.
    name: 'no text field, but a "__proto__" field holding one',
    key: utf8('h-proto'),
    value: utf8('{"id":"h-proto","__proto__":{"text":"smuggled","label":1}}'),
    expected: dead('missing-text', /field "text" is missing/),
  },
  { name: 'no text field', key: utf8('h-no-text'), value: json({ id: 'h-no-text', label: 1 }), expected: dead('missing-text', /field "text" is missing/) },
  { name: 'the text field spelt "Text"', key: utf8('h-text-case'), value: json({ id: 'h-text-case', Text: 'hello' }), expected: dead('missing-text') },
  { name: 'text null', key: utf8('h-text-null'), value: json({ id: 'h-text-null', text: null }), expected: dead('missing-text', /is null/) },
  { name: 'text as a number', key: utf8('h-text-number'), value: json({ id: 'h-text-number', text: 42 }), expected: dead('invalid-text', /is a number/) },
  { name: 'text as an object', key: utf8('h-text-object'), value: json({ id: 'h-text-object', text: { body: 'hi' } }), expected: dead('invalid-text', /is an object/) },
  { name: 'text as an array of strings', key: utf8('h-text-array'), value: json({ id: 'h-text-array', text: ['hi', 'there'] }), expected: dead('invalid-text', /is an array/) },
  { name: 'text as a boolean', key: utf8('h-text-bool'), value: json({ id: 'h-text-bool', text: true }), expected: dead('invalid-text', /is a boolean/) },
  {
    // Duplicate names are unspecified by RFC 8259; JSON.parse and Python's json keep the last.
    name: 'the text field given twice: the last one counts',
    key: utf8('h-text-twice'),
    value: utf8('{"id":"h-text-twice","text":"first value","text":"second value"}'),
    expected: row({ id: 'h-text-twice', text: 'second value' }),
  },
  ...(
    [
      ['"yes"', 'got "yes"'],
      ['2', 'got 2'],
      ['-1', 'got -1'],
      ['1.5', 'got 1.5'],
      ['true', 'got true'],
      ['""', 'got ""'],
      ['"1.0"', 'got "1.0"'],
      ['[1]', 'got an array'],
      ['{"v":1}', 'got an object'],
    ] as const
  ).map(([label, detail], i): HostileCase => ({
    name: `label ${label}`,
    key: utf8(`h-label-${i}`),
    value: utf8(`{"id":"h-label-${i}","text":"fine text","label":${label}}`),
    expected: dead('invalid-label', new RegExp(`${detail.replace(/[[\]{}.]/g, '\\$&')}$`)),
  })),
  ...(
    [
      ['"1"', 1],
      ['0', 0],
      ['1.0', 1],
      ['null', null],
    ] as const
  ).map(([label, expected], i): HostileCase => ({
    name: `label ${label} (accepted)`,
    key: utf8(`h-label-ok-${i}`),
    value: utf8(`{"id":"h-label-ok-${i}","text":"fine text","label":${label}}`),
    expected: row({ id: `h-label-ok-${i}`, label: expected, text: 'fine text' }),
  })),
  { name: 'id as an object', key: utf8('h-id-object'), value: utf8('{"id":{"v":"x"},"text":"fine text"}'), expected: dead('invalid-id', /is an object/) },
  { name: 'id as an array', key: utf8('h-id-array'), value: utf8('{"id":["x"],"text":"fine text"}'), expected: dead('invalid-id', /is an array/) },
  { name: 'id as a boolean', key: utf8('h-id-bool'), value: utf8('{"id":false,"text":"fine text"}'), expected: dead('invalid-id', /is a boolean/) },
  { name: 'id as a fraction', key: utf8('h-id-fraction'), value: utf8('{"id":1.5,"text":"fine text"}'), expected: dead('invalid-id', /1\.5/) },
  {
    name: 'id as a number past 2^53',
    key: utf8('h-id-huge'),
    value: utf8('{"id":18446744073709551616,"text":"fine text"}'),
    expected: dead('invalid-id', /send it as a string/),
  },
  { name: 'id empty', key: utf8('h-id-empty'), value: utf8('{"id":"","text":"fine text"}'), expected: dead('invalid-id', /id is empty/) },
  { name: 'id as an exact integer', key: utf8('h-id-int'), value: utf8('{"id":9007199254740991,"text":"fine text"}'), expected: row({ id: '9007199254740991', text: 'fine text' }) },

  // ---- NUL bytes ----
  {
    name: 'NUL escape \\u0000 inside the text',
    key: utf8('h-nul-escape'),
    value: utf8('{"id":"h-nul-escape","text":"nul\\u0000separated\\u0000words","label":0}'),
    expected: row({ id: 'h-nul-escape', label: 0, text: 'nul separated words' }),
  },
  {
    // JSON strings cannot hold raw control characters: strict parsing, no guessing.
    name: 'a raw NUL byte inside the JSON string',
    key: utf8('h-nul-raw'),
    value: bytes('{"id":"h-nul-raw","text":"nul', [0x00], 'byte"}'),
    expected: dead('undecodable', /not valid JSON/),
  },
  {
    name: 'a NUL byte after the JSON value (a C string)',
    key: utf8('h-nul-trailing'),
    value: bytes('{"id":"h-nul-trailing","text":"c string"}', [0x00]),
    expected: dead('undecodable', /not valid JSON/),
  },
  {
    name: 'text of NUL characters only',
    key: utf8('h-nul-only'),
    value: utf8('{"id":"h-nul-only","text":"\\u0000\\u0000\\u0000"}'),
    expected: dead('empty-text', /after cleaning/),
  },
  {
    // A key is an opaque id: kept exactly, NUL included.
    name: 'a key with a NUL byte, used as the id',
    key: bytes('h-nul', [0x00], 'key'),
    value: json({ text: 'key with nul', label: 0 }),
    expected: row({ id: 'h-nul\u0000key', label: 0, text: 'key with nul' }),
  },

  // ---- control characters ----
  {
    name: 'C0 controls and DEL inside the text',
    key: utf8('h-c0'),
    value: utf8('{"id":"h-c0","text":"bell\\u0007escape\\u001b[31mred\\u001funit\\u007fdel","label":1}'),
    expected: row({ id: 'h-c0', label: 1, text: 'bell escape [31mred unit del' }),
  },
  {
    name: 'C1 controls (raw UTF-8) inside the text',
    key: utf8('h-c1'),
    value: json({ id: 'h-c1', text: 'pad\u0080next\u0085line\u009bcsi\u009fend', label: 0 }),
    expected: row({ id: 'h-c1', label: 0, text: 'pad next line csi end' }),
  },
  {
    name: 'escaped tabs, newlines, carriage returns and form feeds',
    key: utf8('h-whitespace-escapes'),
    value: utf8('{"id":"h-whitespace-escapes","text":"one\\ttwo\\r\\nthree\\ffour\\u000bfive"}'),
    expected: row({ id: 'h-whitespace-escapes', text: 'one two three four five' }),
  },
  {
    name: 'raw tab and newline bytes inside the JSON string',
    key: utf8('h-raw-newline'),
    value: utf8('{"id":"h-raw-newline","text":"line one\nline\ttwo"}'),
    expected: dead('undecodable', /not valid JSON/),
  },
  {
    name: 'text of control characters only',
    key: utf8('h-controls-only'),
    value: json({ id: 'h-controls-only', text: '\u0001\u0002\u001b\u007f\u0085\u009f' }),
    expected: dead('empty-text', /after cleaning/),
  },

  // ---- right-to-left and zero-width characters: format characters are removed by cleaning ----
  {
    name: 'right-to-left override U+202E disguising a word',
    key: utf8('h-rlo'),
    value: json({ id: 'h-rlo', text: 'free \u202Eyenom\u202C now', label: 1 }),
    expected: row({ id: 'h-rlo', label: 1, text: 'free yenom now' }),
  },
  {
    name: 'bidi marks and isolates inside words (U+200E, U+200F, U+2066–U+2069, U+061C)',
    key: utf8('h-bidi'),
    value: json({ id: 'h-bidi', text: 'pay\u200Epal \u2066secure\u2069 acc\u200Fount\u061C', label: 1 }),
    expected: row({ id: 'h-bidi', label: 1, text: 'paypal secure account' }),
  },
  {
    name: 'zero-width spaces U+200B splitting a word',
    key: utf8('h-zwsp'),
    value: json({ id: 'h-zwsp', text: 'V\u200Bi\u200Ba\u200Bg\u200Br\u200Ba cheap', label: 1 }),
    expected: row({ id: 'h-zwsp', label: 1, text: 'viagra cheap' }),
  },
  {
    name: 'zero-width no-break spaces U+FEFF around and inside the text',
    key: utf8('h-zwnbsp'),
    value: json({ id: 'h-zwnbsp', text: '\uFEFFwin\uFEFFner prize\uFEFF', label: 1 }),
    expected: row({ id: 'h-zwnbsp', label: 1, text: 'winner prize' }),
  },
  {
    name: 'Hebrew and Arabic text inside a right-to-left embedding',
    key: utf8('h-rtl-text'),
    value: json({ id: 'h-rtl-text', text: '\u202Bשלום עולם مرحبا\u202C', label: 0 }),
    expected: row({ id: 'h-rtl-text', label: 0, text: 'שלום עולם مرحبا' }),
  },
  {
    name: 'text of invisible format characters only',
    key: utf8('h-invisible-only'),
    value: json({ id: 'h-invisible-only', text: '\u200B\u202E\u2060\u200D\u2066' }),
    expected: dead('empty-text', /after cleaning/),
  },
  {
    name: 'text of U+FEFF only',
    key: utf8('h-bom-only'),
    value: json({ id: 'h-bom-only', text: '\uFEFF\uFEFF' }),
    expected: dead('empty-text'),
  },

  // ---- long texts: the tokenizer keeps the last maxLen tokens ----
  {
    name: 'a 100 000-word text',
    key: utf8('h-100k-words'),
    value: json({ id: 'h-100k-words', text: longText, label: 0 }),
    expected: row({ id: 'h-100k-words', label: 0, textContains: ['firstword word0 word1', 'word997 lastword'] }),
  },
  {
    name: 'a single 500 000-character word',
    key: utf8('h-one-long-word'),
    value: json({ id: 'h-one-long-word', text: `${'a'.repeat(500_000)} tail` }),
    expected: row({ id: 'h-one-long-word', textContains: ['aaaa tail'] }),
  },

  // ---- keys and ids ----
  { name: 'an empty key and no id field', key: Buffer.alloc(0), value: json({ text: 'empty key' }), expected: row({ idFromPosition: true, text: 'empty key' }) },
  { name: 'a null key and no id field', key: null, value: json({ text: 'null key', label: 1 }), expected: row({ idFromPosition: true, label: 1, text: 'null key' }) },
  {
    name: 'a binary key and no id field',
    key: Buffer.from([0xff, 0xfe, 0x00]),
    value: json({ text: 'binary key' }),
    expected: row({ idFromPosition: true, text: 'binary key' }),
  },
  { name: 'a key and no id field: the key is the id', key: utf8('h-key-id'), value: json({ text: 'key id' }), expected: row({ id: 'h-key-id', text: 'key id' }) },
  { name: 'an empty key and an id field', key: Buffer.alloc(0), value: json({ id: 'h-empty-key-with-id', text: 'has id' }), expected: row({ id: 'h-empty-key-with-id', text: 'has id' }) },
  {
    name: 'duplicate id: the first message',
    key: utf8('h-dup'),
    value: json({ id: 'h-dup', text: 'first copy', label: 0 }),
    expected: row({ id: 'h-dup', label: 0, text: 'first copy' }),
  },
  {
    name: 'duplicate id: the second message',
    key: utf8('h-dup'),
    value: json({ id: 'h-dup', text: 'second copy', label: 1 }),
    expected: row({ id: 'h-dup', label: 1, text: 'second copy' }),
  },

  // ---- empty values and texts ----
  { name: 'a tombstone (null value)', key: utf8('h-tombstone'), value: null, expected: dead('missing-text', /tombstone/) },
  { name: 'an empty value (0 bytes)', key: utf8('h-empty-value'), value: Buffer.alloc(0), expected: dead('missing-text', /^message value is empty$/) },
  { name: 'a value of whitespace only', key: utf8('h-blank-value'), value: utf8(' \r\n\t '), expected: dead('missing-text', /only whitespace/) },
  { name: 'an empty text', key: utf8('h-empty-text'), value: json({ id: 'h-empty-text', text: '', label: 1 }), expected: dead('empty-text') },
  { name: 'a whitespace-only text', key: utf8('h-blank-text'), value: json({ id: 'h-blank-text', text: ' \t\r\n ' }), expected: dead('empty-text', /^text is empty$/) },
  {
    name: 'a text of Unicode spaces only (NBSP, ideographic space, U+2028)',
    key: utf8('h-unicode-spaces'),
    value: json({ id: 'h-unicode-spaces', text: '\u00A0\u3000\u2028\u2003' }),
    expected: dead('empty-text'),
  },
  {
    // Cleans to text, tokenizes to nothing (Keras filters every character): an all-padding
    // sequence the model still scores, as Keras would.
    name: 'a text of punctuation only',
    key: utf8('h-punctuation'),
    value: json({ id: 'h-punctuation', text: '!!! ??? ... ---' }),
    expected: row({ id: 'h-punctuation', text: '!!! ??? ... ---' }),
  },
];

for (const [i, c] of cases.entries()) {
  if (cases.findIndex((o) => o.name === c.name) !== i) throw new Error(`hostile corpus: duplicate case name "${c.name}"`);
}

export const HOSTILE_CASES: readonly HostileCase[] = cases;

/** The row a case must become, or null when it must become a dead letter. */
export function expectedRow(c: HostileCase): ExpectedRow | null {
  return 'row' in c.expected ? c.expected.row : null;
}

/** The dead-letter reason a case must get, or null when it must become a row. */
export function expectedReason(c: HostileCase): DeadLetterReason | null {
  return 'deadLetter' in c.expected ? c.expected.deadLetter : null;
}
