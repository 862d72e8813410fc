/**
 * Keras' `pad_sequences` (tf_keras 2.21, `tf_keras/src/utils/data_utils.py`): sequences
 * longer than `maxLen` lose their start ('pre') or end ('post'); shorter ones are filled
 * with `value` before ('pre') or after ('post'). Output is int32, as Keras' default dtype.
 */
import { TokenizerError } from '../errors.js';

export const PadModes = { PRE: 'pre', POST: 'post' } as const;
export type PadMode = (typeof PadModes)[keyof typeof PadModes];

export interface PadOptions {
  padding?: PadMode;
  truncating?: PadMode;
  /** Fill value; an int32, as the output is Int32Array. */
  value?: number;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export function isPadMode(x: unknown): x is PadMode {
  return x === PadModes.PRE || x === PadModes.POST;
}

/** Pads/truncates one sequence to exactly `maxLen` ids, into `out` when given. */
export function padSequence(
  seq: ArrayLike<number>,
  maxLen: number,
  options: PadOptions = {},
  into?: Int32Array,
): Int32Array {
  const { padding = 'pre', truncating = 'pre', value = 0 } = options;
  checkPadArgs(maxLen, padding, truncating, value);
  const out = into ?? new Int32Array(maxLen);
  if (out.length !== maxLen) throw new TokenizerError(`out has length ${out.length}, expected maxLen ${maxLen}`);
  const n = Math.min(seq.length, maxLen);
  // Keras keeps the last maxLen ids for 'pre' truncation, the first ones for 'post'.
  const from = truncating === 'pre' ? seq.length - n : 0;
  const at = padding === 'pre' ? maxLen - n : 0;
  out.fill(value, 0, at);
  for (let i = 0; i < n; i++) out[at + i] = seq[from + i]!;
  out.fill(value, at + n);
  return out;
}

/**
 * `pad_sequences(seqs, maxlen, padding, truncating, value)`: one Int32Array row per
 * sequence. Without `maxLen` (null/undefined), rows are as long as the longest sequence.
 */
export function padSequences(
  seqs: readonly ArrayLike<number>[],
  maxLen: number | null = null,
  options: PadOptions = {},
): Int32Array[] {
  const len = maxLen ?? seqs.reduce((m, s) => Math.max(m, s.length), 0);
  return seqs.map((s) => padSequence(s, len, options));
}

function checkPadArgs(maxLen: number, padding: unknown, truncating: unknown, value: number): void {
  // maxLen 0 only arises from "pad to the longest" over empty sequences; Keras gives (n, 0).
  if (!Number.isInteger(maxLen) || maxLen < 0) throw new TokenizerError(`maxLen must be a non-negative integer, got ${maxLen}`);
  if (!isPadMode(padding)) throw new TokenizerError(`padding must be 'pre' or 'post', got ${String(padding)}`);
  if (!isPadMode(truncating)) throw new TokenizerError(`truncating must be 'pre' or 'post', got ${String(truncating)}`);
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new TokenizerError(`value must be an int32, got ${value}`);
  }
}
