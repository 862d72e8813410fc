/**
 * Reads a JSON object's members in document order. `JSON.parse` cannot: a JS object lists
 * integer-like keys ("2002", "10") first, in numeric order, and Keras vocabularies are full
 * of such words, while the order of `word_counts` is Keras' first-seen order.
 */

/**
 * The `[key, value]` members of the top-level JSON object in `text`, in document order;
 * values are parsed with `JSON.parse`. Returns null when `text` is not a JSON object.
 */
export function jsonObjectEntries(text: string): [string, unknown][] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const obj = parsed as Record<string, unknown>;
  // Valid JSON is known from here on, so a scan for the top-level keys is enough: walk
  // the text, skipping over strings and nested values, and take each key at depth 1.
  const entries: [string, unknown][] = [];
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        // With duplicate keys JSON.parse keeps the last value at the first position.
        if (!seen.has(key)) {
          seen.add(key);
          entries.push([key, obj[key]]);
        }
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return entries;
}

/** Index of the closing quote of the JSON string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  return text.length - 1;
}
