/**
 * The pipeline's CPU stages one at a time, on the whole corpus: clean, tokenizer fit,
 * tokenize, Arrow batch build and Parquet write. Each repetition is one or more full
 * passes over the corpus, so a figure is rows/s over real e-mails, not over a toy row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RecordBatch } from 'apache-arrow';
import { BatchBuilder } from '../src/batch/builder.js';
import type { PipelineConfig } from '../src/config/schema.js';
import type { Message, TokenizedMessage } from '../src/message.js';
import { CleanPool } from '../src/runtime/clean-pool.js';
import { ParquetSink } from '../src/sinks/parquet.js';
import { cleanEmail, cleanText } from '../src/text/clean.js';
import { Tokenizer } from '../src/text/tokenizer.js';
import { measuredRow, type Row } from './result.js';
import { measureRate, measureRateAndCpu } from './stats.js';
import type { WorkerMeasure } from './worker-rows.js';

export interface StageOptions {
  reps: number;
}

/**
 * A repetition repeats full passes until this long: one pass of a fast stage (batch build
 * takes milliseconds) is too short to time on a busy machine; a slow one (cleaning) runs once.
 */
const MIN_PASS_SECONDS = 0.5;
/** Rows of the untimed warm-up pass (JIT, lazy regexes); a full pass would double a slow stage. */
const WARMUP_ROWS = 200;

export const StageRows = {
  CLEAN: 'clean',
  TOKENIZER_FIT: 'tokenizer fit',
  TOKENIZE: 'tokenize',
  BATCH: 'Arrow batch build',
  PARQUET: 'Parquet write',
} as const;

/**
 * Cleans every message as the pipeline does (e-mail parsing when `clean.email` is on), on
 * this thread; returns the texts and each repetition's rate and CPU share too.
 */
export async function measureClean(
  messages: readonly Message[],
  config: Readonly<PipelineConfig>,
  opts: StageOptions,
): Promise<{ row: Row; texts: string[]; measures: WorkerMeasure[] }> {
  const clean = config.clean.email ? cleanEmail : cleanText;
  const texts = new Array<string>(messages.length);
  for (const m of messages.slice(0, WARMUP_ROWS)) await clean(m.text);
  const measures = await measureRateAndCpu(
    async () => {
      for (let i = 0; i < messages.length; i++) texts[i] = await clean(messages[i]!.text);
      return messages.length;
    },
    { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 0 },
  );
  const note = config.clean.email ? 'cleanEmail: MIME, HTML, normalise' : 'cleanText';
  return { row: measuredRow(StageRows.CLEAN, 'rows/s', measures.map((m) => m.rate), note), texts, measures };
}

/**
 * Cleans every message on a pool of `threads` worker threads (the pipeline's
 * `clean.threads`), all of it submitted at once as the pipeline's bounded queue would when
 * the model is not the bound: the pool's ceiling, to set beside the one-thread figure.
 * CPU is the whole process's (process.cpuUsage counts worker threads).
 */
export async function measureCleanPool(
  messages: readonly Message[],
  config: Readonly<PipelineConfig>,
  threads: number,
  opts: StageOptions,
): Promise<WorkerMeasure[]> {
  const pool = new CleanPool({ threads, kind: config.clean.email ? 'email' : 'text' });
  try {
    const texts = messages.map((m) => m.text);
    // Threads started and their modules compiled outside the timed passes.
    await pool.clean(texts.slice(0, WARMUP_ROWS));
    return await measureRateAndCpu(async () => (await pool.clean(texts)).outcomes.length, { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 0 });
  } finally {
    await pool.close();
  }
}

function tokenizerSettings(config: Readonly<PipelineConfig>) {
  return { numWords: config.tokenizer.numWords, maxLen: config.tokenizer.maxLen, oovToken: config.tokenizer.oovToken };
}

/**
 * Fits the vocabulary on all the cleaned texts (Keras' fit_on_texts on the same texts, so
 * the ratio compares like with like; the pipeline itself fits on a bootstrap window).
 * Returns the frozen tokenizer of the last pass.
 */
export async function measureTokenizerFit(
  texts: readonly string[],
  config: Readonly<PipelineConfig>,
  opts: StageOptions,
): Promise<{ row: Row; tokenizer: Tokenizer }> {
  let tokenizer = new Tokenizer(tokenizerSettings(config));
  tokenizer.fitOnTexts(texts.slice(0, WARMUP_ROWS));
  const runs = await measureRate(
    () => {
      tokenizer = new Tokenizer(tokenizerSettings(config)).fitOnTexts(texts);
      // The word index is built lazily; Keras builds it inside fit_on_texts, so count it here.
      tokenizer.freeze();
      return texts.length;
    },
    { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 0 },
  );
  return { row: measuredRow(StageRows.TOKENIZER_FIT, 'texts/s', runs, 'fit_on_texts on every cleaned text, then freeze'), tokenizer };
}

/**
 * Encodes every text to maxLen ids (texts_to_sequences + pad_sequences), one fresh array
 * per text as the pipeline's vocabulary does. Returns the token matrix, rows × maxLen:
 * the one tokenization every model figure (ours and Keras') is measured on.
 */
export async function measureTokenize(
  texts: readonly string[],
  tokenizer: Tokenizer,
  opts: StageOptions,
): Promise<{ row: Row; tokens: Int32Array }> {
  const maxLen = tokenizer.config.maxLen;
  const tokens = new Int32Array(texts.length * maxLen);
  for (const t of texts.slice(0, WARMUP_ROWS)) tokenizer.encode(t);
  const runs = await measureRate(
    () => {
      for (let i = 0; i < texts.length; i++) tokens.set(tokenizer.encode(texts[i]!), i * maxLen);
      return texts.length;
    },
    { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 0 },
  );
  return { row: measuredRow(StageRows.TOKENIZE, 'texts/s', runs, 'texts_to_sequences + pad_sequences (encode)'), tokens };
}

export async function measureBatchBuild(
  messages: readonly TokenizedMessage[],
  config: Readonly<PipelineConfig>,
  opts: StageOptions,
): Promise<Row> {
  const { maxRows } = config.batch;
  const maxLen = config.tokenizer.maxLen;
  const pass = (): number => {
    const builder = new BatchBuilder({ maxLen, maxRows, maxAgeMs: Number.MAX_SAFE_INTEGER });
    let rows = 0;
    for (const m of messages) rows += builder.push(m)?.numRows ?? 0;
    return rows + (builder.flush()?.numRows ?? 0);
  };
  const runs = await measureRate(pass, { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 1 });
  return measuredRow(StageRows.BATCH, 'rows/s', runs, `${maxRows}-row RecordBatches from typed arrays`);
}

/** The pipeline's batches of the corpus, in order, as the sink receives them. */
export function pipelineBatches(messages: readonly TokenizedMessage[], config: Readonly<PipelineConfig>): RecordBatch[] {
  const builder = new BatchBuilder({ maxLen: config.tokenizer.maxLen, maxRows: config.batch.maxRows, maxAgeMs: Number.MAX_SAFE_INTEGER });
  const batches: RecordBatch[] = [];
  for (const m of messages) {
    const b = builder.push(m);
    if (b !== null) batches.push(b);
  }
  const last = builder.flush();
  if (last !== null) batches.push(last);
  return batches;
}

/**
 * Writes the corpus' scored batches through the pipeline's sink (its rotation, compression
 * and columns) into a fresh directory per pass, including the final close: a row only
 * counts once its file is durable.
 */
export async function measureParquetWrite(
  batches: readonly RecordBatch[],
  config: Readonly<PipelineConfig>,
  opts: StageOptions,
): Promise<Row> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-parquet-'));
  // The scores' values do not change the cost of writing them.
  const scored = batches.map((batch) => ({ batch, scores: new Float32Array(batch.numRows).fill(0.25), modelVersion: 1 }));
  let pass = 0;
  try {
    const runs = await measureRate(
      async () => {
        const sink = new ParquetSink({
          dir: path.join(root, String(pass++)),
          pipeline: config.name,
          rotateRows: config.sink.rotateRows,
          compression: config.sink.compression,
          includeText: config.sink.includeText,
        });
        let rows = 0;
        try {
          // Rotation publishes files during writes; close publishes the rest.
          for (const s of scored) for (const file of await sink.write({ ...s, processedAtMs: Date.now() })) rows += file.rows;
          for (const file of await sink.close()) rows += file.rows;
        } finally {
          await sink.abort();
        }
        return rows;
      },
      { reps: opts.reps, seconds: MIN_PASS_SECONDS, warmup: 0 },
    );
    return measuredRow(StageRows.PARQUET, 'rows/s', runs, `parquetjs-lite, ${config.sink.compression}, durable files`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
