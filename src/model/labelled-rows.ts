/**
 * The labelled rows of an Arrow batch, and packing a subset of a batch's token rows
 * together: how the learner splits a batch into rows it trains on and rows it only scores.
 */
import type { RecordBatch } from 'apache-arrow';
import { Columns } from '../batch/schema.js';
import { InputError } from '../errors.js';

/** Row indices and labels (as float 0/1, ready for the loss) of the labelled rows. */
export function labelledRows(batch: RecordBatch): { rows: Int32Array; labels: Float32Array } {
  const column = batch.getChild(Columns.LABEL);
  const n = batch.numRows;
  if (column === null) return { rows: new Int32Array(0), labels: new Float32Array(0) };
  if (column.data.length !== 1) throw new InputError('batch has no single-chunk label column');
  const data = column.data[0]!;
  const values = data.values as Int8Array;
  const bitmap = data.nullCount > 0 ? data.nullBitmap : undefined;
  const rows = new Int32Array(n);
  const labels = new Float32Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    // Arrow validity bitmaps are indexed from the data's offset; `values` is already sliced.
    if (bitmap !== undefined) {
      const bit = data.offset + i;
      if (((bitmap[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
    }
    const label = values[i]!;
    if (label !== 0 && label !== 1) {
      throw new InputError(`row ${i} has label ${label}; labels must be 0, 1 or null`);
    }
    rows[k] = i;
    labels[k] = label;
    k++;
  }
  return { rows: rows.subarray(0, k), labels: labels.subarray(0, k) };
}

/** Copies the given rows of a rows × maxLen matrix into a new packed matrix. */
export function packRows(tokens: Int32Array, rows: Int32Array, maxLen: number): Int32Array {
  const out = new Int32Array(rows.length * maxLen);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    out.set(tokens.subarray(r * maxLen, (r + 1) * maxLen), k * maxLen);
  }
  return out;
}
