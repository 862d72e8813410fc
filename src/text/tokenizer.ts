/**
 * A Keras-compatible tokenizer: `keras.preprocessing.text.Tokenizer` (fit_on_texts,
 * texts_to_sequences, num_words, oov_token) plus `pad_sequences`, with the same results
 * token for token (tested against tf_keras 2.21 itself).
 *
 * The pipeline fits it on a bootstrap window and then freezes it: embedding rows are
 * indexed by word id, so ids must not move while the model trains. A frozen tokenizer
 * refuses to fit; loaded tokenizers (our JSON or Keras' `to_json()`) come back frozen
 * when they were saved frozen, and Keras' always do.
 */
import { TokenizerError } from '../errors.js';
import { resolveTokenizerConfig, type TokenizerConfig, type TokenizerOptions } from './tokenizer-config.js';
import {
  stateFromJSON,
  stateFromKerasJSON,
  stateToJSON,
  type KerasLoadOptions,
  type TokenizerJSON,
  type TokenizerState,
} from './tokenizer-json.js';
import { WordSplitter } from './word-sequence.js';

export class Tokenizer {
  readonly config: Readonly<TokenizerConfig>;
  readonly #split: WordSplitter;
  #frozen = false;
  #documentCount = 0;
  /** Keras `word_counts`: insertion order is first-seen order, which breaks count ties. */
  readonly #counts = new Map<string, number>();
  /** Keras `word_index`; rebuilt from the counts after fitting, as Keras does. */
  #wordIndex = new Map<string, number>();
  /**
   * Set by fitting. It starts set, so an unfitted tokenizer acts as one fitted on nothing:
   * its index holds just the OOV token (Keras' would be empty and emit None for unknown
   * words with an OOV token, which no model can take).
   */
  #indexStale = true;
  /** word → emitted id, already restricted to ids < numWords; null when stale. */
  #lookup: Map<string, number> | null = null;
  /** The id unknown (and cut-off) words become; -1 without an OOV token. */
  #oovId = -1;
  /** Reused by `encode`; single-threaded, and never handed out. */
  readonly #scratch: Int32Array;

  constructor(options: TokenizerOptions = {}) {
    this.config = Object.freeze(resolveTokenizerConfig(options));
    this.#split = new WordSplitter(this.config);
    this.#scratch = new Int32Array(this.config.maxLen);
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  /** Number of texts fitted on (Keras `document_count`). */
  get documentCount(): number {
    return this.#documentCount;
  }

  /** Word counts in first-seen order (Keras `word_counts`). */
  get wordCounts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Word → id, 1-based, by count descending, ties in first-seen order (Keras `word_index`). */
  get wordIndex(): ReadonlyMap<string, number> {
    this.#ensureIndex();
    return this.#wordIndex;
  }

  /** Adds the texts' words to the vocabulary (Keras `fit_on_texts`). */
  fitOnTexts(texts: Iterable<string>): this {
    if (this.#frozen) {
      throw new TokenizerError('tokenizer is frozen: word ids must not change once the model uses them');
    }
    rejectSingleString(texts, 'fitOnTexts');
    const counts = this.#counts;
    for (const text of texts) {
      if (typeof text !== 'string') throw new TokenizerError(`fitOnTexts expects strings, got ${typeof text}`);
      this.#documentCount++;
      for (const w of this.#split.split(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    this.#indexStale = true;
    this.#lookup = null;
    return this;
  }

  /** Fixes the vocabulary: from now on fitting throws and ids never change. Idempotent. */
  freeze(): this {
    this.#ensureLookup();
    this.#frozen = true;
    return this;
  }

  /** Word ids of one text (Keras `texts_to_sequences` for one text). */
  textToSequence(text: string): number[] {
    const lookup = this.#ensureLookup();
    const oov = this.#oovId;
    const ids: number[] = [];
    for (const w of this.#split.split(text)) {
      const id = lookup.get(w);
      if (id !== undefined) ids.push(id);
      else if (oov >= 0) ids.push(oov);
    }
    return ids;
  }

  /** Keras `texts_to_sequences`. */
  textsToSequences(texts: Iterable<string>): number[][] {
    rejectSingleString(texts, 'textsToSequences');
    const out: number[][] = [];
    for (const text of texts) out.push(this.textToSequence(text));
    return out;
  }

  /**
   * The model input for one text: exactly `maxLen` int32 ids, padded and truncated like
   * `pad_sequences(..., maxlen=maxLen, padding, truncating)`. Writes into `out` when given.
   */
  encode(text: string, out: Int32Array = new Int32Array(this.config.maxLen)): Int32Array {
    const { maxLen, padding, truncating } = this.config;
    if (out.length !== maxLen) throw new TokenizerError(`out has length ${out.length}, expected maxLen ${maxLen}`);
    const lookup = this.#ensureLookup();
    const oov = this.#oovId;
    // Only maxLen ids survive truncation, so read words from the kept end and stop early:
    // long mails cost the same as short ones. Same result as padSequence(textToSequence).
    const fromEnd = truncating === 'pre';
    const kept = this.#scratch;
    let n = 0;
    this.#split.scan(text, fromEnd, (w) => {
      const id = lookup.get(w) ?? oov;
      if (id >= 0) kept[n++] = id;
      return n < maxLen;
    });
    const at = padding === 'pre' ? maxLen - n : 0;
    out.fill(0, 0, at);
    for (let i = 0; i < n; i++) out[at + i] = kept[fromEnd ? n - 1 - i : i]!;
    out.fill(0, at + n);
    return out;
  }

  toJSON(): TokenizerJSON {
    return stateToJSON(this.#state());
  }

  /** Restores a tokenizer saved with `toJSON` (text or parsed value). */
  static fromJSON(json: string | TokenizerJSON): Tokenizer {
    return Tokenizer.#fromState(stateFromJSON(json));
  }

  /**
   * Loads the string Keras' `tokenizer.to_json()` writes. Keras' JSON has no padding
   * settings; pass them here (defaults: maxLen 100, 'pre'/'pre'). The result is frozen.
   */
  static fromKerasJSON(json: string, options: KerasLoadOptions = {}): Tokenizer {
    return Tokenizer.#fromState(stateFromKerasJSON(json, options));
  }

  static #fromState(state: TokenizerState): Tokenizer {
    const t = new Tokenizer(state.config);
    t.#documentCount = state.documentCount;
    for (const [w, n] of state.wordCounts) t.#counts.set(w, n);
    // The saved index is authoritative: Keras users sometimes set word_index by hand.
    t.#wordIndex = new Map(state.wordIndex);
    t.#indexStale = false;
    if (state.frozen) t.freeze();
    return t;
  }

  #state(): TokenizerState {
    this.#ensureIndex();
    return {
      config: { ...this.config },
      frozen: this.#frozen,
      documentCount: this.#documentCount,
      wordCounts: [...this.#counts],
      wordIndex: [...this.#wordIndex],
    };
  }

  #ensureIndex(): void {
    if (!this.#indexStale) return;
    // Python's list.sort(reverse=True) is stable, so ties keep first-seen order; so is
    // Array.prototype.sort (ES2019).
    const sorted = [...this.#counts].sort((a, b) => b[1] - a[1]);
    const vocab = this.config.oovToken === null ? [] : [this.config.oovToken];
    for (const [w] of sorted) vocab.push(w);
    // dict(zip(vocab, range(1, ...))): if the OOV token is also a fitted word, the later
    // id overwrites the earlier one while the key keeps its first position, as a Map does.
    const index = new Map<string, number>();
    vocab.forEach((w, i) => index.set(w, i + 1));
    this.#wordIndex = index;
    this.#indexStale = false;
  }

  #ensureLookup(): Map<string, number> {
    if (this.#lookup !== null) return this.#lookup;
    this.#ensureIndex();
    const { numWords, oovToken } = this.config;
    // Keras: a known word with id >= num_words becomes the OOV id (or is dropped), exactly
    // like an unknown word, so only ids below num_words need to be looked up.
    const lookup = new Map<string, number>();
    for (const [w, id] of this.#wordIndex) if (numWords === null || id < numWords) lookup.set(w, id);
    // Keras takes word_index[oov_token] without checking it against num_words.
    this.#oovId = oovToken === null ? -1 : (this.#wordIndex.get(oovToken) ?? -1);
    this.#lookup = lookup;
    return lookup;
  }
}

/** A string is an Iterable<string> of characters; fitting on one is always a mistake. */
function rejectSingleString(texts: Iterable<string>, method: string): void {
  if (typeof texts === 'string') throw new TokenizerError(`${method} expects a list of texts, got a single string`);
}
