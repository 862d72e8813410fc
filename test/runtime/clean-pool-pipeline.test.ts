import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { parsePipeline } from '../../src/config/load.js';
import type { PipelineConfig } from '../../src/config/schema.js';
import { makeMetricsParts, makeModelParts, makeStageParts, NO_CHECKPOINTS } from '../../src/runtime/components.js';
import type { CleanPoolSettings } from '../../src/runtime/clean-stage.js';
import { runPipeline, type PipelineProgress, type RunSummary } from '../../src/runtime/pipeline.js';
import { DeadLetterFileSink } from '../../src/sinks/dead-letter-file.js';
import { ParquetSink } from '../../src/sinks/parquet.js';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { ParquetSource } from '../../src/sources/parquet.js';
import { tempDir } from '../helpers/cli.js';
import { corpusMessages } from '../helpers/corpus.js';

/**
 * The cleaning pool inside the real pipeline (Parquet in, wasm model, Parquet out): the
 * rows it writes must be those, in the order, that cleaning on the main thread writes.
 */

const silent = pino({ level: 'silent' });
const POISON = 'X-Poison-For-The-Cleaning-Thread';

/** 160 real emails, spam and ham interleaved, one empty text (a dead letter either way). */
async function writeInput(file: string, poisonRow: number | null = null): Promise<number> {
  const spam = await corpusMessages('spam-2', 80);
  const ham = await corpusMessages('easy-ham-1', 80);
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY', optional: true }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 64 },
  );
  let rows = 0;
  const append = async (id: string, text: string, label: string): Promise<void> => {
    const poisoned = rows === poisonRow ? `${POISON}: yes\n${text}` : text;
    await writer.append({ id, text: Buffer.from(poisoned), label });
    rows += 1;
  };
  for (let i = 0; i < 80; i++) {
    await append(spam[i]!.id, spam[i]!.text, '1');
    await append(ham[i]!.id, ham[i]!.text, '0');
    if (i === 30) await append('bad/empty', '   ', '0');
  }
  await writer.finish(file);
  return rows;
}

function poolConfig(dir: string, input: string): PipelineConfig {
  return parsePipeline({
    name: 'pool',
    source: { type: 'parquet', path: input, batchRows: 12 },
    clean: { email: true, threads: 0 },
    tokenizer: { bootstrapRows: 30 },
    // Batches cut by size only: an age limit would cut them where the timing happens to fall.
    batch: { maxRows: 16, maxAgeMs: 600_000 },
    model: { backend: 'wasm', seed: 7 },
    sink: { dir: path.join(dir, 'out'), rotateRows: 50, includeText: true },
    metrics: { enabled: false },
  });
}

interface PoolRun {
  summary: RunSummary;
  /** Output rows in file order, then row order. */
  rows: Array<Record<string, unknown>>;
  letters: Array<{ id?: string; reason: string; detail: string }>;
}

async function runWith(
  t: TestContext,
  cleanPool: CleanPoolSettings | null,
  options: { poisonRow?: number; afterBatch?: (progress: PipelineProgress, registry: Registry) => Promise<void> | void; signal?: AbortSignal } = {},
): Promise<PoolRun> {
  const dir = await tempDir(t, 'textstream-clean-pool-');
  const input = path.join(dir, 'mail.parquet');
  await writeInput(input, options.poisonRow ?? null);
  const config = poolConfig(dir, input);
  const model = await makeModelParts(config, silent, NO_CHECKPOINTS);
  t.after(() => model.learner.dispose());
  const metricsParts = await makeMetricsParts(config, model, silent);
  assert.equal(config.source.type, 'parquet');
  const source = await ParquetSource.open({ path: input, name: 'mail', columns: config.source.columns, batchRows: config.source.batchRows });
  const sink = new ParquetSink({ dir: config.sink.dir, pipeline: config.name, rotateRows: config.sink.rotateRows, includeText: true });
  const letterPath = path.join(dir, 'dead-letters.jsonl');
  const deadLetters = new DeadLetterFileSink({ path: letterPath });
  let summary: RunSummary;
  try {
    const stages = makeStageParts(config, model, metricsParts);
    summary = await runPipeline({
      ...stages,
      cleanPool,
      ...(options.afterBatch ? { afterBatch: (progress: PipelineProgress) => options.afterBatch!(progress, metricsParts.registry) } : {}),
      source,
      sink,
      deadLetters,
      limit: null,
      signal: options.signal ?? new AbortController().signal,
    });
  } finally {
    await deadLetters.close();
    await sink.close();
    await source.close();
  }
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const rows: Array<Record<string, unknown>> = [];
  for (const file of summary.files) {
    const reader = await db.runAndReadAll(`SELECT id, text, label, score, model_version FROM read_parquet('${file.path}')`);
    rows.push(...(reader.getRowObjectsJS() as Array<Record<string, unknown>>));
  }
  db.closeSync();
  const text = await readFile(letterPath, 'utf8').catch(() => '');
  const letters = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id?: string; reason: string; detail: string });
  return { summary, rows, letters };
}

const pool = (threads: number, faults?: CleanPoolSettings['faults']): CleanPoolSettings => ({
  threads,
  kind: 'email',
  maxBatchesInFlight: 3,
  ...(faults ? { faults } : {}),
});

test('should write the same rows, in the same order, scored the same, through a cleaning pool as without one', async (t) => {
  const inline = await runWith(t, null);
  const pooled = await runWith(t, pool(2));
  assert.equal(inline.rows.length, 160);
  assert.equal(inline.summary.deadLetters, 1);
  assert.deepEqual(pooled.rows, inline.rows);
  assert.deepEqual(pooled.letters.map((l) => l.reason), ['empty-text']);
  assert.equal(pooled.summary.rowsIn, 161);
  // The empty text is a dead letter of decode already.
  assert.equal(pooled.summary.stages.get('clean')?.input, 160);
  assert.equal(pooled.summary.stages.get('clean')?.output, 160);
  assert.ok(pooled.summary.stages.get('clean')!.seconds > 0, 'the threads report their cleaning time');
});

test('should lose nothing when a cleaning thread dies mid-batch: its chunk is cleaned again', async (t) => {
  const inline = await runWith(t, null);
  // The 7th chunk handed to a thread kills it half-way through.
  const crashed = await runWith(t, pool(2, { crashOnChunk: 7 }));
  assert.deepEqual(crashed.rows, inline.rows);
  assert.equal(crashed.summary.deadLetters, 1);
  assert.equal(crashed.summary.rowsIn, crashed.summary.rowsWritten + crashed.summary.deadLetters);
});

test('should dead-letter, with its reason, a text that kills its cleaning thread every time, and write every other row', async (t) => {
  const crashed = await runWith(t, pool(2, { crashOnTextContaining: POISON }), { poisonRow: 45 });
  assert.equal(crashed.summary.rowsWritten, 159);
  assert.equal(crashed.summary.deadLetters, 2);
  const poisoned = crashed.letters.find((l) => l.reason === 'undecodable');
  assert.ok(poisoned, JSON.stringify(crashed.letters));
  assert.match(poisoned.detail, /cleaning failed: its cleaning thread died on it 2 times/);
  assert.equal(new Set(crashed.rows.map((r) => r.id)).size, 159);
});

test('should drain the batches in the pool on shutdown, in order, before the final flush', async (t) => {
  const inline = await runWith(t, null);
  const controller = new AbortController();
  let inFlightAtAbort = -1;
  const stopped = await runWith(t, pool(1), {
    signal: controller.signal,
    afterBatch: async (_progress, registry) => {
      if (controller.signal.aborted) return;
      // Read off the queue-depth gauge, as a scrape would.
      const gauge = await registry.getSingleMetric('textstream_clean_batches_in_flight')!.get();
      inFlightAtAbort = gauge.values[0]?.value ?? -1;
      controller.abort();
    },
  });
  assert.ok(stopped.summary.aborted);
  assert.ok(inFlightAtAbort >= 1, `batches were in the pool when the run was stopped (gauge said ${inFlightAtAbort})`);
  assert.ok(stopped.summary.rowsWritten < 160, 'stopped before the end');
  assert.equal(stopped.summary.rowsIn, stopped.summary.rowsWritten + stopped.summary.deadLetters);
  // Everything taken from the source was written: the first rows of the full run, in its order.
  assert.deepEqual(
    stopped.rows.map((r) => r.id),
    inline.rows.slice(0, stopped.rows.length).map((r) => r.id),
  );
});
