import {
  DeadLetterReasons,
  type DeadLetter,
  type DeadLetterReason,
  type Label,
  type Message,
  type RawRecord,
} from '../message.js';

export interface DecodeOptions {
  /** Text payloads larger than this (in UTF-8 bytes) become `oversized` dead letters. */
  maxMessageBytes: number;
  /** Text labels and their class (`decode.labels`, e.g. {spam: 1, ham: 0}), beside 0, 1 and null. */
  labels?: Readonly<Record<string, Label>>;
}

export type Decoded = { ok: true; message: Message } | { ok: false; deadLetter: DeadLetter };

// `fatal` makes invalid UTF-8 an error instead of silently becoming U+FFFD.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();
/**
 * An unpaired UTF-16 surrogate. A string source can hand one over (JSON's "\ud800"
 * escape); it has no UTF-8 form, so every output would silently turn it into U+FFFD.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Turns a raw record into a validated message, or into a dead letter that says why not.
 * Never throws on bad input: a worker must survive anything a producer sends.
 */
export function decodeRecord(raw: RawRecord, opts: DecodeOptions): Decoded {
  // The key only when the source has one, so replay records and letters keep their shape.
  const key = raw.key === undefined ? {} : { key: raw.key };
  const reject = (reason: DeadLetterReason, detail: string): Decoded => ({
    ok: false,
    deadLetter: { position: raw.position, reason, detail, original: originalBytes(raw), ...key },
  });

  if (raw.rejected) return reject(raw.rejected.reason, raw.rejected.detail);
  if (raw.text === null || raw.text === undefined) return reject(DeadLetterReasons.MISSING_TEXT, 'record has no text');
  const byteLength = typeof raw.text === 'string' ? Buffer.byteLength(raw.text, 'utf8') : raw.text.byteLength;
  if (byteLength > opts.maxMessageBytes) {
    return reject(DeadLetterReasons.OVERSIZED, `text is ${byteLength} bytes, limit is ${opts.maxMessageBytes}`);
  }
  let text: string;
  if (typeof raw.text === 'string') {
    text = raw.text;
    if (LONE_SURROGATE.test(text)) return reject(DeadLetterReasons.INVALID_UTF8, 'text has an unpaired surrogate, which is not valid UTF-8');
  } else {
    try {
      text = strictUtf8.decode(raw.text);
    } catch {
      return reject(DeadLetterReasons.INVALID_UTF8, `text is not valid UTF-8 (${byteLength} bytes)`);
    }
  }
  if (text.trim() === '') return reject(DeadLetterReasons.EMPTY_TEXT, 'text is empty');

  const label = parseLabel(raw.label, opts.labels);
  if (label === undefined) return reject(DeadLetterReasons.INVALID_LABEL, invalidLabelDetail(raw.label, opts.labels));
  const id = raw.id ?? `${raw.position.source}:${raw.position.offset}`;
  if (id === '') return reject(DeadLetterReasons.INVALID_ID, 'id is empty');
  // An id must come out exactly as it came in; U+FFFD in its place would match no other system.
  if (LONE_SURROGATE.test(id)) return reject(DeadLetterReasons.INVALID_ID, `id ${describe(id)} has an unpaired surrogate, which is not valid UTF-8`);
  return { ok: true, message: { id, text, label, position: raw.position, original: () => originalBytes(raw), ...key } };
}

/**
 * 0/1 (number, bigint, or the strings "0"/"1") or a text label of `labels` → label;
 * null/undefined → unlabelled; else undefined.
 */
function parseLabel(value: unknown, labels: Readonly<Record<string, Label>> = {}): Label | null | undefined {
  if (value === null || value === undefined) return null;
  if (value === 0 || value === 0n || value === '0') return 0;
  if (value === 1 || value === 1n || value === '1') return 1;
  if (typeof value === 'string' && Object.hasOwn(labels, value)) return labels[value];
  return undefined;
}

function invalidLabelDetail(value: unknown, labels: Readonly<Record<string, Label>> = {}): string {
  const known = Object.keys(labels);
  if (known.length > 0) return `label must be 0, 1, null or one of decode.labels (${known.map((k) => JSON.stringify(k)).join(', ')}), got ${describe(value)}`;
  // The value stays last: the detail reads "…, got <value>" however it is worded.
  const hint = typeof value === 'string' && value !== '' ? ` (map text labels to 0/1 with decode.labels, e.g. {${JSON.stringify(value)}: 1})` : '';
  return `label must be 0, 1 or null${hint}, got ${describe(value)}`;
}

function describe(value: unknown): string {
  // JSON.stringify escapes an unpaired surrogate, so the detail stays valid UTF-8.
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  // As the number a user wrote (a Parquet INT64 arrives as a bigint), not JavaScript's `2n`.
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'object' && value !== null) return 'an object';
  return Object.prototype.toString.call(value);
}

function originalBytes(raw: RawRecord): Uint8Array {
  if (raw.original) return raw.original;
  if (raw.text instanceof Uint8Array) return raw.text;
  if (typeof raw.text === 'string') return encoder.encode(raw.text);
  return new Uint8Array(0);
}
