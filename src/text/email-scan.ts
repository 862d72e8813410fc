/**
 * E-mail addresses replaced by a scan from each '@' instead of a regular expression: the
 * pattern (normalize.ts' EMAIL, kept as the definition and as this scan's test reference)
 * is tried at every position of a text, which made it the clean stage's costliest regular
 * expression; '@' is rare, so starting from it does a fraction of the work. The result is
 * the pattern's, match for match (test/text/email-scan.test.ts compares them).
 */

// [a-z0-9._%+-] under the pattern's `i` flag (without `u`, only ASCII letters fold).
const LOCAL = new Uint8Array(128);
// [a-z0-9-], likewise.
const DOMAIN = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-') {
  LOCAL[c.charCodeAt(0)] = 1;
  DOMAIN[c.charCodeAt(0)] = 1;
}
for (const c of '._%+') LOCAL[c.charCodeAt(0)] = 1;

const isLocal = (c: number): boolean => c < 128 && LOCAL[c] === 1;
// NaN past the end of the text is not a domain character.
const isDomain = (c: number): boolean => c < 128 && DOMAIN[c] === 1;

/**
 * `text.replace(EMAIL, replacement)` for EMAIL = /(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+/gi:
 * a match is the whole run of local-part characters before an '@' (the lookbehind allows
 * no shorter one), then a label and at least one '.label', each as long as it goes.
 */
export function replaceEmailAddresses(text: string, replacement: string): string {
  let at = text.indexOf('@');
  if (at === -1) return text;
  let out = '';
  // Copied up to here; also where the previous match ended.
  let copied = 0;
  while (at !== -1) {
    let start = at;
    while (start > 0 && isLocal(text.charCodeAt(start - 1))) start--;
    // A run reaching back into the previous match has no start the lookbehind allows.
    const end = start < at && start >= copied ? domainEnd(text, at + 1) : -1;
    if (end === -1) {
      at = text.indexOf('@', at + 1);
      continue;
    }
    out += text.slice(copied, start) + replacement;
    copied = end;
    at = text.indexOf('@', end);
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** End of `label(.label)+` starting at `from`, or -1 if there is not at least one '.label'. */
function domainEnd(text: string, from: number): number {
  let i = from;
  while (isDomain(text.charCodeAt(i))) i++;
  if (i === from) return -1;
  let end = -1;
  while (text.charCodeAt(i) === 46 && isDomain(text.charCodeAt(i + 1))) {
    i += 2;
    while (isDomain(text.charCodeAt(i))) i++;
    end = i;
  }
  return end;
}
