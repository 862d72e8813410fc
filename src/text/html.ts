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

// Compiled once: html-to-text resolves its selectors per `compile`, which is the costly
// part when it runs on every message.
const convert = compile({
  wordwrap: false,
  // Mail HTML can be megabytes of markup around a few lines of text; beyond this the
  // text adds nothing to a 100-token sequence, and parsing time grows linearly.
  limits: { maxInputLength: 1_000_000 },
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

/** Converts HTML (a document or a fragment) to plain text, decoding entities. */
export function htmlToPlainText(html: string): string {
  return convert(html);
}
