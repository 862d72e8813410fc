/**
 * The pipeline's driver, `runPipeline`: one run from source to sink over the parts a
 * worker or a replay assembles (components.ts), and the interfaces it sees them through.
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { RecordBatch } from 'apache-arrow';
import type { BatchBuilder } from '../batch/builder.js';
import type { DeadLetter, Message, RawRecord, TokenizedMessage } from '../message.js';
import type { PipelineMetrics } from '../metrics/definitions.js';
import type { Adwin } from '../model/drift.js';
import type { DeadLetterSink, DurableFile, Sink, SinkCallOptions } from '../sinks/sink.js';
import { decodeRecord, type DecodeOptions } from '../sources/decode.js';
import type { Source } from '../sources/source.js';
import { makeCleanStage, messagesAfterCleaning, type CleanPoolSettings, type CleanStage } from './clean-stage.js';
import type { CleanFunction } from './cleaner.js';
import { CommitTracker } from './commit-tracker.js';
import { detectDrift, type DriftEvent } from './drift-watch.js';
import { StageClock, type StageTotals } from './stage-clock.js';
import type { Stage } from '../metrics/definitions.js';

export type { DriftEvent } from './drift-watch.js';

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
  /** The cleaning function, when cleaning runs on this thread (no `cleanPool`). */
  clean: CleanFunction;
  /** Clean on a pool of worker threads instead (`clean.threads` > 0); null: with `clean`, on this thread. */
  cleanPool?: CleanPoolSettings | null;
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
 * With `cleanPool`, cleaning (the costliest stage on the CPU) runs on worker threads while
 * this thread tokenizes and runs the model on the batches cleaned before: up to
 * `maxBatchesInFlight` source batches are being cleaned at once, taken back in the order
 * they were taken from the source. Without it, each batch is cleaned here before the next
 * is read, as when one core was all there was to use.
 */
export async function runPipeline(parts: PipelineParts): Promise<RunSummary> {
  const run = new PipelineRun(parts);
  let aborted = false;
  try {
    await run.consumeSource();
    aborted = parts.signal.aborted;
    await run.drain();
  } catch (err) {
    await parts.sink.abort();
    throw err;
  } finally {
    await run.close();
  }
  run.checkAccounting();
  return run.summary(aborted);
}

/** One run's state (counters, offsets in flight, the bootstrap window) and its steps. */
class PipelineRun {
  readonly #parts: PipelineParts;
  readonly #started = process.hrtime.bigint();
  readonly #clock: StageClock;
  readonly #progress: PipelineProgress = {
    rowsIn: 0,
    rowsScored: 0,
    rowsTrained: 0,
    rowsWritten: 0,
    deadLetters: 0,
    modelVersion: 0,
    rowsReplayed: 0,
    rowsRetrained: 0,
  };
  readonly #tracker = new CommitTracker();
  #stateEpoch: number;
  #lastFlushAt = Date.now();
  readonly #deadLettersByReason: Record<string, number> = {};
  readonly #files: DurableFile[] = [];
  #bootstrap: Message[] = [];
  #bootstrapStartedAt: number | null = null;
  #lastRecordAt = Date.now();
  readonly #decodeOptions: DecodeOptions;
  readonly #cleaning: CleanStage;

  constructor(parts: PipelineParts) {
    this.#parts = parts;
    this.#clock = new StageClock(parts.metrics);
    this.#cleaning = makeCleanStage(parts.cleanPool ?? null, parts.clean);
    parts.metrics.readCleanQueueFrom(() => ({ batches: this.#cleaning.inFlight, texts: this.#cleaning.cleaner.queuedTexts }));
    this.#stateEpoch = parts.source.epoch ?? 0;
    this.#decodeOptions = { maxMessageBytes: parts.maxMessageBytes, labels: parts.labels ?? {} };
  }

  /** Takes the source's batches until it ends, the limit is reached, the run is stopped or the source idles out. */
  async consumeSource(): Promise<void> {
    const parts = this.#parts;
    const iterator = parts.source.batches(parts.signal)[Symbol.asyncIterator]();
    for (;;) {
      const readStart = process.hrtime.bigint();
      const next = await iterator.next();
      if (next.done) break;
      const takenIn = parts.source.epoch ?? 0;
      const taken = takeWithinLimit(next.value, parts.limit, this.#progress.rowsIn);
      const { relearn, records } = splitRetrainOnly(taken, parts.source);
      if (relearn.length > 0) await this.#retrain(relearn);
      if (taken.length > 0 || parts.source.caughtUp?.() === false) this.#lastRecordAt = Date.now();
      else if (parts.idleExitMs != null && Date.now() - this.#lastRecordAt >= parts.idleExitMs) {
        await iterator.return?.();
        break;
      }
      this.#clock.record('source', records.length, records.length, Number(process.hrtime.bigint() - readStart) / 1e9);
      if (this.#stale()) await this.#resetForNewEpoch();
      // Taken before a rebalance that came since (relearning can take seconds): these
      // records belong to the old epoch, maybe to another worker now. Processing them in
      // the new one would publish them beside that worker's rows. They come again.
      if ((parts.source.epoch ?? 0) !== takenIn) {
        this.#progress.rowsReplayed += records.length;
        continue;
      }
      await this.#processRecords(records);
      await this.#flushOnSchedule();
      if ((parts.limit !== null && this.#progress.rowsIn >= parts.limit) || parts.signal.aborted) {
        await iterator.return?.();
        break;
      }
    }
  }

  /** End of input (or shutdown): drains in data-flow order so nothing buffered is lost. */
  async drain(): Promise<void> {
    await this.#takeCleaned(true);
    await this.#finishBootstrap();
    await this.#runModel(this.#parts.builder.flush());
    if (!this.#stale()) {
      this.#published(await this.#forThisEpoch((options) => this.#parts.sink.flush(options)));
      await this.#commitDone();
    }
    if (this.#stale()) await this.#resetForNewEpoch();
  }

  /** Stops the cleaning threads; whatever they still held was dropped with its epoch or failed the run. */
  async close(): Promise<void> {
    await this.#cleaning.close();
  }

  /** Every record taken in left as an output row or a dead letter. */
  checkAccounting(): void {
    const progress = this.#progress;
    const accounted = progress.rowsWritten + progress.deadLetters;
    if (accounted !== progress.rowsIn) {
      throw new Error(
        `accounting mismatch: ${progress.rowsIn} rows in, ${progress.rowsWritten} written + ${progress.deadLetters} dead letters`,
      );
    }
  }

  summary(aborted: boolean): RunSummary {
    return {
      ...this.#progress,
      deadLettersByReason: this.#deadLettersByReason,
      files: this.#files,
      stages: this.#clock.totals,
      seconds: Number(process.hrtime.bigint() - this.#started) / 1e9,
      aborted,
    };
  }

  /**
   * New records of the current epoch: counted in, decoded, and handed to the clean stage;
   * then the batches cleaned by now (and, while too many are in flight, the oldest) go on.
   */
  async #processRecords(records: RawRecord[]): Promise<void> {
    if (records.length > 0) {
      this.#progress.rowsIn += records.length;
      this.#tracker.track(records.map((r) => r.position));
      this.#cleaning.submit(await this.#decode(records), this.#stateEpoch);
    }
    await this.#takeCleaned(false);
    // A quiet stream brings no batch to check the bootstrap window's age on.
    if (!this.#parts.vocabulary.frozen && this.#bootstrapWaitedTooLong()) await this.#finishBootstrap();
  }

  /** The records' messages that decode; the others leave as dead letters. */
  async #decode(records: RawRecord[]): Promise<Message[]> {
    const decoded = await this.#clock.time(
      'decode',
      records.length,
      () => records.map((r) => decodeRecord(r, this.#decodeOptions)),
      (d) => d.filter((x) => x.ok).length,
    );
    const messages: Message[] = [];
    const rejected: DeadLetter[] = [];
    for (const d of decoded) {
      if (d.ok) messages.push(d.message);
      else rejected.push(d.deadLetter);
    }
    await this.#sendDeadLetters(rejected);
    return messages;
  }

  /**
   * Takes cleaned batches back, oldest first: those cleaned already, any the bound on
   * batches in flight requires, or (`all`) every one. Each goes on to tokenize and the
   * model, or to the vocabulary's bootstrap window.
   */
  async #takeCleaned(all: boolean): Promise<void> {
    for (;;) {
      // Taken before a rebalance: the reset drops the batches in flight, cleaned or not (they come again).
      if (this.#stale()) {
        await this.#resetForNewEpoch();
        return;
      }
      const cleaned = await this.#cleaning.next(all || this.#cleaning.full);
      if (!cleaned) return;
      if (this.#stale()) continue;
      this.#clock.record('clean', cleaned.input, cleaned.kept.length, cleaned.seconds);
      await this.#sendDeadLetters(cleaned.rejected);
      if (this.#parts.vocabulary.frozen) await this.#tokenizeAndBatch(cleaned.kept);
      else await this.#collectBootstrap(cleaned.kept);
    }
  }

  /** Buffers messages until the vocabulary can be fitted on the bootstrap window. */
  async #collectBootstrap(cleaned: Message[]): Promise<void> {
    if (cleaned.length > 0) this.#bootstrapStartedAt ??= Date.now();
    this.#bootstrap.push(...cleaned);
    if (this.#bootstrap.length >= this.#parts.bootstrapRows || this.#bootstrapWaitedTooLong()) await this.#finishBootstrap();
  }

  async #sendDeadLetters(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.#parts.deadLetters.write(letters);
    this.#tracker.markDone(letters.map((l) => l.position));
    for (const letter of letters) {
      this.#deadLettersByReason[letter.reason] = (this.#deadLettersByReason[letter.reason] ?? 0) + 1;
      if (!this.#parts.deadLetters.keepsNothing) this.#parts.metrics.deadLetters.labels(letter.reason).inc();
    }
    this.#progress.deadLetters += letters.length;
  }

  #published(durable: DurableFile[]): void {
    const counted = !this.#parts.sink.keepsNothing;
    for (const file of durable) {
      const nowMs = Date.now();
      for (const timestampMs of this.#tracker.markDurable(file)) {
        if (counted) this.#parts.metrics.endToEndLatency.observe(Math.max(0, (nowMs - timestampMs) / 1000));
      }
      this.#files.push(file);
      this.#progress.rowsWritten += file.rows;
      if (!counted) continue;
      this.#parts.metrics.outputFiles.inc();
      this.#parts.metrics.outputRows.inc(file.rows);
      this.#parts.metrics.outputBytes.inc(file.bytes);
    }
    if (durable.length > 0) this.#parts.afterPublish?.(durable);
  }

  async #runModel(batch: RecordBatch | null): Promise<void> {
    if (!batch) return;
    this.#parts.metrics.batchRows.observe(batch.numRows);
    const result = await this.#clock.time('model', batch.numRows, () => this.#parts.model.process(batch), (r) => r.scores.length);
    this.#progress.rowsScored += batch.numRows;
    this.#progress.rowsTrained += result.trainedRows;
    this.#progress.modelVersion = result.modelVersion;
    this.#parts.metrics.samplesScored.inc(batch.numRows);
    this.#parts.metrics.samplesTrained.inc(result.trainedRows);
    // The source took these records back while the model ran: publish nothing of them.
    if (this.#stale()) return;
    if (this.#parts.drift) detectDrift(batch, result.scores, this.#parts.drift, this.#parts.metrics, this.#parts.onDrift);
    const scored = { batch, scores: result.scores, modelVersion: result.modelVersion, processedAtMs: Date.now() };
    const durable = await this.#clock.time('sink', batch.numRows, () => this.#forThisEpoch((options) => this.#parts.sink.write(scored, options)), () => batch.numRows);
    this.#published(durable);
    await this.#commitDone();
    await this.#parts.afterBatch?.(this.#progress);
    // The model's work settles through microtasks only; without a macrotask turn here the
    // /metrics server (and signals) wait for several batches (scrapes took 3–5 s in replay).
    await nextMacrotask();
  }

  async #commitDone(): Promise<void> {
    const positions = this.#tracker.takeCommittable();
    if (positions.length > 0 && !this.#stale()) {
      await this.#parts.source.commit(positions);
      this.#parts.metrics.offsetsCommitted.inc();
    }
  }

  #stale(): boolean {
    return (this.#parts.source.epoch ?? 0) !== this.#stateEpoch;
  }

  /**
   * A sink call for records of the current epoch. A rebalance stops it retrying a failing
   * disk (the sink discards its open files): those records are delivered again, perhaps to
   * another worker, so nothing of them is published here.
   */
  async #forThisEpoch(call: (options: SinkCallOptions) => Promise<DurableFile[]>): Promise<DurableFile[]> {
    const signal = this.#parts.source.epochSignal;
    try {
      return await call(signal ? { signal } : {});
    } catch (err) {
      if (this.#stale()) return [];
      throw err;
    }
  }

  /**
   * Drops everything in flight, unpublished; the source delivers it again. A dead letter
   * already delivered but not committed comes again too, and leaves again (the dead-letter
   * topic is at-least-once): it stays counted, in rows in and in dead letters, each time.
   */
  async #resetForNewEpoch(): Promise<void> {
    const dropped = this.#tracker.inFlightCount;
    this.#parts.builder.flush();
    this.#cleaning.discard();
    this.#bootstrap = [];
    this.#bootstrapStartedAt = null;
    await this.#parts.sink.discard();
    this.#tracker.clear();
    this.#progress.rowsIn -= dropped;
    this.#progress.rowsReplayed += dropped;
    this.#stateEpoch = this.#parts.source.epoch ?? 0;
  }

  async #flushOnSchedule(): Promise<void> {
    if (this.#parts.flushIntervalMs == null || Date.now() - this.#lastFlushAt < this.#parts.flushIntervalMs) return;
    this.#lastFlushAt = Date.now();
    await this.#runModel(this.#parts.builder.flush());
    if (this.#stale()) return;
    this.#published(await this.#clock.time('sink', 0, () => this.#forThisEpoch((options) => this.#parts.sink.flush(options)), () => 0));
    await this.#commitDone();
  }

  async #tokenizeAndBatch(messages: Message[]): Promise<void> {
    const tokenized = await this.#clock.time(
      'tokenize',
      messages.length,
      () => messages.map((m): TokenizedMessage => ({ ...m, tokens: this.#parts.vocabulary.encode(m.text) })),
      (t) => t.length,
    );
    const batches: RecordBatch[] = [];
    await this.#clock.time(
      'batch',
      tokenized.length,
      () => {
        for (const message of tokenized) {
          const full = this.#parts.builder.push(message);
          if (full) batches.push(full);
        }
        const aged = this.#parts.builder.flushIfOlderThan();
        if (aged) batches.push(aged);
      },
      () => tokenized.length,
    );
    for (const batch of batches) await this.#runModel(batch);
  }

  #bootstrapWaitedTooLong(): boolean {
    const { bootstrapMaxWaitMs } = this.#parts;
    return bootstrapMaxWaitMs != null && this.#bootstrapStartedAt !== null && Date.now() - this.#bootstrapStartedAt >= bootstrapMaxWaitMs;
  }

  /**
   * Records whose output is durable already, read again because the model restored from
   * its checkpoint had not learnt them yet: trained on, nothing else. Those that failed
   * decoding or cleaning were dead-lettered the first time.
   */
  async #retrain(records: RawRecord[]): Promise<void> {
    const model = this.#parts.model;
    if (!model.retrain || !this.#parts.vocabulary.frozen) return;
    // Older than anything in flight: what the model learns keeps the source's order.
    await this.#takeCleaned(true);
    const messages = records.flatMap((r) => {
      const d = decodeRecord(r, this.#decodeOptions);
      return d.ok ? [d.message] : [];
    });
    const { kept: cleaned } = messagesAfterCleaning(messages, await this.#cleaning.cleaner.clean(messages.map((m) => m.text)));
    const tokenized = cleaned.map((m): TokenizedMessage => ({ ...m, tokens: this.#parts.vocabulary.encode(m.text) }));
    for (const batch of this.#parts.builder.batchesOf(tokenized)) {
      const result = await model.retrain(batch);
      this.#progress.rowsRetrained += batch.numRows;
      this.#parts.metrics.samplesTrained.inc(result.trainedRows);
      await nextMacrotask();
    }
  }

  async #finishBootstrap(): Promise<void> {
    if (this.#parts.vocabulary.frozen) return;
    // Exactly the first `bootstrapRows` messages, however the source happened to batch them.
    const texts = this.#bootstrap.slice(0, this.#parts.bootstrapRows).map((m) => m.text);
    await this.#clock.time('tokenize', 0, () => this.#parts.vocabulary.fitAndFreeze(texts), () => 0);
    const buffered = this.#bootstrap;
    this.#bootstrap = [];
    this.#bootstrapStartedAt = null;
    await this.#tokenizeAndBatch(buffered);
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
