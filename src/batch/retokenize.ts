import type { RecordBatch } from 'apache-arrow';
import { InputError } from '../errors.js';
import { tokenMatrix } from './builder.js';
import { Columns } from './schema.js';

/**
 * Re-encodes, in place, every row of `batch` whose tokens are not `encode` of its
 * (cleaned) text, and returns how many there were. A scorer that swaps to a model with
 * another vocabulary uses it on the rows tokenized before the swap.
 */
export function retokenize(batch: RecordBatch, encode: (text: string, out: Int32Array) => Int32Array): number {
  const tokens = tokenMatrix(batch);
  const texts = batch.getChild(Columns.TEXT);
  if (!texts) throw new InputError('batch has no text column');
  const maxLen = batch.numRows === 0 ? 0 : tokens.length / batch.numRows;
  const encoded = new Int32Array(maxLen);
  let rewritten = 0;
  for (let row = 0; row < batch.numRows; row++) {
    encode(String(texts.get(row)), encoded);
    const current = tokens.subarray(row * maxLen, (row + 1) * maxLen);
    if (encoded.some((id, i) => id !== current[i])) {
      current.set(encoded);
      rewritten++;
    }
  }
  return rewritten;
}
