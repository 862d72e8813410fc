/**
 * Python's `str.lower()` in JavaScript. Keras lower-cases with Python, and the JS
 * `toLowerCase` only differs where the two Unicode databases differ: Node 20 (ICU 78,
 * Unicode 17) knows case pairs that Python 3.11–3.13 (Unicode 14–15.1) does not, so Python
 * leaves those letters unchanged. Everything else, including 'İ' → 'i̇' and the Greek
 * final sigma rule, was verified to agree code point by code point (see
 * test/text/keras-parity.test.ts, which re-checks the whole table against the venv's
 * Python).
 */

// Upper-case letters that got a lower-case mapping in Unicode 16.0/17.0 (a Cyrillic and a
// few Latin letters, two new scripts). Python 3.11–3.13 treats them as unassigned: not
// lowered, not cased. Found by comparing every code point (scripts in the test).
const NEWER_THAN_PYTHON =
  /[\u1C89\uA7CB\uA7CC\uA7CE\uA7D2\uA7D4\uA7DA\uA7DC\u{10D50}-\u{10D65}\u{16EA0}-\u{16EB8}]/u;
const NEWER_THAN_PYTHON_SPLIT = new RegExp(`(${NEWER_THAN_PYTHON.source})`, 'u');

// ASCII-only text (most of it) lower-cases identically everywhere.
const NON_ASCII = /[^\x00-\x7f]/;

/** Lower-cases exactly like CPython 3.11's `str.lower()`. */
export function pythonLower(text: string): string {
  const lowered = text.toLowerCase();
  if (!NON_ASCII.test(text) || !NEWER_THAN_PYTHON.test(text)) return lowered;
  // Keep those letters as they are and lower-case the pieces between them on their own:
  // to Python they are neither cased nor case-ignorable, so they also end the context of
  // the final-sigma rule, exactly like a string boundary does.
  const parts = text.split(NEWER_THAN_PYTHON_SPLIT);
  // With a capturing group, odd indices are the separators themselves.
  return parts.map((part, i) => (i % 2 === 1 ? part : part.toLowerCase())).join('');
}
