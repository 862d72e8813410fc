import {
  FixedSizeList,
  Int8,
  Int32,
  Int64,
  RecordBatch,
  Struct,
  TimestampMillisecond,
  Utf8,
  makeData,
  type Data,
  type Schema,
} from 'apache-arrow';
import type { TokenizedMessage } from '../message.js';
import { InputError } from '../errors.js';
import { Columns, makeBatchSchema } from './schema.js';

export interface BatchBuilderOptions {
  /** Token sequence length; every message's `tokens` has exactly this many ids. */
  maxLen: number;
  /** Flush when this many rows are buffered. */
  maxRows: number;
  /** Flush when the oldest buffered row is this old (ms), checked by `flushIfOlderThan`. */
  maxAgeMs: number;
}

const utf8 = new TextEncoder();

/**
 * Accumulates tokenized messages into preallocated typed arrays and emits Arrow record
 * batches. Columns are built from whole buffers, never row by row, and the token
 * column is one flat Int32Array (rows × maxLen) the model can read without copying.
 *
 * `push` emits a batch when it fills up; `flushIfOlderThan` emits an underfull batch
 * once its oldest row is older than `maxAgeMs`; `flush` emits whatever is buffered.
 */
export class BatchBuilder {
  readonly schema: Schema;
  readonly #opts: Readonly<BatchBuilderOptions>;
  #rows: TokenizedMessage[] = [];
  #oldestAtMs = 0;

  /** Resolved sizes (batch.* and tokenizer.maxLen, validated with the pipeline): positive integers. */
  constructor(opts: Readonly<BatchBuilderOptions>) {
    this.#opts = opts;
    this.schema = makeBatchSchema(opts.maxLen);
  }

  get maxRows(): number {
    return this.#opts.maxRows;
  }

  get length(): number {
    return this.#rows.length;
  }

  push(message: TokenizedMessage, nowMs = Date.now()): RecordBatch | null {
    if (message.tokens.length !== this.#opts.maxLen) {
      throw new InputError(`message ${message.id} has ${message.tokens.length} tokens, expected ${this.#opts.maxLen}`);
    }
    if (this.#rows.length === 0) this.#oldestAtMs = nowMs;
    this.#rows.push(message);
    return this.#rows.length >= this.#opts.maxRows ? this.flush() : null;
  }

  flushIfOlderThan(nowMs = Date.now()): RecordBatch | null {
    if (this.#rows.length === 0 || nowMs - this.#oldestAtMs < this.#opts.maxAgeMs) return null;
    return this.flush();
  }

  /** `messages` as batches of at most `maxRows`, apart from the buffered stream (which is left as it is). */
  batchesOf(messages: readonly TokenizedMessage[]): RecordBatch[] {
    const batches: RecordBatch[] = [];
    for (let start = 0; start < messages.length; start += this.#opts.maxRows) {
      batches.push(buildRecordBatch(this.schema, this.#opts.maxLen, messages.slice(start, start + this.#opts.maxRows)));
    }
    return batches;
  }

  /** Emits the buffered rows as one batch (null when empty) and resets. */
  flush(): RecordBatch | null {
    const rows = this.#rows;
    if (rows.length === 0) return null;
    this.#rows = [];
    return buildRecordBatch(this.schema, this.#opts.maxLen, rows);
  }
}

function buildRecordBatch(schema: Schema, maxLen: number, rows: readonly TokenizedMessage[]): RecordBatch {
  const n = rows.length;
  const tokens = new Int32Array(n * maxLen);
  const labels = new Int8Array(n);
  const labelValid = new Uint8Array(Math.ceil(n / 8));
  const partitions = new Int32Array(n);
  const offsets = new BigInt64Array(n);
  const timestamps = new BigInt64Array(n);
  const timestampValid = new Uint8Array(Math.ceil(n / 8));
  let labelNulls = 0;
  let timestampNulls = 0;
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    tokens.set(row.tokens, i * maxLen);
    if (row.label === null) labelNulls++;
    else {
      labels[i] = row.label;
      labelValid[i >> 3]! |= 1 << (i & 7);
    }
    partitions[i] = row.position.partition;
    offsets[i] = row.position.offset;
    if (row.position.timestampMs === null) timestampNulls++;
    else {
      timestamps[i] = BigInt(row.position.timestampMs);
      timestampValid[i >> 3]! |= 1 << (i & 7);
    }
  }
  const tokenType = schema.fields.find((f) => f.name === Columns.TOKENS)!.type as FixedSizeList<Int32>;
  const children: Data[] = [
    utf8Data(rows.map((r) => r.id)),
    makeData({
      type: tokenType,
      length: n,
      nullCount: 0,
      child: makeData({ type: new Int32(), length: n * maxLen, nullCount: 0, data: tokens }),
    }),
    makeData({ type: new Int8(), length: n, nullCount: labelNulls, nullBitmap: labelValid, data: labels }),
    utf8Data(rows.map((r) => r.text)),
    utf8Data(rows.map((r) => r.position.source)),
    makeData({ type: new Int32(), length: n, nullCount: 0, data: partitions }),
    makeData({ type: new Int64(), length: n, nullCount: 0, data: offsets }),
    makeData({
      type: new TimestampMillisecond(),
      length: n,
      nullCount: timestampNulls,
      nullBitmap: timestampValid,
      data: timestamps,
    }),
  ];
  const struct = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

/** A Utf8 column from strings: one encode into a shared buffer plus an offsets array. */
function utf8Data(values: readonly string[]): Data<Utf8> {
  const encoded = values.map((v) => utf8.encode(v));
  const valueOffsets = new Int32Array(values.length + 1);
  let total = 0;
  for (let i = 0; i < encoded.length; i++) {
    total += encoded[i]!.length;
    valueOffsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  for (let i = 0; i < encoded.length; i++) data.set(encoded[i]!, valueOffsets[i]);
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets, data });
}

/**
 * The token column as one flat Int32Array of rows × maxLen, sharing the Arrow buffer
 * (no copy, no per-row arrays).
 */
export function tokenMatrix(batch: RecordBatch): Int32Array {
  const column = batch.getChild(Columns.TOKENS);
  if (!column || column.data.length !== 1) throw new InputError('batch has no single-chunk tokens column');
  const data = column.data[0]!;
  const listSize = (data.type as FixedSizeList).listSize;
  const child = data.children[0]!;
  // Arrow-js slices the child's value buffer along with the list, so the first row
  // always starts at index 0 of `values`.
  return (child.values as Int32Array).subarray(0, data.length * listSize);
}
