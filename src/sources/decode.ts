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

  const label = parseLabel(raw.label);
  if (label === undefined) {
    return reject(DeadLetterReasons.INVALID_LABEL, `label must be 0, 1 or null, got ${describe(raw.label)}`);
  }
  const id = raw.id ?? `${raw.position.source}:${raw.position.offset}`;
  if (id === '') return reject(DeadLetterReasons.INVALID_ID, 'id is empty');
  // An id must come out exactly as it came in; U+FFFD in its place would match no other system.
  if (LONE_SURROGATE.test(id)) return reject(DeadLetterReasons.INVALID_ID, `id ${describe(id)} has an unpaired surrogate, which is not valid UTF-8`);
  return { ok: true, message: { id, text, label, position: raw.position, original: () => originalBytes(raw), ...key } };
}

/** 0/1 (number, bigint, or the strings "0"/"1") → label; null/undefined → unlabelled; else undefined. */
function parseLabel(value: unknown): Label | null | undefined {
  if (value === null || value === undefined) return null;
  if (value === 0 || value === 0n || value === '0') return 0;
  if (value === 1 || value === 1n || value === '1') return 1;
  return undefined;
}

function describe(value: unknown): string {
  // JSON.stringify escapes an unpaired surrogate, so the detail stays valid UTF-8.
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
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
