import { isUtf8 } from 'node:buffer';
import { DeadLetterReasons, type DeadLetterReason, type RawRecord, type SourcePosition } from '../message.js';

/**
 * Unpacking one Kafka message into the pipeline's RawRecord. Pure: no I/O, never throws
 * on what a producer sent. A value that cannot even be unpacked (not JSON, not an object,
 * a text field of the wrong type…) comes back with `rejected` set, and `decodeRecord`
 * turns it into that dead letter; everything else it can judge (empty text, labels, ids,
 * size of a text-format value, UTF-8 of a text-format value) is left to `decodeRecord`, so
 * that Kafka and replay reject the same records for the same reasons.
 */

export const KafkaMessageFormats = { JSON: 'json', TEXT: 'text' } as const;
export type KafkaMessageFormat = (typeof KafkaMessageFormats)[keyof typeof KafkaMessageFormats];

/** The parts of a kafkajs `KafkaMessage` this needs (kafkajs hands them over as-is). */
export interface KafkaMessageLike {
  key: Buffer | null;
  value: Buffer | null;
  /** int64 as a decimal string. */
  offset: string;
  /** Milliseconds since the epoch as a decimal string; "-1" when the producer set none. */
  timestamp: string;
}

export interface KafkaMessageOptions {
  /** json: the value is an object holding the fields below; text: the value is the text. */
  format: KafkaMessageFormat;
  /** Field names inside a JSON value. */
  fields: { id: string; text: string; label: string };
  /** JSON values larger than this are rejected (oversized) before they are parsed. */
  maxMessageBytes: number;
}

/** Longest JSON parser message kept in a detail (V8 quotes part of the input in it). */
const MAX_DETAIL_CHARS = 200;
/** An unpaired UTF-16 surrogate: only JSON's \uD800-style escapes can produce one. */
const LONE_SURROGATE = /\p{Cs}/u;
/** JSON's insignificant whitespace (RFC 8259): a value of only this holds no JSON text. */
const JSON_WHITESPACE_ONLY = /^[ \t\n\r]*$/;
const BYTE_ORDER_MARK = 0xfeff;

/**
 * One Kafka message → one RawRecord.
 *
 * - position: the topic, partition, offset, and the Kafka timestamp (null when -1 or not a time);
 * - original: the value bytes as received (empty for a tombstone); key: the key bytes as received;
 * - id: the JSON id field (string, or number as its decimal string), else the key as UTF-8
 *   when it is non-empty valid UTF-8, else `<topic>/<partition>/<offset>`, which is unique
 *   across partitions (decodeRecord's own fallback, `<source>:<offset>`, is not);
 * - json: the text field must be a string, the label field is passed through as found
 *   (decodeRecord accepts 0, 1, "0", "1", null or absent); other fields are ignored, and
 *   of a field given twice the last one counts (as with JSON.parse and Python's json);
 *   a leading byte order mark is ignored (RFC 8259 allows it; some Windows producers send one);
 *   an empty value is missing text, like a tombstone;
 * - text: the value bytes are the text; there is no label.
 */
export function kafkaMessageToRecord(
  message: KafkaMessageLike,
  topic: string,
  partition: number,
  options: KafkaMessageOptions,
): RawRecord {
  const position: SourcePosition = {
    source: topic,
    partition,
    offset: BigInt(message.offset),
    timestampMs: parseTimestamp(message.timestamp),
  };
  const { key, value } = message;
  const record: RawRecord = {
    position,
    id: keyId(key) ?? `${topic}/${partition}/${message.offset}`,
    text: null,
    label: null,
    original: value ?? new Uint8Array(0),
    key,
  };
  const reject = (reason: DeadLetterReason, detail: string): RawRecord => {
    record.rejected = { reason, detail };
    return record;
  };

  if (value === null) return reject(DeadLetterReasons.MISSING_TEXT, 'message value is null (a tombstone)');
  if (options.format === KafkaMessageFormats.TEXT) {
    record.text = value;
    return record;
  }

  // Checked before parsing: a huge value must not cost a parse to be rejected.
  if (value.byteLength > options.maxMessageBytes) {
    return reject(DeadLetterReasons.OVERSIZED, `value is ${value.byteLength} bytes, limit is ${options.maxMessageBytes}`);
  }
  // JSON.parse would accept the U+FFFD that a lossy decode leaves; the bytes must be judged.
  if (!isUtf8(value)) return reject(DeadLetterReasons.INVALID_UTF8, `value is not valid UTF-8 (${value.byteLength} bytes)`);
  let json = value.toString('utf8');
  if (json.charCodeAt(0) === BYTE_ORDER_MARK) json = json.slice(1);
  // Nothing to parse is not garbage: the producer sent no record, as with a tombstone.
  if (JSON_WHITESPACE_ONLY.test(json)) {
    return reject(DeadLetterReasons.MISSING_TEXT, value.byteLength === 0 ? 'message value is empty' : 'message value is only whitespace');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    return reject(DeadLetterReasons.UNDECODABLE, `value is not valid JSON: ${clip((err as Error).message)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return reject(DeadLetterReasons.UNDECODABLE, `value is JSON but ${typeName(parsed)}, expected an object with a "${options.fields.text}" field`);
  }
  const object = parsed as Record<string, unknown>;
  const { id: idField, text: textField, label: labelField } = options.fields;

  // Own properties only: a field named "constructor" or "__proto__" must not find Object's.
  const text = Object.hasOwn(object, textField) ? object[textField] : undefined;
  if (text === undefined) return reject(DeadLetterReasons.MISSING_TEXT, `field "${textField}" is missing`);
  if (text === null) return reject(DeadLetterReasons.MISSING_TEXT, `field "${textField}" is null`);
  if (typeof text !== 'string') {
    return reject(DeadLetterReasons.INVALID_TEXT, `field "${textField}" is ${typeName(text)}, expected a string`);
  }
  if (LONE_SURROGATE.test(text)) {
    return reject(DeadLetterReasons.INVALID_UTF8, `field "${textField}" has an unpaired surrogate escape, which is not valid UTF-8`);
  }
  record.text = text;
  record.label = Object.hasOwn(object, labelField) ? object[labelField] : null;

  const id = Object.hasOwn(object, idField) ? object[idField] : null;
  if (typeof id === 'string') record.id = id;
  else if (typeof id === 'number') {
    // JSON numbers past 2^53 have already lost digits: an id must not silently change.
    if (!Number.isSafeInteger(id)) {
      return reject(
        DeadLetterReasons.INVALID_ID,
        `field "${idField}" is the number ${id}, which is not an exact integer id; send it as a string`,
      );
    }
    record.id = String(id);
  } else if (id !== null) {
    return reject(DeadLetterReasons.INVALID_ID, `field "${idField}" is ${typeName(id)}, expected a string or a number`);
  }
  return record;
}

/** The key as an id: non-empty valid UTF-8 only (a binary key says nothing readable). */
function keyId(key: Buffer | null): string | null {
  if (key === null || key.byteLength === 0 || !isUtf8(key)) return null;
  return key.toString('utf8');
}

/** Kafka's "no timestamp" is -1; anything that is not a whole number of ms is none either. */
function parseTimestamp(timestamp: string): number | null {
  if (!/^\d{1,16}$/.test(timestamp)) return null;
  const ms = Number(timestamp);
  return Number.isSafeInteger(ms) ? ms : null;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

function clip(text: string): string {
  if (text.length <= MAX_DETAIL_CHARS) return text;
  // Not between the halves of a surrogate pair: the detail travels as UTF-8.
  const end = /[\uD800-\uDBFF]/.test(text[MAX_DETAIL_CHARS - 1]!) ? MAX_DETAIL_CHARS - 1 : MAX_DETAIL_CHARS;
  return `${text.slice(0, end)}…`;
}
