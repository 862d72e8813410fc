import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './paths.js';

const corpus = path.join(repoRoot, 'node_modules', '@stdlib', 'datasets-spam-assassin', 'data');

/** The first `n` messages of a SpamAssassin corpus folder (by file name), as (id, raw email). */
export async function corpusMessages(group: string, n: number): Promise<Array<{ id: string; text: string }>> {
  const names = (await readdir(path.join(corpus, group))).filter((f) => f.endsWith('.json')).sort().slice(0, n);
  return Promise.all(
    names.map(async (name) => {
      const json = JSON.parse(await readFile(path.join(corpus, group, name), 'utf8')) as { id: string; text: string };
      return { id: `${group}/${json.id}`, text: json.text };
    }),
  );
}
