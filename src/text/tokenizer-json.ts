/**
 * Tokenizer persistence: our own versioned JSON, and the JSON Keras'
 * `Tokenizer.to_json()` writes (tf_keras 2.21), in which `word_counts`, `word_docs`,
 * `index_docs`, `index_word` and `word_index` are JSON-encoded strings inside `config`.
 * Both readers validate everything they use and name the bad field in a TokenizerError.
 */
import { TokenizerError } from '../errors.js';
import { jsonObjectEntries } from './json-entries.js';
import {
  TOKENIZER_DEFAULTS,
  describe,
  resolveTokenizerConfig,
  type TokenizerConfig,
  type TokenizerOptions,
} from './tokenizer-config.js';

/** Everything a tokenizer is: settings, fitted counts, and the word index in use. */
export interface TokenizerState {
  config: TokenizerConfig;
  frozen: boolean;
  documentCount: number;
  /** Word counts in first-seen order (Keras `word_counts`, an OrderedDict). */
  wordCounts: [string, number][];
  /** Word → id, in Keras' insertion order (by count, descending; ties first-seen). */
  wordIndex: [string, number][];
}

export const TOKENIZER_JSON_FORMAT = 'textstream-tokenizer';
export const TOKENIZER_JSON_VERSION = 1;

/** Our saved-tokenizer format (version 1). */
export interface TokenizerJSON {
  format: typeof TOKENIZER_JSON_FORMAT;
  version: typeof TOKENIZER_JSON_VERSION;
  frozen: boolean;
  config: TokenizerConfig;
  documentCount: number;
  wordCounts: [string, number][];
  wordIndex: [string, number][];
}

/** Padding settings that Keras' JSON does not carry (pad_sequences is not part of it). */
export type KerasLoadOptions = Pick<TokenizerOptions, 'maxLen' | 'padding' | 'truncating'>;

export function stateToJSON(state: TokenizerState): TokenizerJSON {
  return {
    format: TOKENIZER_JSON_FORMAT,
    version: TOKENIZER_JSON_VERSION,
    frozen: state.frozen,
    config: { ...state.config },
    documentCount: state.documentCount,
    wordCounts: state.wordCounts,
    wordIndex: state.wordIndex,
  };
}

/** Reads our format, from its JSON text or an already parsed value. */
export function stateFromJSON(input: unknown): TokenizerState {
  const where = 'tokenizer JSON';
  const json = typeof input === 'string' ? parseJson(input, where) : input;
  const top = asObject(json, where, '(top level)');
  if (top.format !== TOKENIZER_JSON_FORMAT) {
    throw fieldError(where, 'format', `must be "${TOKENIZER_JSON_FORMAT}"`, top.format);
  }
  if (top.version !== TOKENIZER_JSON_VERSION) {
    throw fieldError(where, 'version', `must be ${TOKENIZER_JSON_VERSION} (the only version this build reads)`, top.version);
  }
  const config = asObject(top.config, where, 'config');
  for (const key of Object.keys(TOKENIZER_DEFAULTS)) {
    if (!(key in config)) throw new TokenizerError(`${where}: config.${key} is missing`);
  }
  if (typeof top.frozen !== 'boolean') throw fieldError(where, 'frozen', 'must be a boolean', top.frozen);
  return {
    config: resolveTokenizerConfig(config, `${where}: config`),
    frozen: top.frozen,
    documentCount: asCount(top.documentCount, where, 'documentCount'),
    wordCounts: asPairs(top.wordCounts, where, 'wordCounts', 0),
    wordIndex: asPairs(top.wordIndex, where, 'wordIndex', 1),
  };
}

// Tokenizer(**config) rejects unknown arguments, and so do we: an option we ignored could
// change the sequences. `analyzer` is never serialised by Keras.
const KERAS_CONFIG_KEYS = new Set([
  'num_words', 'filters', 'lower', 'split', 'char_level', 'oov_token', 'document_count',
  'word_counts', 'word_docs', 'index_docs', 'index_word', 'word_index',
]);

/** Reads what Keras' `tokenizer.to_json()` writes. The result is frozen. */
export function stateFromKerasJSON(text: string, options: KerasLoadOptions = {}): TokenizerState {
  const where = 'Keras tokenizer JSON';
  if (typeof text !== 'string') throw new TokenizerError(`${where} must be a string, got ${describe(text)}`);
  const top = asObject(parseJson(text, where), where, '(top level)');
  if (top.class_name !== undefined && top.class_name !== 'Tokenizer') {
    throw fieldError(where, 'class_name', 'must be "Tokenizer"', top.class_name);
  }
  const cfg = asObject(top.config, where, 'config');
  for (const key of Object.keys(cfg)) {
    if (!KERAS_CONFIG_KEYS.has(key)) throw new TokenizerError(`${where}: config.${key} is not a Keras Tokenizer argument`);
  }
  // Keras tests `if num_words` only: 0 and None both mean "no limit".
  const numWords = cfg.num_words ?? null;
  if (numWords !== null && !(Number.isInteger(numWords) && (numWords as number) >= 0)) {
    throw fieldError(where, 'config.num_words', 'must be a non-negative integer or null', numWords);
  }
  if (cfg.char_level !== undefined && cfg.char_level !== false) {
    throw fieldError(where, 'config.char_level', 'must be false (character-level tokenizers are not supported)', cfg.char_level);
  }
  const wordCounts = kerasDict(cfg.word_counts, where, 'config.word_counts', 0);
  const wordIndex = kerasDict(cfg.word_index, where, 'config.word_index', 1);
  // Unused here, but Keras' tokenizer_from_json needs them: a file without them is broken.
  for (const field of ['word_docs', 'index_docs', 'index_word'] as const) kerasDict(cfg[field], where, `config.${field}`, null);
  const config = resolveTokenizerConfig(
    {
      numWords: numWords === 0 ? null : (numWords as number | null),
      filters: requireType(cfg.filters, 'string', where, 'config.filters') as string,
      lower: requireType(cfg.lower, 'boolean', where, 'config.lower') as boolean,
      split: requireType(cfg.split, 'string', where, 'config.split') as string,
      oovToken: cfg.oov_token === null || cfg.oov_token === undefined ? null : (requireType(cfg.oov_token, 'string', where, 'config.oov_token') as string),
      ...options,
    },
    `${where}: config`,
  );
  return {
    config,
    frozen: true,
    documentCount: cfg.document_count === undefined ? 0 : asCount(cfg.document_count, where, 'config.document_count'),
    wordCounts,
    wordIndex,
  };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new TokenizerError(`${where} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function fieldError(where: string, field: string, rule: string, got: unknown): TokenizerError {
  return new TokenizerError(`${where}: ${field} ${rule}, got ${describe(got)}`);
}

function asObject(x: unknown, where: string, field: string): Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw fieldError(where, field, 'must be an object', x);
  return x as Record<string, unknown>;
}

function requireType(x: unknown, type: 'string' | 'boolean', where: string, field: string): unknown {
  if (typeof x !== type) throw fieldError(where, field, `must be a ${type}`, x);
  return x;
}

function asCount(x: unknown, where: string, field: string, min = 0): number {
  if (!Number.isSafeInteger(x) || (x as number) < min) {
    throw fieldError(where, field, min === 0 ? 'must be a non-negative integer' : 'must be a positive integer', x);
  }
  return x as number;
}

/** `[[word, n], ...]` with unique words and integer n >= min. */
function asPairs(x: unknown, where: string, field: string, min: number): [string, number][] {
  if (!Array.isArray(x)) throw fieldError(where, field, 'must be an array of [word, number] pairs', x);
  const seen = new Set<string>();
  x.forEach((pair: unknown, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
      throw fieldError(where, `${field}[${i}]`, 'must be a [word, number] pair', pair);
    }
    asCount(pair[1], where, `${field}[${i}][1]`, min);
    if (seen.has(pair[0])) throw fieldError(where, `${field}[${i}][0]`, 'is a duplicate word', pair[0]);
    seen.add(pair[0]);
  });
  return x as [string, number][];
}

/** A Keras dict field: a string holding a JSON object; values checked when `min` is set. */
function kerasDict(x: unknown, where: string, field: string, min: number | null): [string, number][] {
  if (typeof x !== 'string') throw fieldError(where, field, 'must be a JSON-encoded object (a string)', x);
  const entries = jsonObjectEntries(x);
  if (entries === null) throw fieldError(where, field, 'must hold a JSON object', x);
  if (min !== null) for (const [k, v] of entries) asCount(v, where, `${field}[${JSON.stringify(k)}]`, min);
  return entries as [string, number][];
}

/**
 * What tf_keras' `Tokenizer.to_json()` writes: settings plus the word dictionaries as
 * JSON-encoded strings. We keep no per-document counts (`word_docs`, `index_docs`; only
 * `sequences_to_matrix(mode='tfidf')` reads them), so those are written empty — Keras'
 * `tokenizer_from_json` needs the keys to exist.
 */
export function stateToKerasJSON(state: TokenizerState): string {
  const { config } = state;
  const object = (pairs: [string | number, string | number][]): string => {
    // Built by hand so integer-looking keys keep their order (a JS object would sort them).
    return `{${pairs.map(([k, v]) => `${JSON.stringify(String(k))}: ${JSON.stringify(v)}`).join(', ')}}`;
  };
  return JSON.stringify({
    class_name: 'Tokenizer',
    config: {
      num_words: config.numWords,
      filters: config.filters,
      lower: config.lower,
      split: config.split,
      char_level: false,
      oov_token: config.oovToken,
      document_count: state.documentCount,
      word_counts: object(state.wordCounts),
      word_docs: '{}',
      index_docs: '{}',
      index_word: object(state.wordIndex.map(([word, id]) => [id, word])),
      word_index: object(state.wordIndex),
    },
  });
}
