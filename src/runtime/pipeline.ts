import type { RecordBatch } from 'apache-arrow';
import type { BatchBuilder } from '../batch/builder.js';
import type { DeadLetterReason, DeadLetter, Message, RawRecord, TokenizedMessage } from '../message.js';
import { DeadLetterReasons } from '../message.js';
import type { PipelineMetrics } from '../metrics/definitions.js';
import type { DeadLetterSink, DurableFile, Sink } from '../sinks/sink.js';
import { decodeRecord } from '../sources/decode.js';
import type { Source } from '../sources/source.js';
import { StageClock, type StageTotals } from './stage-clock.js';
import type { Stage } from '../metrics/definitions.js';

/** The tokenizer as the pipeline sees it: fitted once on a bootstrap window, then frozen. */
export interface Vocabulary {
  readonly frozen: boolean;
  fitAndFreeze(texts: readonly string[]): void;
  /** Exactly `maxLen` token ids for one cleaned text. */
  encode(text: string): Int32Array;
}

/** The model as the pipeline sees it: score a batch, then train on its labelled rows. */
export interface BatchModel {
  process(batch: RecordBatch): Promise<{ scores: Float32Array; modelVersion: number; trainedRows: number }>;
}

export interface PipelineParts {
  source: Source;
  sink: Sink;
  deadLetters: DeadLetterSink;
  clean: (text: string) => Promise<string> | string;
  vocabulary: Vocabulary;
  /** Messages buffered to fit the vocabulary when it is not frozen yet. */
  bootstrapRows: number;
  builder: BatchBuilder;
  model: BatchModel;
  metrics: PipelineMetrics;
  maxMessageBytes: number;
  /** Stop after this many source records (replay); null: run to the end of the source. */
  limit: number | null;
  /** Called with the number of rows trained so far after each model batch. */
  afterBatch?: (progress: PipelineProgress) => Promise<void> | void;
  signal: AbortSignal;
}

export interface PipelineProgress {
  /** Records taken from the source. */
  rowsIn: number;
  /** Rows scored by the model (written, or about to be written, to the sink). */
  rowsScored: number;
  rowsTrained: number;
  rowsWritten: number;
  deadLetters: number;
  modelVersion: number;
}

export interface RunSummary extends PipelineProgress {
  deadLettersByReason: Record<string, number>;
  files: DurableFile[];
  stages: Map<Stage, StageTotals>;
  seconds: number;
  /** True when the run stopped because its signal aborted. */
  aborted: boolean;
}

/**
 * Drives records through decode → clean → tokenize → batch → model → sink. Every record
 * taken from the source leaves exactly once, as an output row or as a dead letter; the
 * run ends by checking that (`rowsIn = rowsWritten + deadLetters`).
 *
 * Stages run one batch at a time on this thread: cleaning, tokenizing and the model are
 * all CPU-bound here, so overlapping them would only add buffering.
 */
export async function runPipeline(parts: PipelineParts): Promise<RunSummary> {
  const started = process.hrtime.bigint();
  const clock = new StageClock(parts.metrics);
  const progress: PipelineProgress = {
    rowsIn: 0,
    rowsScored: 0,
    rowsTrained: 0,
    rowsWritten: 0,
    deadLetters: 0,
    modelVersion: 0,
  };
  const deadLettersByReason: Record<string, number> = {};
  const files: DurableFile[] = [];
  let bootstrap: Message[] = [];

  const sendDeadLetters = async (letters: DeadLetter[]): Promise<void> => {
    if (letters.length === 0) return;
    await parts.deadLetters.write(letters);
    for (const letter of letters) {
      deadLettersByReason[letter.reason] = (deadLettersByReason[letter.reason] ?? 0) + 1;
      parts.metrics.deadLetters.labels(letter.reason).inc();
    }
    progress.deadLetters += letters.length;
  };

  const published = (durable: DurableFile[]): void => {
    for (const file of durable) {
      files.push(file);
      progress.rowsWritten += file.rows;
      parts.metrics.outputFiles.inc();
      parts.metrics.outputRows.inc(file.rows);
      parts.metrics.outputBytes.inc(file.bytes);
    }
  };

  const runModel = async (batch: RecordBatch | null): Promise<void> => {
    if (!batch) return;
    parts.metrics.batchRows.observe(batch.numRows);
    const result = await clock.time('model', batch.numRows, () => parts.model.process(batch), (r) => r.scores.length);
    progress.rowsScored += batch.numRows;
    progress.rowsTrained += result.trainedRows;
    progress.modelVersion = result.modelVersion;
    parts.metrics.samplesScored.inc(batch.numRows);
    parts.metrics.samplesTrained.inc(result.trainedRows);
    const scored = { batch, scores: result.scores, modelVersion: result.modelVersion, processedAtMs: Date.now() };
    const durable = await clock.time('sink', batch.numRows, () => parts.sink.write(scored), () => batch.numRows);
    published(durable);
    if (durable.length > 0) await parts.source.commit(durable.map(lastPosition));
    await parts.afterBatch?.(progress);
  };

  const tokenizeAndBatch = async (messages: Message[]): Promise<void> => {
    const tokenized = await clock.time(
      'tokenize',
      messages.length,
      () => messages.map((m): TokenizedMessage => ({ ...m, tokens: parts.vocabulary.encode(m.text) })),
      (t) => t.length,
    );
    const batches: RecordBatch[] = [];
    await clock.time(
      'batch',
      tokenized.length,
      () => {
        for (const message of tokenized) {
          const full = parts.builder.push(message);
          if (full) batches.push(full);
        }
        const aged = parts.builder.flushIfOlderThan();
        if (aged) batches.push(aged);
      },
      () => tokenized.length,
    );
    for (const batch of batches) await runModel(batch);
  };

  const finishBootstrap = async (): Promise<void> => {
    if (parts.vocabulary.frozen) return;
    // Exactly the first `bootstrapRows` messages, however the source happened to batch them.
    const texts = bootstrap.slice(0, parts.bootstrapRows).map((m) => m.text);
    await clock.time('tokenize', 0, () => parts.vocabulary.fitAndFreeze(texts), () => 0);
    const buffered = bootstrap;
    bootstrap = [];
    await tokenizeAndBatch(buffered);
  };

  let aborted = false;
  try {
    const iterator = parts.source.batches(parts.signal)[Symbol.asyncIterator]();
    for (;;) {
      const readStart = process.hrtime.bigint();
      const next = await iterator.next();
      if (next.done) break;
      const records = takeWithinLimit(next.value, parts.limit, progress.rowsIn);
      clock.record('source', records.length, records.length, Number(process.hrtime.bigint() - readStart) / 1e9);
      progress.rowsIn += records.length;

      const decoded = await clock.time(
        'decode',
        records.length,
        () => records.map((r) => decodeRecord(r, { maxMessageBytes: parts.maxMessageBytes })),
        (d) => d.filter((x) => x.ok).length,
      );
      const messages: Message[] = [];
      const rejected: DeadLetter[] = [];
      for (const d of decoded) {
        if (d.ok) messages.push(d.message);
        else rejected.push(d.deadLetter);
      }
      const cleaned = await clock.time('clean', messages.length, () => cleanAll(messages, parts.clean, rejected), (c) => c.length);
      await sendDeadLetters(rejected);

      if (parts.vocabulary.frozen) await tokenizeAndBatch(cleaned);
      else {
        bootstrap.push(...cleaned);
        if (bootstrap.length >= parts.bootstrapRows) await finishBootstrap();
      }
      if ((parts.limit !== null && progress.rowsIn >= parts.limit) || parts.signal.aborted) {
        await iterator.return?.();
        break;
      }
    }
    aborted = parts.signal.aborted;
    // End of input (or shutdown): drain in data-flow order so nothing buffered is lost.
    await finishBootstrap();
    await runModel(parts.builder.flush());
    published(await parts.sink.flush());
  } catch (err) {
    await parts.sink.abort();
    throw err;
  }

  const accounted = progress.rowsWritten + progress.deadLetters;
  if (accounted !== progress.rowsIn) {
    throw new Error(
      `accounting mismatch: ${progress.rowsIn} rows in, ${progress.rowsWritten} written + ${progress.deadLetters} dead letters`,
    );
  }
  return {
    ...progress,
    deadLettersByReason,
    files,
    stages: clock.totals,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    aborted,
  };
}

function takeWithinLimit(batch: RawRecord[], limit: number | null, taken: number): RawRecord[] {
  if (limit === null || taken + batch.length <= limit) return batch;
  return batch.slice(0, Math.max(0, limit - taken));
}

/** Cleans each message; a message that cleans to nothing becomes a dead letter. */
async function cleanAll(
  messages: Message[],
  clean: (text: string) => Promise<string> | string,
  rejected: DeadLetter[],
): Promise<Message[]> {
  const kept: Message[] = [];
  const reject = (m: Message, reason: DeadLetterReason, detail: string): void => {
    const original = m.original?.() ?? new TextEncoder().encode(m.text);
    rejected.push({ position: m.position, reason, detail, original });
  };
  for (const message of messages) {
    let text: string;
    try {
      text = await clean(message.text);
    } catch (err) {
      reject(message, DeadLetterReasons.UNDECODABLE, `cleaning failed: ${(err as Error).message}`);
      continue;
    }
    if (text === '') reject(message, DeadLetterReasons.EMPTY_TEXT, 'text is empty after cleaning');
    else kept.push({ ...message, text });
  }
  return kept;
}

function lastPosition(file: DurableFile): { source: string; partition: number; offset: bigint; timestampMs: null } {
  return { source: file.source, partition: file.partition, offset: file.lastOffset, timestampMs: null };
}
