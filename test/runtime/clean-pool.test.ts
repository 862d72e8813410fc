import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { parsePipeline } from '../../src/config/load.js';
import { cleanPoolSettings } from '../../src/runtime/components.js';
import { cleanEmail } from '../../src/text/clean.js';
import { CleanPool } from '../../src/runtime/clean-pool.js';
import { cleanEach } from '../../src/runtime/cleaner.js';
import { corpusMessages } from '../helpers/corpus.js';

/** Real emails: spam and ham, some HTML, some multipart. */
async function emails(n: number): Promise<string[]> {
  const spam = await corpusMessages('spam-2', n / 2);
  const ham = await corpusMessages('easy-ham-1', n / 2);
  return spam.flatMap((s, i) => [s.text, ham[i]!.text]);
}

test('should clean each text exactly as on the main thread, answers in the order asked', async (t) => {
  const texts = await emails(40);
  const pool = new CleanPool({ threads: 2, kind: 'email', chunkTexts: 3 });
  t.after(() => pool.close());
  // Two requests at once: each gets its own texts back, in order, whichever thread cleaned them.
  const [first, second] = await Promise.all([pool.clean(texts.slice(0, 25)), pool.clean(texts.slice(25))]);
  const expected = await cleanEach(texts, cleanEmail);
  assert.deepEqual([...first.outcomes, ...second.outcomes], expected);
  assert.ok(first.seconds > 0 && second.seconds > 0);
  assert.equal(pool.queuedTexts, 0);
  assert.equal(pool.restarts, 0);
});

test('should clean again the chunk a dying thread held, losing nothing', async (t) => {
  const texts = await emails(40);
  // The third chunk handed out kills its thread half-way through: cleaned texts never posted.
  const pool = new CleanPool({ threads: 2, kind: 'email', chunkTexts: 4, faults: { crashOnChunk: 3 } });
  t.after(() => pool.close());
  const cleaned = await pool.clean(texts);
  assert.equal(pool.restarts, 1);
  assert.deepEqual(cleaned.outcomes, await cleanEach(texts, cleanEmail));
  // The replacement thread goes on cleaning.
  assert.deepEqual((await pool.clean(texts.slice(0, 5))).outcomes, await cleanEach(texts.slice(0, 5), cleanEmail));
});

test('should fail only the text that kills its thread every time, with a reason', async (t) => {
  const texts = await emails(20);
  texts[7] = `Subject: hello\n\nPOISON-TEXT ${texts[7]!}`;
  const pool = new CleanPool({ threads: 2, kind: 'email', chunkTexts: 5, faults: { crashOnTextContaining: 'POISON-TEXT' } });
  t.after(() => pool.close());
  const cleaned = await pool.clean(texts);
  const expected = await cleanEach(texts, cleanEmail);
  for (let i = 0; i < texts.length; i++) {
    if (i === 7) assert.match(JSON.stringify(cleaned.outcomes[i]), /"error":"its cleaning thread died on it 2 times \(exit code 70\)"/);
    else assert.deepEqual(cleaned.outcomes[i], expected[i], `text ${i}`);
  }
  // Once in its chunk, once alone.
  assert.equal(pool.restarts, 2);
});

test('should refuse work once closed, and close twice safely', async () => {
  const pool = new CleanPool({ threads: 1, kind: 'text' });
  assert.deepEqual((await pool.clean(['Hello <b>World</b>'])).outcomes, [{ text: 'hello world' }]);
  await pool.close();
  await pool.close();
  await assert.rejects(pool.clean(['late']), /closed/);
});

test('should size the pool to every core but the main thread’s when clean.threads is null, and clean inline with 0', () => {
  const config = (threads: number | null) =>
    parsePipeline({ name: 'p', source: { type: 'parquet', path: 'x.parquet' }, clean: { email: true, threads, maxBatchesInFlight: 2 } });
  const cores = os.availableParallelism();
  assert.deepEqual(cleanPoolSettings(config(null)), cores > 1 ? { threads: cores - 1, kind: 'email', maxBatchesInFlight: 2 } : null);
  assert.deepEqual(cleanPoolSettings(config(3)), { threads: 3, kind: 'email', maxBatchesInFlight: 2 });
  assert.equal(cleanPoolSettings(config(0)), null);
});
