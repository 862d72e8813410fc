/**
 * A trainer's sinks keep nothing, and what it takes is not output: the scorers read the
 * same records and count them. The output and dead-letter metrics of a pipeline with the
 * trainer's sinks stay at zero; its own accounting (rows in = written + dead letters) holds.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { pino } from 'pino';
import { parsePipeline } from '../../src/config/load.js';
import type { RawRecord, SourcePosition } from '../../src/message.js';
import { makeMetricsParts, makeModelParts, makeStageParts, NO_CHECKPOINTS } from '../../src/runtime/components.js';
import { runPipeline } from '../../src/runtime/pipeline.js';
import { DeadLetterFileSink } from '../../src/sinks/dead-letter-file.js';
import { DiscardDeadLetterSink, DiscardSink } from '../../src/sinks/discard.js';
import { ParquetSink } from '../../src/sinks/parquet.js';
import type { DeadLetterSink, Sink } from '../../src/sinks/sink.js';
import type { Source } from '../../src/sources/source.js';
import { tempDir } from '../helpers/cli.js';

const silent = pino({ level: 'silent' });
const ROWS = 12;

/** Delivers its records once; the last one has no text (a dead letter). */
class OnceSource implements Source {
  readonly name = 'mail';
  readonly size = null;
  async *batches(): AsyncIterable<RawRecord[]> {
    await nextMacrotask(); // as a fetch would
    yield Array.from({ length: ROWS }, (_, offset) => ({
      position: { source: 'mail', partition: 0, offset: BigInt(offset), timestampMs: Date.now() },
      id: `m${offset}`,
      text: offset === ROWS - 1 ? null : Buffer.from(`free money offer ${offset}`),
      label: offset % 2,
    }));
  }
  commit(_positions: readonly SourcePosition[]): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function run(t: TestContext, sinks: (dir: string) => { sink: Sink; deadLetters: DeadLetterSink }) {
  const dir = await tempDir(t);
  const config = parsePipeline({
    name: 'trainer-output',
    source: { type: 'parquet', path: path.join(dir, 'unused.parquet') },
    tokenizer: { bootstrapRows: 1 },
    batch: { maxRows: 4 },
    model: { backend: 'wasm' },
    sink: { dir: path.join(dir, 'out') },
    metrics: { enabled: false },
  });
  const model = await makeModelParts(config, silent, NO_CHECKPOINTS);
  t.after(() => model.learner.dispose());
  const metricsParts = await makeMetricsParts(config, model, silent);
  const { sink, deadLetters } = sinks(dir);
  try {
    const summary = await runPipeline({
      ...makeStageParts(config, model, metricsParts),
      source: new OnceSource(),
      sink,
      deadLetters,
      limit: null,
      signal: new AbortController().signal,
    });
    const value = async (name: string): Promise<number> =>
      ((await metricsParts.registry.getSingleMetric(name)!.get()).values as { value: number }[]).reduce((sum, v) => sum + v.value, 0);
    return {
      summary,
      outputRows: await value('textstream_output_rows_total'),
      outputFiles: await value('textstream_output_files_total'),
      deadLetters: await value('textstream_dead_letters_total'),
    };
  } finally {
    await deadLetters.close();
    await sink.close();
  }
}

test('should count no output and no dead letters for a trainer’s sinks, and still account for every row', async (t) => {
  const trainer = await run(t, () => ({ sink: new DiscardSink(), deadLetters: new DiscardDeadLetterSink() }));
  assert.deepEqual([trainer.summary.rowsIn, trainer.summary.rowsWritten, trainer.summary.deadLetters], [ROWS, ROWS - 1, 1]);
  assert.equal(trainer.summary.rowsTrained, ROWS - 1);
  assert.deepEqual([trainer.outputRows, trainer.outputFiles, trainer.deadLetters], [0, 0, 0]);
});

test('should count the output and dead letters of sinks that keep them', async (t) => {
  const writer = await run(t, (dir) => ({
    sink: new ParquetSink({ dir: path.join(dir, 'out'), pipeline: 'trainer-output', rotateRows: 100 }),
    deadLetters: new DeadLetterFileSink({ path: path.join(dir, 'dead-letters.jsonl') }),
  }));
  assert.deepEqual([writer.outputRows, writer.outputFiles, writer.deadLetters], [ROWS - 1, 1, 1]);
});
