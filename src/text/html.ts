/**
 * HTML → plain text for cleaning. Spam is often HTML-only, and many "text/plain" parts
 * are really HTML, so the cleaner sniffs for markup instead of trusting content types.
 */
import { compile } from 'html-to-text';

// Tag names seen in mail bodies. Listing them (instead of matching any `<word`) keeps
// plain text such as `<john@example.com>` or `a <b` comparisons from being parsed as HTML.
const HTML_TAG =
  /<(?:!doctype|!--|\/?(?:html|head|body|div|p|br|span|font|table|tbody|thead|tr|td|th|a|img|b|i|u|s|center|h[1-6]|ul|ol|li|style|script|meta|title|strong|em|hr|blockquote|pre|form|input|map|area|base|link|o:p)(?=[\s>/]))/i;
const HTML_ENTITY = /&(?:[a-z][a-z0-9]{1,7}|#[0-9]{1,7}|#x[0-9a-f]{1,6});/i;

/** True when the text contains a known HTML tag or an HTML entity. */
export function looksLikeHtml(text: string): boolean {
  // Cheap pre-check: without '<' or '&' there can be neither tags nor entities.
  if (text.indexOf('<') === -1 && text.indexOf('&') === -1) return false;
  return HTML_TAG.test(text) || HTML_ENTITY.test(text);
}

/** What html-to-text reads at most (its `limits.maxInputLength`). */
const MAX_INPUT_CHARS = 1_000_000;

// Compiled once: html-to-text resolves its selectors per `compile`, which is the costly
// part when it runs on every message.
const convert = compile({
  wordwrap: false,
  // Mail HTML can be megabytes of markup around a few lines of text; beyond this the
  // text adds nothing to a 100-token sequence, and parsing time grows linearly.
  limits: { maxInputLength: MAX_INPUT_CHARS },
  selectors: [
    // Keep link targets: they become `xxurl`, and link counts are a strong spam signal.
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: false } },
    // CSS and scripts are not text; by default html-to-text would print them inline.
    { selector: 'style', format: 'skip' },
    { selector: 'script', format: 'skip' },
    // Layout tables: the default data-table renderer is slow and pads cells; blocks keep
    // cell words apart, which is all the tokenizer needs.
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block', options: { leadingLineBreaks: 0, trailingLineBreaks: 0 } },
    { selector: 'th', format: 'block', options: { leadingLineBreaks: 0, trailingLineBreaks: 0 } },
    // Headings are upper-cased by default; the cleaner lower-cases anyway.
    ...(['h1', 'h2', 'h3', 'h4', 'h5', 'h6'] as const).map((selector) => ({
      selector,
      options: { uppercase: false },
    })),
  ],
});

/**
 * Documents with more start tags than this are read flat (see `flatText`), never as a
 * tree. Depth is what hurts: html-to-text formats the DOM recursively and overflows the
 * stack near 2 000 levels, and htmlparser2 keeps its open elements with `unshift`, so
 * 100 000 levels take seconds to parse (quadratic). Counting tags bounds the depth whatever
 * the markup pretends, and at 20 000 a fully nested document still parses in ≈ 0.2 s. The
 * busiest SpamAssassin message has 1 231 tags.
 */
const MAX_START_TAGS = 20_000;
// Every start tag htmlparser2 opens begins so (ASCII letters only).
const START_TAG = /<[a-z]/gi;
// Anything between '<' and '>', or a tag cut off by the end, for reading HTML flat.
const TAG_LIKE = /<[^<>]*>|<[a-z/!?][^<>]*$/gi;

/**
 * Converts HTML (a document or a fragment) to plain text, decoding entities. HTML too big
 * or too deeply nested to walk as a tree is read flat instead: tags become spaces.
 */
export function htmlToPlainText(html: string): string {
  const input = clipInput(html);
  if (countUpTo(input, START_TAG, MAX_START_TAGS + 1) > MAX_START_TAGS) return flatText(input);
  try {
    return convert(input);
  } catch (err) {
    // Fewer tags than the limit can still nest deeper than the stack allows.
    if (err instanceof RangeError) return flatText(input);
    throw err;
  }
}

/** Clipped to what `convert` reads (its `maxInputLength` would log a warning each time). */
function clipInput(html: string): string {
  if (html.length <= MAX_INPUT_CHARS) return html;
  // Not between the halves of a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(html[MAX_INPUT_CHARS - 1]!) ? MAX_INPUT_CHARS - 1 : MAX_INPUT_CHARS;
  return html.slice(0, end);
}

/** Matches of a global `pattern` in `text`, counting no further than `max`. */
function countUpTo(text: string, pattern: RegExp, max: number): number {
  const re = new RegExp(pattern.source, pattern.flags);
  let n = 0;
  while (n < max && re.exec(text) !== null) n++;
  return n;
}

/**
 * The text of HTML without its tree: tags and any other '<' become spaces (the tokenizer
 * drops '<' and '>' anyway), then html-to-text decodes the entities of what is left, which
 * has no elements to nest. Links lose their targets and scripts and styles stay in.
 */
function flatText(html: string): string {
  return convert(html.replace(TAG_LIKE, ' ').replaceAll('<', ' '));
}
