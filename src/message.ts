/**
 * The contract every stage shares: where a record came from, what a decoded message
 * looks like, and what a dead letter carries. Every record that enters the pipeline
 * leaves exactly once, as an output row or as a dead letter.
 */

/**
 * Where a record came from. Kafka: topic, partition, offset, broker timestamp.
 * Replay: `source` is the file's name, `partition` is 0 and `offset` is the row index,
 * so both kinds map onto the same output columns and file names.
 */
export interface SourcePosition {
  source: string;
  partition: number;
  offset: bigint;
  /** Milliseconds since the epoch, when the source has one (Kafka); else null. */
  timestampMs: number | null;
}

/** A record as a source hands it over, before decoding. */
export interface RawRecord {
  position: SourcePosition;
  /** Id from the source, when it has one outside the payload (e.g. a Parquet column). */
  id: string | null;
  /** The text payload: bytes when the source has bytes (so bad UTF-8 is detectable). */
  text: Uint8Array | string | null;
  /** The label as found in the source, not yet validated (0/1/null are valid). */
  label: unknown;
  /** The record's original bytes for the dead-letter sink, when the source has them. */
  original?: Uint8Array;
  /** The message key as received (Kafka), so that a dead letter keeps it. */
  key?: Uint8Array | null;
  /**
   * Set by a source that already found the record bad while unpacking it (e.g. a Kafka
   * value that is not JSON): `decodeRecord` turns it into this dead letter, checking nothing else.
   */
  rejected?: { reason: DeadLetterReason; detail: string };
}

export type Label = 0 | 1;

/** A decoded, validated message. */
export interface Message {
  id: string;
  text: string;
  label: Label | null;
  position: SourcePosition;
  /** The record's original bytes, for a dead letter raised after decoding (built on demand). */
  original?: () => Uint8Array;
  /** The message key as received (Kafka), for a dead letter raised after decoding. */
  key?: Uint8Array | null;
}

/** A message after cleaning and tokenizing, ready to be batched. */
export interface TokenizedMessage extends Message {
  /** Exactly `maxLen` token ids, padded and truncated Keras-style. */
  tokens: Int32Array;
}

/**
 * Why a record became a dead letter. Closed set: metrics export every one from 0, and
 * dashboards and alerts group by it, so each says which rule the record broke.
 */
export const DeadLetterReasons = {
  /** Bytes that are not UTF-8, or a string with an unpaired surrogate (no UTF-8 form). */
  INVALID_UTF8: 'invalid-utf8',
  /** Larger than `decode.maxMessageBytes`. */
  OVERSIZED: 'oversized',
  /** A text that is empty or only whitespace, before or after cleaning. */
  EMPTY_TEXT: 'empty-text',
  /** No text at all: a tombstone, an empty value, or no (or a null) text field. */
  MISSING_TEXT: 'missing-text',
  /** A text field that is present but not a string (a number, an object, an array…). */
  INVALID_TEXT: 'invalid-text',
  INVALID_LABEL: 'invalid-label',
  INVALID_ID: 'invalid-id',
  /** The value cannot be unpacked at all (not JSON, or JSON that is not an object), or cleaning failed on it. */
  UNDECODABLE: 'undecodable',
} as const;
export type DeadLetterReason = (typeof DeadLetterReasons)[keyof typeof DeadLetterReasons];

export interface DeadLetter {
  position: SourcePosition;
  reason: DeadLetterReason;
  /** Human-readable detail, e.g. `label must be 0, 1 or null, got "spam"`. */
  detail: string;
  /** The original bytes of the record, as far as the source had them. */
  original: Uint8Array;
  /** The record's key as received (Kafka), when it had one. */
  key?: Uint8Array | null;
}
