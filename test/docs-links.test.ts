/**
 * Every relative link in README.md and docs/*.md resolves: the file (or folder) exists,
 * and a `#anchor` names a heading of its target, slugged as GitHub slugs headings. Links
 * with a scheme (https:, mailto:) are not followed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { readDocs } from './helpers/docs.js';
import { repoRoot } from './helpers/paths.js';

/**
 * A heading's anchor as GitHub makes it (github-slugger): lower case; everything but
 * letters, marks, digits, `_`, `-` and spaces dropped (so backticks, colons, commas,
 * apostrophes and dashes other than `-` go); each space becomes `-`. A link's text stands
 * for the link.
 */
export function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Fenced code blocks blanked out (lines kept, so positions still count lines). */
function withoutCodeBlocks(markdown: string): string {
  let fence: string | null = null;
  return markdown
    .split('\n')
    .map((line) => {
      const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence === null && opener) {
        fence = opener;
        return '';
      }
      if (fence !== null) {
        if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') fence = null;
        return '';
      }
      return line;
    })
    .join('\n');
}

/** The anchors of every ATX heading outside code blocks; a repeated slug gets -1, -2, … as on GitHub. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const match of withoutCodeBlocks(markdown).matchAll(/^#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const slug = githubSlug(match[1]!);
    let unique = slug;
    for (let n = 1; anchors.has(unique); n++) unique = `${slug}-${n}`;
    anchors.add(unique);
  }
  return anchors;
}

export interface MarkdownLink {
  readonly target: string;
  readonly line: number;
}

/** Inline links and images (`[text](target)`) and reference definitions, outside code; none with a scheme. */
export function relativeLinks(markdown: string): MarkdownLink[] {
  // Code spans become spaces of the same length, so `[x](y)` inside one is no link.
  const text = withoutCodeBlocks(markdown).replace(/(`+)[^`][\s\S]*?\1/g, (span) => span.replace(/[^\n]/g, ' '));
  const lineAt = (index: number): number => text.slice(0, index).split('\n').length;
  const links: MarkdownLink[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: m[1]!, line: lineAt(m.index) });
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/gm)) links.push({ target: m[1]!, line: lineAt(m.index) });
  return links.filter((link) => !/^[a-z][a-z0-9+.-]*:/i.test(link.target)).sort((a, b) => a.line - b.line);
}

/** Reads a file relative to the repository root: its text, '' for a folder, undefined when missing. */
export type ReadTarget = (file: string) => Promise<string | undefined>;

/** What is wrong with the relative links of `file` (relative to the root), one message each. */
export async function brokenLinks(file: string, markdown: string, read: ReadTarget): Promise<string[]> {
  const problems: string[] = [];
  for (const { target, line } of relativeLinks(markdown)) {
    const hash = target.indexOf('#');
    const linked = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
    const resolved = linked === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), linked));
    const where = `${file}:${line}: ${target}`;
    const content = linked === '' ? markdown : resolved.startsWith('../') ? undefined : await read(resolved);
    if (content === undefined) problems.push(`${where}: ${resolved} does not exist`);
    else if (anchor !== null && !headingAnchors(content).has(anchor)) problems.push(`${where}: ${resolved} has no heading with the anchor #${anchor}`);
  }
  return problems;
}

const readFromRepo: ReadTarget = async (file) => {
  const full = path.join(repoRoot, file);
  try {
    return (await stat(full)).isDirectory() ? '' : await readFile(full, 'utf8');
  } catch {
    return undefined;
  }
};

test('should slug headings as GitHub does', () => {
  assert.equal(githubSlug('What a worker guarantees'), 'what-a-worker-guarantees');
  assert.equal(githubSlug('Walkthrough: the corpus as a live stream on your machine'), 'walkthrough-the-corpus-as-a-live-stream-on-your-machine');
  assert.equal(githubSlug("What limits the seed's network, and what it would need"), 'what-limits-the-seeds-network-and-what-it-would-need');
  assert.equal(githubSlug('What was tried (seed 42 unless noted)'), 'what-was-tried-seed-42-unless-noted');
  assert.equal(githubSlug('`npm run bench:quality`'), 'npm-run-benchquality');
  assert.equal(githubSlug('docker-compose'), 'docker-compose');
  assert.equal(githubSlug('Keras — and snake_case'), 'keras--and-snake_case');
  assert.equal(githubSlug('See [the guide](docs/x.md)'), 'see-the-guide');
  assert.deepEqual([...headingAnchors('# A\n## A\n```sh\n# not a heading\n```\n### A ###\n')], ['a', 'a-1', 'a-2']);
});

test('should find relative links outside code, and report a missing file or heading', async () => {
  const doc = [
    '# Title',
    'See [the page](page.md), [a part](page.md#part-two), [here](#title) and [gone](#nowhere).',
    '[An image](../img.png) and [the web](https://example.com) and `[code](x.md)`.',
    '```md',
    '[fenced](y.md)',
    '```',
    '[split',
    'text](missing.md)',
    '[ref]: other.md#part-one',
  ].join('\n');
  assert.deepEqual(
    relativeLinks(doc).map((l) => `${l.line} ${l.target}`),
    ['2 page.md', '2 page.md#part-two', '2 #title', '2 #nowhere', '3 ../img.png', '8 missing.md', '9 other.md#part-one'],
  );
  const files: Record<string, string> = { 'docs/page.md': '# Page\n## Part two\n', 'img.png': '', 'docs/other.md': '## Part one\n' };
  assert.deepEqual(await brokenLinks('docs/a.md', doc, (f) => Promise.resolve(files[f])), [
    'docs/a.md:2: #nowhere: docs/a.md has no heading with the anchor #nowhere',
    'docs/a.md:8: missing.md: docs/missing.md does not exist',
  ]);
});

test('should resolve every relative link in README.md and docs/*.md', async () => {
  const docs = await readDocs();
  const problems = (await Promise.all(docs.map((doc) => brokenLinks(doc.file, doc.text, readFromRepo)))).flat();
  assert.deepEqual(problems, []);
  // The README links every page of docs/, so none is an orphan.
  const readmeTargets = new Set(relativeLinks(docs[0]!.text).map((l) => l.target.split('#')[0]));
  for (const { file } of docs.slice(1)) assert.ok(readmeTargets.has(file), `README.md links ${file}`);
});
