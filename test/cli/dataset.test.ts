/**
 * `textstream dataset spamassassin` through the real CLI: --json prints one object whose
 * figures are those of the Parquet file written and of the corpus it was built from, and
 * nothing reaches stderr (no progress bar, no progress lines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetBuildSummary } from '../../src/cli/dataset.js';
import { ParquetSource } from '../../src/sources/parquet.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

/** Files in one folder of the npm corpus: the expected row counts, independent of the builder. */
async function corpusCount(group: string): Promise<number> {
  const dir = path.join(repoRoot, 'node_modules', '@stdlib', 'datasets-spam-assassin', 'data', group);
  return (await readdir(dir)).filter((f) => f.endsWith('.json')).length;
}

test('should print one JSON summary matching the Parquet file it wrote, and no progress, with --json', async (t) => {
  const dir = await tempDir(t, 'textstream-dataset-');
  const out = path.join(dir, 'nested', 'spamassassin.parquet');
  const result = await runCli(['dataset', 'spamassassin', '--out', out, '--seed', '7', '--json']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '', 'no progress with --json');

  assert.match(result.stdout, /^[^\n]+\n$/, 'exactly one line');
  const summary = JSON.parse(result.stdout) as DatasetBuildSummary;
  assert.deepEqual(Object.keys(summary).sort(), ['ham', 'out', 'rows', 'seconds', 'seed', 'spam']);
  assert.equal(summary.out, out);
  assert.equal(summary.seed, 7);
  assert.ok(summary.seconds > 0 && summary.seconds < 600, `${summary.seconds} s`);

  const spam = (await corpusCount('spam-1')) + (await corpusCount('spam-2'));
  const ham = (await corpusCount('easy-ham-1')) + (await corpusCount('easy-ham-2')) + (await corpusCount('hard-ham-1'));
  assert.deepEqual([summary.rows, summary.spam, summary.ham], [spam + ham, spam, ham]);

  // The file itself, through the reader replay uses.
  const source = await ParquetSource.open({ path: out });
  t.after(() => source.close());
  assert.equal(source.size, summary.rows);
  const labels = { spam: 0, ham: 0 };
  for await (const batch of source.batches(new AbortController().signal)) {
    for (const record of batch) {
      if (Number(record.label) === 1) labels.spam++;
      else if (Number(record.label) === 0) labels.ham++;
    }
  }
  assert.deepEqual(labels, { spam: summary.spam, ham: summary.ham });
});

test('should show --json in the help of dataset spamassassin', async () => {
  const help = await runCli(['dataset', 'spamassassin', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--json +no progress display/);
  assert.match(help.stdout, /\$ textstream dataset spamassassin --out \S+ --json/);
});
