import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { pino } from 'pino';
import { parsePipeline } from '../../src/config/load.js';
import type { PipelineConfig } from '../../src/config/schema.js';
import type { RawRecord, SourcePosition } from '../../src/message.js';
import { makeMetricsParts, makeModelParts, makeStageParts, NO_CHECKPOINTS } from '../../src/runtime/components.js';
import type { PrequentialLearner } from '../../src/model/learner.js';
import { runPipeline, type BatchModel, type RunSummary } from '../../src/runtime/pipeline.js';
import { DeadLetterFileSink } from '../../src/sinks/dead-letter-file.js';
import { ParquetSink } from '../../src/sinks/parquet.js';
import { partitionDirectory } from '../../src/sinks/parquet-layout.js';
import type { SinkRetryInfo } from '../../src/sinks/parquet-retry.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { Source } from '../../src/sources/source.js';
import { tempDir } from '../helpers/cli.js';
import { faultDir, makeReadOnly } from '../sinks/fs-faults.js';

const silent = pino({ level: 'silent' });

/**
 * A Kafka rebalance, scripted: the same records delivered twice, the second time in a new
 * epoch (the group took the partition back before anything was committed). A real broker
 * cannot be made to rebalance between two given batches; the chaos test does it at random.
 */
class RedeliveringSource implements Source {
  readonly name = 'mail';
  readonly size = null;
  epoch = 0;
  readonly commits: SourcePosition[] = [];
  readonly #records: RawRecord[];
  readonly #relearnFirst: number;
  #epochController = new AbortController();

  /** `relearnFirst`: the first delivery's first records are to be relearnt only (see Source.isRetrainOnly). */
  constructor(records: RawRecord[], relearnFirst = 0) {
    this.#records = records;
    this.#relearnFirst = relearnFirst;
  }

  isRetrainOnly(position: SourcePosition): boolean {
    return this.epoch === 0 && position.offset < BigInt(this.#relearnFirst);
  }

  get epochSignal(): AbortSignal {
    return this.#epochController.signal;
  }

  /** The group took the partition back (as KafkaSource does on a rebalance). */
  rebalance(): void {
    this.epoch++;
    this.#epochController.abort(new Error('rebalanced'));
    this.#epochController = new AbortController();
  }

  async *batches(): AsyncIterable<RawRecord[]> {
    yield this.#records;
    await nextMacrotask(); // as a fetch would
    if (this.epoch === 0) this.rebalance();
    yield this.#records;
  }

  commit(positions: readonly SourcePosition[]): Promise<void> {
    this.commits.push(...positions);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const record = (offset: number, text: string | null): RawRecord => ({
  position: { source: 'mail', partition: 0, offset: BigInt(offset), timestampMs: null },
  id: `m${offset}`,
  text: text === null ? null : Buffer.from(text),
  label: offset % 2,
});

/**
 * A small pipeline whose output goes under `dir`; rows of the source reach the sink in batches of 2.
 * `cleanThreads` 0 keeps each delivery on this thread until it is in the sink, for a
 * rebalance scripted to come while it is there (with a pool it may come while it is cleaned).
 */
function rebalanceConfig(dir: string, rotateRows: number, cleanThreads = 1): PipelineConfig {
  return parsePipeline({
    name: 'rebalance',
    source: { type: 'parquet', path: path.join(dir, 'unused.parquet') },
    clean: { threads: cleanThreads },
    tokenizer: { bootstrapRows: 1 },
    batch: { maxRows: 2 },
    model: { backend: 'wasm', seed: 7 },
    sink: { dir: path.join(dir, 'out'), rotateRows },
    metrics: { enabled: false },
  });
}

interface RunOptions {
  /** Default: a Parquet sink from the config. */
  sink?: Sink;
  /** Default: the learner itself. */
  model?: (learner: PrequentialLearner) => BatchModel;
  /** Fit the vocabulary on these texts before the run (else on the bootstrap window). */
  vocabulary?: string[];
}

/** The real pipeline (model, cleaning, sinks) over `source`; dead letters go to `<dir>/dead-letters.jsonl`. */
async function runThrough(t: TestContext, config: PipelineConfig, source: Source, options: RunOptions = {}): Promise<RunSummary> {
  const model = await makeModelParts(config, silent, NO_CHECKPOINTS);
  t.after(() => model.learner.dispose());
  if (options.vocabulary) model.vocabulary.fitAndFreeze(options.vocabulary);
  const metricsParts = await makeMetricsParts(config, model, silent);
  const sink = options.sink ?? new ParquetSink({ dir: config.sink.dir, pipeline: config.name, rotateRows: config.sink.rotateRows });
  const deadLetters = new DeadLetterFileSink({ path: path.join(path.dirname(config.sink.dir), 'dead-letters.jsonl') });
  try {
    return await runPipeline({
      ...makeStageParts(config, model, metricsParts),
      ...(options.model ? { model: options.model(model.learner) } : {}),
      source,
      sink,
      deadLetters,
      limit: null,
      signal: new AbortController().signal,
    });
  } finally {
    await deadLetters.close();
    await sink.close();
  }
}

// With a cleaning pool the first delivery is still being cleaned when the partition is taken back.
for (const cleanThreads of [0, 1]) {
  test(`should account for a dead letter delivered again after a rebalance: rows in = written + dead letters (clean.threads ${cleanThreads})`, async (t) => {
    const dir = await tempDir(t, 'textstream-rebalance-');
    // Offset 2 is a dead letter behind rows 0 and 1, which stay in the open Parquet file:
    // delivered, but not committable, when the partition is taken back.
    const source = new RedeliveringSource([
      record(0, 'free money now'),
      record(1, 'meeting at noon'),
      record(2, null),
      record(3, 'cheap pills online'),
      record(4, 'lunch tomorrow'),
    ]);
    const summary = await runThrough(t, rebalanceConfig(dir, 1000, cleanThreads), source);

    assert.equal(summary.rowsWritten, 4, 'each good row written once, in the second epoch');
    assert.equal(summary.deadLetters, 2, 'the dead letter left twice: the dead-letter output is at-least-once');
    assert.equal(summary.rowsReplayed, 4, 'the four rows in flight were dropped and delivered again');
    assert.equal(summary.rowsIn, summary.rowsWritten + summary.deadLetters);
    assert.deepEqual(
      summary.files.map((f) => [f.firstOffset, f.lastOffset, f.rows]),
      [[0n, 4n, 4]],
    );
    assert.deepEqual(source.commits.map((p) => p.offset), [4n], 'one commit, after the file is durable');
    const letters = (await readFile(path.join(dir, 'dead-letters.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(letters.length, 2);
  });
}

test('should stop retrying a failing disk when a rebalance takes the records back, and publish nothing of them', async (t) => {
  const { dir, undo } = await faultDir(t, 'textstream-rebalance-retry-');
  const config = rebalanceConfig(dir, 2, 0);
  const source = new RedeliveringSource([0, 1, 2, 3].map((o) => record(o, `message number ${o}`)));
  // The first file (offsets 0–1) cannot be created: the sink retries it, until the rebalance.
  const layout = { dir: config.sink.dir, pipeline: config.name, prefix: 'topic' };
  const partitionDir = partitionDirectory(layout, source.name, 0);
  await mkdir(partitionDir, { recursive: true });
  const readOnly = makeReadOnly([partitionDir], undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);
  const retries: SinkRetryInfo[] = [];
  const sink = new ParquetSink({
    ...layout,
    rotateRows: config.sink.rotateRows,
    retry: { initialDelayMs: 50, maxDelayMs: 50 },
    onRetry: (info) => {
      retries.push(info);
      // The disk recovers as the group moves the partition: without the epoch's signal the
      // retry would now publish offsets 0–1, which the partition's next owner writes too.
      source.rebalance();
      readOnly.restore();
    },
  });
  const summary = await runThrough(t, config, source, { sink });

  assert.equal(retries.length, 1, 'one failed attempt, then the rebalance stopped the retries');
  assert.deepEqual(
    summary.files.map((f) => [f.firstOffset, f.lastOffset]),
    [
      [0n, 1n],
      [2n, 3n],
    ],
    'each file published once, from the second epoch',
  );
  assert.equal(summary.rowsWritten, 4);
  assert.equal(summary.rowsIn, summary.rowsWritten + summary.deadLetters);
  const published = (await readdir(partitionDir)).filter((f) => f.endsWith('.parquet'));
  assert.equal(published.length, 2, published.join(', '));
});

test('should drop a batch taken before a rebalance that came while relearning, not publish it in the new epoch', async (t) => {
  const dir = await tempDir(t, 'textstream-rebalance-relearn-');
  // Offset 0 is relearnt only (a restored checkpoint had not learnt it); 1–2 are new.
  const source = new RedeliveringSource([0, 1, 2].map((o) => record(o, `message number ${o}`)), 1);
  const summary = await runThrough(t, rebalanceConfig(dir, 1000), source, {
    vocabulary: ['message number 0 1 2'],
    // The group rebalances while the worker relearns (it takes seconds on a real restart).
    model: (learner) => ({
      process: (batch) => learner.process(batch),
      retrain: async (batch) => {
        source.rebalance();
        return learner.retrain(batch);
      },
    }),
  });

  assert.deepEqual(
    summary.files.map((f) => [f.firstOffset, f.lastOffset, f.rows]),
    [[0n, 2n, 3]],
    'written once, from the second delivery; none of the first delivery published',
  );
  assert.equal(summary.rowsRetrained, 1);
  assert.equal(summary.rowsReplayed, 2);
  assert.equal(summary.rowsIn, summary.rowsWritten + summary.deadLetters);
});
