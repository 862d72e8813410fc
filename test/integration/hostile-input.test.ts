/**
 * The hostile corpus (test/helpers/hostile-corpus.ts) through one real `textstream run`
 * worker on the local broker (scripts/kafka.sh): every hostile message ends as the row or
 * the dead letter it should, and the ordinary messages around it on the same partitions
 * are all written once (nothing crashes the worker, nothing stalls a partition).
 * test/sources/hostile-decode.test.ts runs the same corpus through the pure stages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { runCli } from '../helpers/cli.js';
import { HOSTILE_CASES, HOSTILE_MAX_MESSAGE_BYTES, HOSTILE_TOPIC_MAX_MESSAGE_BYTES, expectedReason, expectedRow, type HostileCase } from '../helpers/hostile-corpus.js';
import { createTopic, deleteTopic, ensureBroker, produceEach, readTopic, topicMessageCount, uniqueName, type ReadMessage, type TestMessage } from '../helpers/kafka.js';
import { labelledMessage, workerPipelineYaml } from '../helpers/worker.js';

const PARTITIONS = 2;
/** Ordinary messages before the corpus, and after it. */
const ORDINARY_AROUND = 40;
/** One ordinary message after every this many hostile ones. */
const ORDINARY_EVERY = 4;
/**
 * The worker drains and exits once no record has arrived for this long, counted from its
 * start and including processing. kafkajs sleeps its maxWaitTime (5 s) whenever every
 * partition is paused (at assignment, on backpressure), so quieter spells of 5–6 s happen.
 */
const EXIT_WHEN_IDLE_SECONDS = 15;

interface OutputRow {
  id: string;
  label: number | null;
  text: string;
  partition: number;
  offset: string;
}

/** Every output row, read back with DuckDB. */
async function readOutput(dir: string): Promise<OutputRow[]> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const glob = path.join(dir, 'out', 'w', '**', '*.parquet');
    const reader = await db.runAndReadAll(
      `SELECT id, label::INTEGER AS label, text, partition::INTEGER AS partition, "offset"::VARCHAR AS "offset"
       FROM read_parquet('${glob}', hive_partitioning = false)`,
    );
    return reader.getRowObjectsJS() as unknown as OutputRow[];
  } finally {
    db.closeSync();
  }
}

const header = (letter: ReadMessage, name: string): string | undefined => letter.headers[name]?.toString();

test('should turn every hostile message into its row or dead letter without crashing or stalling the worker', async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('hostile');
  const deadLetterTopic = `${topic}.dlq`;
  await createTopic(brokers, topic, PARTITIONS, { 'max.message.bytes': String(HOSTILE_TOPIC_MAX_MESSAGE_BYTES) });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-hostile-'));
  t.after(async () => {
    await deleteTopic(brokers, topic, deadLetterTopic);
    await rm(dir, { recursive: true, force: true });
  });

  // Ordinary messages first, then the corpus with more of them in between, then more:
  // on both partitions, every hostile message has ordinary ones before and after it.
  type Sent = { kind: 'ordinary'; id: string; label: number } | { kind: 'hostile'; case: HostileCase };
  const sent: Sent[] = [];
  const messages: TestMessage[] = [];
  let ordinary = 0;
  const addOrdinary = (count: number): void => {
    for (let k = 0; k < count; k++, ordinary++) {
      const message = labelledMessage(ordinary, PARTITIONS);
      const { id, label } = JSON.parse(message.value as string) as { id: string; label: number };
      sent.push({ kind: 'ordinary', id, label });
      messages.push(message);
    }
  };
  addOrdinary(ORDINARY_AROUND);
  HOSTILE_CASES.forEach((c, i) => {
    sent.push({ kind: 'hostile', case: c });
    messages.push({ key: c.key, value: c.value, partition: i % PARTITIONS });
    if (i % ORDINARY_EVERY === ORDINARY_EVERY - 1) addOrdinary(1);
  });
  addOrdinary(ORDINARY_AROUND);
  const positions = (await produceEach(brokers, topic, messages)).map((p) => `${p.partition}/${p.offset}`);

  const pipeline = path.join(dir, 'a.yaml');
  await writeFile(pipeline, workerPipelineYaml({ name: 'w', brokers, topic, groupId: uniqueName('group'), dir, worker: 'a', checkpointEveryRows: 0, metricsPort: 0 }));
  const started = performance.now();
  const run = await runCli(['run', pipeline, '--exit-when-idle', String(EXIT_WHEN_IDLE_SECONDS), '--json'], dir, {
    TEXTSTREAM_DECODE_MAX_MESSAGE_BYTES: String(HOSTILE_MAX_MESSAGE_BYTES),
    TEXTSTREAM_SINK_INCLUDE_TEXT: 'true',
  });
  t.diagnostic(`worker ran ${((performance.now() - started) / 1000).toFixed(1)} s for ${messages.length} messages`);
  assert.equal(run.code, 0, run.stderr.slice(-5000));
  const summary = JSON.parse(run.stdout) as { rowsIn: number; rowsWritten: number; deadLetters: number; deadLettersByReason: Record<string, number> };

  const expectedLetters = HOSTILE_CASES.filter((c) => expectedReason(c) !== null).length;
  const byReason: Record<string, number> = {};
  for (const c of HOSTILE_CASES) {
    const reason = expectedReason(c);
    if (reason !== null) byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  assert.equal(summary.rowsIn, messages.length, 'the worker took every produced message');
  assert.deepEqual(summary.deadLettersByReason, byReason);

  const rows = await readOutput(dir);
  const rowAt = new Map<string, OutputRow>();
  for (const r of rows) {
    const at = `${r.partition}/${r.offset}`;
    assert.ok(!rowAt.has(at), `two rows for ${at}`);
    rowAt.set(at, r);
  }
  const letters = await readTopic(brokers, deadLetterTopic, expectedLetters, 60_000);
  assert.equal(await topicMessageCount(brokers, deadLetterTopic), expectedLetters, 'no dead letter beyond the expected ones');
  const letterAt = new Map<string, ReadMessage>();
  for (const l of letters) {
    assert.equal(header(l, 'textstream.source.topic'), topic);
    const at = `${header(l, 'textstream.source.partition')}/${header(l, 'textstream.source.offset')}`;
    assert.ok(!letterAt.has(at), `two dead letters for ${at}`);
    letterAt.set(at, l);
  }

  const failures: string[] = [];
  sent.forEach((s, i) => {
    const at = positions[i]!;
    const row = rowAt.get(at);
    const letter = letterAt.get(at);
    if (row && letter) failures.push(`${at}: both a row and a dead letter`);
    if (s.kind === 'ordinary') {
      if (!row) failures.push(`ordinary ${s.id} at ${at}: no row${letter ? ` (dead letter ${header(letter, 'textstream.reason')})` : ''}`);
      else if (row.id !== s.id || row.label !== s.label) failures.push(`ordinary ${s.id} at ${at}: row ${row.id} label ${row.label}`);
      return;
    }
    const c = s.case;
    const reason = expectedReason(c);
    if (reason !== null) {
      if (!letter) {
        failures.push(`"${c.name}" at ${at}: expected a ${reason} dead letter, got ${row ? `a row ${JSON.stringify(row.text.slice(0, 80))}` : 'nothing'}`);
        return;
      }
      const got = header(letter, 'textstream.reason');
      if (got !== reason) failures.push(`"${c.name}": dead letter ${got} (${header(letter, 'textstream.detail')}), expected ${reason}`);
      if (!(letter.value ?? Buffer.alloc(0)).equals(c.value ?? Buffer.alloc(0))) failures.push(`"${c.name}": the dead letter's value is not the original bytes`);
      if (c.key !== null && !letter.key?.equals(c.key)) failures.push(`"${c.name}": the dead letter's key is not the original key`);
      return;
    }
    const expected = expectedRow(c)!;
    if (!row) {
      failures.push(`"${c.name}" at ${at}: expected a row, got ${letter ? `dead letter ${header(letter, 'textstream.reason')}: ${header(letter, 'textstream.detail')}` : 'nothing'}`);
      return;
    }
    const id = expected.idFromPosition ? `${topic}/${at}` : expected.id;
    if (row.id !== id) failures.push(`"${c.name}": id ${JSON.stringify(row.id)}, expected ${JSON.stringify(id)}`);
    if (row.label !== (expected.label ?? null)) failures.push(`"${c.name}": label ${row.label}, expected ${expected.label ?? null}`);
    if (expected.text !== undefined && row.text !== expected.text) failures.push(`"${c.name}": text ${JSON.stringify(row.text.slice(0, 80))}, expected ${JSON.stringify(expected.text)}`);
    for (const part of expected.textContains ?? []) if (!row.text.includes(part)) failures.push(`"${c.name}": text lacks ${JSON.stringify(part)}`);
  });
  assert.deepEqual(failures, []);

  // Two messages with one id are two rows, told apart by their offsets.
  assert.equal(rows.filter((r) => r.id === 'h-dup').length, 2);
  assert.equal(rows.length + letters.length, messages.length, 'produced = rows + dead letters');
  assert.equal(summary.rowsWritten, rows.length);
  assert.equal(summary.deadLetters, letters.length);
});
