/**
 * Keras' `text_to_word_sequence`, exactly: lower-case (Python `str.lower`), replace every
 * filter character by the split string, split on the split string, drop empty strings.
 * Source checked: tf_keras 2.21, `tf_keras/src/preprocessing/text.py`.
 */
import { TokenizerError } from '../errors.js';
import { pythonLower } from './lowercase.js';

/** Keras' default filters: ASCII punctuation except `'`, plus tab and newline (not '\r'). */
export const KERAS_DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n';

export interface WordSplitOptions {
  /** Characters replaced by `split` before splitting. */
  filters: string;
  /** Lower-case first, as Python's `str.lower()` does. */
  lower: boolean;
  /** Separator; any non-empty string, like Python's `str.split(sep)`. */
  split: string;
}

/**
 * Compiled splitting options. With a one-character separator and single-code-unit filters
 * (the Keras defaults, and nearly every real configuration) splitting is one pass over the
 * string with a lookup table; otherwise it follows Python's translate-then-split
 * literally, which is slower but exact for any separator.
 */
export class WordSplitter {
  readonly #lower: boolean;
  /** 1 for every code unit that ends a word; null when the literal path is needed. */
  readonly #isBreak: Uint8Array | null;
  readonly #filterSet: ReadonlySet<string>;
  readonly #split: string;

  constructor(options: WordSplitOptions) {
    const { filters, lower, split } = options;
    if (split.length === 0) throw new TokenizerError('split must be a non-empty string (Python: "empty separator")');
    this.#lower = lower;
    this.#split = split;
    const filterChars = [...filters];
    this.#filterSet = new Set(filterChars);
    if (isSingleUnit(split) && filterChars.every(isSingleUnit)) {
      const isBreak = new Uint8Array(0x10000);
      for (const c of filterChars) isBreak[c.charCodeAt(0)] = 1;
      isBreak[split.charCodeAt(0)] = 1;
      this.#isBreak = isBreak;
    } else {
      this.#isBreak = null;
    }
  }

  /** The words of `text`, in order. */
  split(text: string): string[] {
    const words: string[] = [];
    this.scan(text, false, (w) => {
      words.push(w);
      return true;
    });
    return words;
  }

  /**
   * Visits the words of `text` first to last, or last to first when `fromEnd`, until
   * `visit` returns false. Lets 'pre' truncation read only a long text's last words.
   */
  scan(text: string, fromEnd: boolean, visit: (word: string) => boolean): void {
    const s = this.#lower ? pythonLower(text) : text;
    const isBreak = this.#isBreak;
    if (isBreak === null) {
      const words = this.#literalSplit(s);
      if (fromEnd) words.reverse();
      for (const w of words) if (!visit(w)) return;
      return;
    }
    if (fromEnd) {
      let end = -1;
      for (let i = s.length - 1; i >= 0; i--) {
        if (isBreak[s.charCodeAt(i)] === 1) {
          if (end >= 0) {
            if (!visit(s.slice(i + 1, end + 1))) return;
            end = -1;
          }
        } else if (end < 0) {
          end = i;
        }
      }
      if (end >= 0) visit(s.slice(0, end + 1));
      return;
    }
    let start = -1;
    for (let i = 0; i < s.length; i++) {
      if (isBreak[s.charCodeAt(i)] === 1) {
        if (start >= 0) {
          if (!visit(s.slice(start, i))) return;
          start = -1;
        }
      } else if (start < 0) {
        start = i;
      }
    }
    if (start >= 0) visit(s.slice(start));
  }

  #literalSplit(lowered: string): string[] {
    let translated = '';
    // By code point, like Python's str.translate.
    for (const c of lowered) translated += this.#filterSet.has(c) ? this.#split : c;
    return translated.split(this.#split).filter((w) => w !== '');
  }
}

function isSingleUnit(c: string): boolean {
  const u = c.charCodeAt(0);
  return c.length === 1 && (u < 0xd800 || u > 0xdfff);
}

/** `keras.preprocessing.text.text_to_word_sequence` with Keras' defaults. */
export function textToWordSequence(text: string, options: Partial<WordSplitOptions> = {}): string[] {
  return new WordSplitter({ filters: KERAS_DEFAULT_FILTERS, lower: true, split: ' ', ...options }).split(text);
}
