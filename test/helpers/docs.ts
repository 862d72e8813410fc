/**
 * The user documentation: README.md, the front door, then the pages of docs/ by name. Tests
 * that read the docs as a whole (runnable blocks, links) take the files from here.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './paths.js';

export interface DocFile {
  /** Relative to the repository root, with forward slashes (`docs/kafka.md`). */
  readonly file: string;
  readonly text: string;
}

/** README.md, then docs/*.md in name order: the order a walkthrough split over them runs in. */
export async function readDocs(): Promise<DocFile[]> {
  const pages = (await readdir(path.join(repoRoot, 'docs'))).filter((name) => name.endsWith('.md')).sort();
  const files = ['README.md', ...pages.map((name) => `docs/${name}`)];
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(path.join(repoRoot, file), 'utf8') })));
}
