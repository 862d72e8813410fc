/**
 * A Kafka worker cleaning on a pool of threads (clean.threads 2), SIGKILLed while source
 * batches are in the pool, then restarted: the output is still exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTopic, deleteTopic, ensureBroker, produceEach, uniqueName, type TestMessage } from '../helpers/kafka.js';
import { corpusMessages } from '../helpers/corpus.js';
import { assertExactlyOnce, outputPositions, startWorker, waitFor, workerPipelineYaml } from '../helpers/worker.js';
import { seededRandom } from '../helpers/seed.js';

const PARTITIONS = 4;
const MAX_MESSAGE_BYTES = 65_536;

/** A gauge's value in a worker's /metrics scrape; null when absent. */
async function scrapeGauge(url: string, name: string): Promise<number | null> {
  const text = await (await fetch(url)).text();
  const value = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1];
  return value === undefined ? null : Number(value);
}

/** Real emails (cleaning is the costly stage for them), spam and ham, as JSON values over every partition. */
async function emailMessages(count: number): Promise<TestMessage[]> {
  const pick = (mails: Array<{ id: string; text: string }>) => mails.filter((m) => Buffer.byteLength(m.text) < MAX_MESSAGE_BYTES / 2);
  const spam = pick(await corpusMessages('spam-2', count));
  const ham = pick(await corpusMessages('easy-ham-1', count));
  const messages: TestMessage[] = [];
  for (let i = 0; messages.length < count; i++) {
    const [mail, label] = i % 3 === 0 ? [spam[(i / 3) % spam.length]!, 1] : [ham[i % ham.length]!, 0];
    const id = `m${messages.length}`;
    messages.push({ key: id, partition: messages.length % PARTITIONS, value: JSON.stringify({ id, text: mail.text, label }) });
  }
  return messages;
}

test('should stay exactly once when a worker is SIGKILLed with batches in its cleaning pool, and restarted', async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('clean-pool');
  await createTopic(brokers, topic, PARTITIONS);
  await createTopic(brokers, `${topic}.dlq`, 1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-clean-pool-worker-'));
  t.after(async () => {
    await deleteTopic(brokers, topic, `${topic}.dlq`);
    await rm(dir, { recursive: true, force: true });
  });
  const pipeline = path.join(dir, 'a.yaml');
  const yaml = workerPipelineYaml({ name: 'w', brokers, topic, groupId: uniqueName('group'), dir, worker: 'a', checkpointEveryRows: 100, metricsPort: 0 });
  // Raw emails, cleaned by two threads, up to eight source batches in the pool.
  await writeFile(pipeline, `${yaml}clean:\n  email: true\n  threads: 2\n  maxBatchesInFlight: 8\n`);

  const first = startWorker(pipeline, dir);
  t.after(() => first.child.kill('SIGKILL'));
  const expected = (await produceEach(brokers, topic, await emailMessages(2_500))).map((p) => `${p.partition}/${p.offset}`);
  const killAfter = 60 + Math.floor(seededRandom(t)() * 200);
  let inPool = 0;
  await waitFor(`${killAfter} rows written, a checkpoint saved, and batches in the cleaning pool`, async () => {
    if (!/checkpoint saved/.test(first.stderr()) || (await outputPositions(dir)).length < killAfter) return false;
    const url = /"url":"(http:[^"]+)"/.exec(first.stderr())?.[1];
    if (!url) return false;
    inPool = (await scrapeGauge(url, 'textstream_clean_batches_in_flight')) ?? 0;
    return inPool >= 1;
  });
  first.child.kill('SIGKILL');
  await first.exited;
  const writtenBeforeKill = (await outputPositions(dir)).length;
  assert.ok(writtenBeforeKill < expected.length, 'the kill happened mid-stream');
  t.diagnostic(`killed with ${inPool} source batches in the cleaning pool, ${writtenBeforeKill} rows written`);

  const second = startWorker(pipeline, dir);
  t.after(() => second.child.kill('SIGKILL'));
  await waitFor('all messages in Parquet', async () => (await outputPositions(dir)).length >= expected.length, 300_000);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
  assertExactlyOnce(await outputPositions(dir), expected);
  assert.match(second.stderr(), /resumed from checkpoint/, 'the restarted worker restores the model');
});
