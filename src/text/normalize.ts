/**
 * Text normalisation shared by every text source: placeholders for things whose exact
 * spelling carries no signal (a URL, an address, a number), Unicode compatibility forms,
 * lower case and single spaces. The output is what the tokenizer sees.
 */
import { replaceEmailAddresses } from './email-scan.js';
import { pythonLower } from './lowercase.js';

/** Placeholder words: letters only, so Keras' default filters and lower-casing keep them. */
export const Placeholders = {
  URL: 'xxurl',
  EMAIL: 'xxemail',
  NUMBER: 'xxnum',
} as const;

// A scheme or a leading `www.`, up to whitespace or a character that delimits URLs in
// mail and running text (quotes, angle and square brackets).
const URL = /\b(?:(?:https?|ftp):\/\/|www\.)[^\s<>"'`[\]]+/gi;
// The lookbehind makes matches start only at the beginning of a run of local-part
// characters; without it a long run with no '@' is rescanned from every position (O(n²):
// a 3 MB header line took minutes). normalizeText runs it as a scan from each '@'
// (email-scan.ts); this is its definition.
export const EMAIL = /(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+/gi;
// Standalone numbers with optional grouping/decimal separators (1,000.00, 10:30,
// 127.0.0.1). Digits that are part of a word (mp3, y2k, 3d) stay: they are vocabulary.
const NUMBER = /(?<![\p{L}\p{N}_])[0-9]+(?:[.,:][0-9]+)*(?![\p{L}\p{N}_])/gu;
// Format characters (Unicode category Cf) are invisible: zero-width spaces and joiners,
// soft hyphens, byte order marks, and the bidirectional marks, embeddings, overrides and
// isolates (U+200E/F, U+202A–E, U+2066–9) that make text display in another order than it
// is stored. Spam uses them to break words apart ("V\u200Bi\u200Ba\u200Bg\u200Br\u200Ba") or
// to disguise them; they are removed, so the word comes back together, and never become
// part of a token. (Joiners in Persian or Indic spellings go too; the letters stay.)
const INVISIBLE = /\p{Cf}/gu;
// Control characters other than whitespace become spaces so they cannot glue words.
const CONTROL = /[\x00-\x08\x0B\x0E-\x1F\x7F-\x9F]/g;
const WHITESPACE = /\s+/g;
const NON_ASCII = /[^\x00-\x7f]/;
const WWW = /www\./i;

/**
 * NFKC, format characters removed, other control characters (NUL, C0, DEL, C1) turned
 * into spaces, placeholders for URLs, e-mail addresses and numbers, lower case,
 * whitespace collapsed to single spaces, trimmed. Idempotent.
 */
export function normalizeText(text: string): string {
  // ASCII is already NFKC and has no format characters; skipping saves a copy and a scan.
  const ascii = !NON_ASCII.test(text);
  let out = ascii ? text : text.normalize('NFKC').replace(INVISIBLE, '');
  out = out.replace(CONTROL, ' ');
  // URLs first: they contain addresses (user@host) and numbers; addresses contain numbers.
  // The URL pattern runs only where its anchor occurs; addresses are found from each '@'.
  if (out.includes('://') || WWW.test(out)) out = out.replace(URL, ` ${Placeholders.URL} `);
  out = replaceEmailAddresses(out, ` ${Placeholders.EMAIL} `);
  out = out.replace(NUMBER, ` ${Placeholders.NUMBER} `);
  // Python's str.lower(), as the Keras tokenizer lower-cases: one rule, not two that differ.
  return pythonLower(out).replace(WHITESPACE, ' ').trim();
}
