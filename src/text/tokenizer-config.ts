/**
 * Tokenizer settings: Keras' Tokenizer arguments plus the padding the pipeline applies.
 * Validated once, with errors that name the bad field.
 */
import { PIPELINE_DEFAULTS } from '../config/schema.js';
import { TokenizerError } from '../errors.js';
import { isPadMode, type PadMode } from './pad.js';
import { KERAS_DEFAULT_FILTERS } from './word-sequence.js';

export interface TokenizerConfig {
  /** Keras `num_words`: only ids < numWords are emitted; null keeps every word. */
  numWords: number | null;
  /** Keras `filters`: characters replaced by `split` before splitting. */
  filters: string;
  /** Keras `lower`: lower-case with Python's `str.lower()` semantics. */
  lower: boolean;
  /** Keras `split`: the word separator (non-empty). */
  split: string;
  /** Keras `oov_token`: when set, it takes index 1 and stands in for unknown words. */
  oovToken: string | null;
  /** Length of every encoded sequence (the model's input length). */
  maxLen: number;
  /** `pad_sequences` padding side. */
  padding: PadMode;
  /** `pad_sequences` truncating side. */
  truncating: PadMode;
}

export type TokenizerOptions = Partial<TokenizerConfig>;

/** Keras' Tokenizer defaults, and the pipeline's input length (tokenizer.maxLen in config/schema.ts). */
export const TOKENIZER_DEFAULTS: Readonly<TokenizerConfig> = Object.freeze({
  numWords: null,
  filters: KERAS_DEFAULT_FILTERS,
  lower: true,
  split: ' ',
  oovToken: null,
  maxLen: PIPELINE_DEFAULTS.tokenizer.maxLen,
  padding: 'pre',
  truncating: 'pre',
});

/** Merges defaults and validates; `where` prefixes field names in errors. */
export function resolveTokenizerConfig(options: TokenizerOptions, where = 'tokenizer'): TokenizerConfig {
  const c: TokenizerConfig = { ...TOKENIZER_DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  const bad = (field: string, expected: string, got: unknown): TokenizerError =>
    new TokenizerError(`${where}.${field} must be ${expected}, got ${describe(got)}`);
  if (c.numWords !== null && !(Number.isInteger(c.numWords) && c.numWords > 0)) {
    throw bad('numWords', 'a positive integer or null', c.numWords);
  }
  if (typeof c.filters !== 'string') throw bad('filters', 'a string', c.filters);
  if (typeof c.lower !== 'boolean') throw bad('lower', 'a boolean', c.lower);
  if (typeof c.split !== 'string' || c.split === '') throw bad('split', 'a non-empty string', c.split);
  if (c.oovToken !== null && typeof c.oovToken !== 'string') throw bad('oovToken', 'a string or null', c.oovToken);
  if (!(Number.isInteger(c.maxLen) && c.maxLen > 0)) throw bad('maxLen', 'a positive integer', c.maxLen);
  if (!isPadMode(c.padding)) throw bad('padding', "'pre' or 'post'", c.padding);
  if (!isPadMode(c.truncating)) throw bad('truncating', "'pre' or 'post'", c.truncating);
  const known = new Set(Object.keys(TOKENIZER_DEFAULTS));
  for (const k of Object.keys(options)) if (!known.has(k)) throw new TokenizerError(`${where}.${k} is not a tokenizer option`);
  return c;
}

/** A short description of a bad value for error messages. */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  switch (typeof x) {
    case 'string':
      return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof x} ${x}`;
    case 'undefined':
      return 'undefined';
    default:
      return `a value of type ${typeof x}`;
  }
}
