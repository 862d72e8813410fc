import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { Int8, Int32, Int64, RecordBatch, TimestampMillisecond, Utf8, Vector } from 'apache-arrow';
import type { BatchBuilder } from '../batch/builder.js';
import { sourceRanges, type SourceRange } from '../batch/positions.js';
import { Columns } from '../batch/schema.js';
import type { DeadLetterReason, DeadLetter, Message, RawRecord, TokenizedMessage } from '../message.js';
import { DeadLetterReasons } from '../message.js';
import type { PipelineMetrics } from '../metrics/definitions.js';
import type { Adwin } from '../model/drift.js';
import { predictedLabel } from '../model/evaluation.js';
import type { DeadLetterSink, DurableFile, Sink, SinkCallOptions } from '../sinks/sink.js';
import { decodeRecord } from '../sources/decode.js';
import type { Source } from '../sources/source.js';
import { CommitTracker } from './commit-tracker.js';
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
  /** Trains on the labelled rows without scoring them: records handed over again only to be relearnt. */
  retrain?(batch: RecordBatch): Promise<{ trainedRows: number }>;
}

export interface PipelineParts {
  source: Source;
  sink: Sink;
  deadLetters: DeadLetterSink;
  clean: (text: string) => Promise<string> | string;
  vocabulary: Vocabulary;
  /** Messages buffered to fit the vocabulary when it is not frozen yet. */
  bootstrapRows: number;
  /**
   * A live source may never deliver `bootstrapRows` messages: fit the vocabulary on what
   * has arrived once the first bootstrap message is this old. null: wait for all of them.
   */
  bootstrapMaxWaitMs?: number | null;
  builder: BatchBuilder;
  model: BatchModel;
  metrics: PipelineMetrics;
  maxMessageBytes: number;
  /** Text labels and their class (`decode.labels`). */
  labels?: Readonly<Record<string, 0 | 1>>;
  /** Stop after this many source records (replay); null: run to the end of the source. */
  limit: number | null;
  /**
   * Finish open output files (and commit their offsets) at least this often, so a quiet
   * stream still commits; null: only on rotation and at the end (replay).
   */
  flushIntervalMs?: number | null;
  /**
   * Drift detector fed with the 0/1 error of every labelled row's pre-training score;
   * on a detection `onDrift` hears where in the source it happened.
   */
  drift?: Adwin;
  onDrift?: (event: DriftEvent) => void;
  /**
   * End the run as at the end of the input once the source has been caught up, with no
   * record arriving, for this long: a worker that drains a topic and exits. null: never.
   */
  idleExitMs?: number | null;
  /**
   * Called when files are published, before their offsets are committed: the moment a
   * crash tests exactly-once output hardest (fault injection; see `textstream run --inject-fault`).
   */
  afterPublish?: (files: readonly DurableFile[]) => void;
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
  /** Records dropped unpublished because the source took them back (a rebalance); delivered again. */
  rowsReplayed: number;
  /** Records read again only to re-train a model restored from an older checkpoint (never written again). */
  rowsRetrained: number;
}

/** Where a drift was detected: the row that tipped it, and the batch's source ranges. */
export interface DriftEvent {
  /** The detector's error-rate estimate after the cut (higher than before it). */
  errorRate: number | null;
  /** Rows left in the detector's window. */
  window: number;
  at: { source: string; partition: number; offset: string };
  batch: SourceRange[];
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
    rowsReplayed: 0,
    rowsRetrained: 0,
  };
  const tracker = new CommitTracker();
  let stateEpoch = parts.source.epoch ?? 0;
  let lastFlushAt = Date.now();
  const deadLettersByReason: Record<string, number> = {};
  const files: DurableFile[] = [];
  let bootstrap: Message[] = [];
  let bootstrapStartedAt: number | null = null;
  let lastRecordAt = Date.now();
  const decodeOptions = { maxMessageBytes: parts.maxMessageBytes, labels: parts.labels ?? {} };

  const sendDeadLetters = async (letters: DeadLetter[]): Promise<void> => {
    if (letters.length === 0) return;
    await parts.deadLetters.write(letters);
    tracker.markDone(letters.map((l) => l.position));
    for (const letter of letters) {
      deadLettersByReason[letter.reason] = (deadLettersByReason[letter.reason] ?? 0) + 1;
      if (!parts.deadLetters.keepsNothing) parts.metrics.deadLetters.labels(letter.reason).inc();
    }
    progress.deadLetters += letters.length;
  };

  const published = (durable: DurableFile[]): void => {
    const counted = !parts.sink.keepsNothing;
    for (const file of durable) {
      const nowMs = Date.now();
      for (const timestampMs of tracker.markDurable(file)) {
        if (counted) parts.metrics.endToEndLatency.observe(Math.max(0, (nowMs - timestampMs) / 1000));
      }
      files.push(file);
      progress.rowsWritten += file.rows;
      if (!counted) continue;
      parts.metrics.outputFiles.inc();
      parts.metrics.outputRows.inc(file.rows);
      parts.metrics.outputBytes.inc(file.bytes);
    }
    if (durable.length > 0) parts.afterPublish?.(durable);
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
    // The source took these records back while the model ran: publish nothing of them.
    if (stale()) return;
    if (parts.drift) detectDrift(batch, result.scores, parts.drift, parts.metrics, parts.onDrift);
    const scored = { batch, scores: result.scores, modelVersion: result.modelVersion, processedAtMs: Date.now() };
    const durable = await clock.time('sink', batch.numRows, () => forThisEpoch((options) => parts.sink.write(scored, options)), () => batch.numRows);
    published(durable);
    await commitDone();
    await parts.afterBatch?.(progress);
    // The model's work settles through microtasks only; without a macrotask turn here the
    // /metrics server (and signals) wait for several batches (scrapes took 3–5 s in replay).
    await nextMacrotask();
  };

  const commitDone = async (): Promise<void> => {
    const positions = tracker.takeCommittable();
    if (positions.length > 0 && !stale()) {
      await parts.source.commit(positions);
      parts.metrics.offsetsCommitted.inc();
    }
  };

  const stale = (): boolean => (parts.source.epoch ?? 0) !== stateEpoch;

  /**
   * A sink call for records of the current epoch. A rebalance stops it retrying a failing
   * disk (the sink discards its open files): those records are delivered again, perhaps to
   * another worker, so nothing of them is published here.
   */
  const forThisEpoch = async (call: (options: SinkCallOptions) => Promise<DurableFile[]>): Promise<DurableFile[]> => {
    const signal = parts.source.epochSignal;
    try {
      return await call(signal ? { signal } : {});
    } catch (err) {
      if (stale()) return [];
      throw err;
    }
  };

  /**
   * Drops everything in flight, unpublished; the source delivers it again. A dead letter
   * already delivered but not committed comes again too, and leaves again (the dead-letter
   * topic is at-least-once): it stays counted, in rows in and in dead letters, each time.
   */
  const resetForNewEpoch = async (): Promise<void> => {
    const dropped = tracker.inFlightCount;
    parts.builder.flush();
    bootstrap = [];
    bootstrapStartedAt = null;
    await parts.sink.discard();
    tracker.clear();
    progress.rowsIn -= dropped;
    progress.rowsReplayed += dropped;
    stateEpoch = parts.source.epoch ?? 0;
  };

  const flushOnSchedule = async (): Promise<void> => {
    if (parts.flushIntervalMs == null || Date.now() - lastFlushAt < parts.flushIntervalMs) return;
    lastFlushAt = Date.now();
    await runModel(parts.builder.flush());
    if (stale()) return;
    published(await clock.time('sink', 0, () => forThisEpoch((options) => parts.sink.flush(options)), () => 0));
    await commitDone();
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

  const bootstrapWaitedTooLong = (): boolean =>
    parts.bootstrapMaxWaitMs != null && bootstrapStartedAt !== null && Date.now() - bootstrapStartedAt >= parts.bootstrapMaxWaitMs;

  /**
   * Records whose output is durable already, read again because the model restored from
   * its checkpoint had not learnt them yet: trained on, nothing else. Those that failed
   * decoding or cleaning were dead-lettered the first time.
   */
  const retrain = async (records: RawRecord[]): Promise<void> => {
    const model = parts.model;
    if (!model.retrain || !parts.vocabulary.frozen) return;
    const messages = records.flatMap((r) => {
      const d = decodeRecord(r, decodeOptions);
      return d.ok ? [d.message] : [];
    });
    const cleaned = await cleanAll(messages, parts.clean, []);
    const tokenized = cleaned.map((m): TokenizedMessage => ({ ...m, tokens: parts.vocabulary.encode(m.text) }));
    for (const batch of parts.builder.batchesOf(tokenized)) {
      const result = await model.retrain(batch);
      progress.rowsRetrained += batch.numRows;
      parts.metrics.samplesTrained.inc(result.trainedRows);
      await nextMacrotask();
    }
  };

  const finishBootstrap = async (): Promise<void> => {
    if (parts.vocabulary.frozen) return;
    // Exactly the first `bootstrapRows` messages, however the source happened to batch them.
    const texts = bootstrap.slice(0, parts.bootstrapRows).map((m) => m.text);
    await clock.time('tokenize', 0, () => parts.vocabulary.fitAndFreeze(texts), () => 0);
    const buffered = bootstrap;
    bootstrap = [];
    bootstrapStartedAt = null;
    await tokenizeAndBatch(buffered);
  };

  let aborted = false;
  try {
    const iterator = parts.source.batches(parts.signal)[Symbol.asyncIterator]();
    for (;;) {
      const readStart = process.hrtime.bigint();
      const next = await iterator.next();
      if (next.done) break;
      const takenIn = parts.source.epoch ?? 0;
      const taken = takeWithinLimit(next.value, parts.limit, progress.rowsIn);
      const { relearn, records } = splitRetrainOnly(taken, parts.source);
      if (relearn.length > 0) await retrain(relearn);
      if (taken.length > 0 || parts.source.caughtUp?.() === false) lastRecordAt = Date.now();
      else if (parts.idleExitMs != null && Date.now() - lastRecordAt >= parts.idleExitMs) {
        await iterator.return?.();
        break;
      }
      clock.record('source', records.length, records.length, Number(process.hrtime.bigint() - readStart) / 1e9);
      if (stale()) await resetForNewEpoch();
      // Taken before a rebalance that came since (relearning can take seconds): these
      // records belong to the old epoch, maybe to another worker now. Processing them in
      // the new one would publish them beside that worker's rows. They come again.
      if ((parts.source.epoch ?? 0) !== takenIn) {
        progress.rowsReplayed += records.length;
        continue;
      }
      progress.rowsIn += records.length;
      tracker.track(records.map((r) => r.position));

      const decoded = await clock.time(
        'decode',
        records.length,
        () => records.map((r) => decodeRecord(r, decodeOptions)),
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
        if (cleaned.length > 0) bootstrapStartedAt ??= Date.now();
        bootstrap.push(...cleaned);
        if (bootstrap.length >= parts.bootstrapRows || bootstrapWaitedTooLong()) await finishBootstrap();
      }
      await flushOnSchedule();
      if ((parts.limit !== null && progress.rowsIn >= parts.limit) || parts.signal.aborted) {
        await iterator.return?.();
        break;
      }
    }
    aborted = parts.signal.aborted;
    // End of input (or shutdown): drain in data-flow order so nothing buffered is lost.
    await finishBootstrap();
    await runModel(parts.builder.flush());
    if (!stale()) {
      published(await forThisEpoch((options) => parts.sink.flush(options)));
      await commitDone();
    }
    if (stale()) await resetForNewEpoch();
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

function column<T extends Int8 | Int32 | Int64 | TimestampMillisecond | Utf8>(batch: RecordBatch, name: string): Vector<T> {
  const vector = batch.getChild(name);
  if (!vector) throw new Error(`batch has no ${name} column`);
  return vector as Vector<T>;
}

/**
 * Feeds the detector one 0/1 error per labelled row (pre-training score vs label): a few
 * float operations per row (≈ 0.1 µs measured), so no batching is needed.
 */
function detectDrift(
  batch: RecordBatch,
  scores: Float32Array,
  drift: Adwin,
  metrics: PipelineMetrics,
  onDrift: ((event: DriftEvent) => void) | undefined,
): void {
  const labels = column<Int8>(batch, Columns.LABEL);
  if (labels.nullCount === batch.numRows) return;
  for (let i = 0; i < batch.numRows; i++) {
    const label = labels.get(i);
    const score = scores[i]!;
    if (label === null || !Number.isFinite(score)) continue;
    // ADWIN also cuts when the error falls (a fresh model learning); only a rise is drift.
    if (!drift.update(predictedLabel(score) === label ? 0 : 1) || drift.lastChange !== 'increase') continue;
    metrics.driftDetected.inc();
    onDrift?.({
      errorRate: drift.estimate,
      window: drift.width,
      at: {
        source: column<Utf8>(batch, Columns.SOURCE).get(i)!,
        partition: column<Int32>(batch, Columns.PARTITION).get(i)!,
        offset: String(column<Int64>(batch, Columns.OFFSET).get(i)),
      },
      batch: sourceRanges(batch),
    });
  }
}

/** Separates records handed over again only to re-train the model from new ones. */
function splitRetrainOnly(taken: RawRecord[], source: Source): { relearn: RawRecord[]; records: RawRecord[] } {
  const isRetrainOnly = source.isRetrainOnly?.bind(source);
  // The usual case, nothing to relearn, allocates nothing.
  if (!isRetrainOnly || !taken.some((record) => isRetrainOnly(record.position))) return { relearn: [], records: taken };
  const relearn: RawRecord[] = [];
  const records: RawRecord[] = [];
  for (const record of taken) (isRetrainOnly(record.position) ? relearn : records).push(record);
  return { relearn, records };
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
    rejected.push({ position: m.position, reason, detail, original, ...(m.key === undefined ? {} : { key: m.key }) });
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
