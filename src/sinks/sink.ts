import type { RecordBatch } from 'apache-arrow';
import type { DeadLetter } from '../message.js';

/** A batch after the model has scored it (scores were made before training on it). */
export interface ScoredBatch {
  /** The Arrow batch as built by the batcher (schema in src/batch/schema.ts). */
  batch: RecordBatch;
  /** Probability of label 1, one per row, same order as `batch`. */
  scores: Float32Array;
  /** Version of the model that made `scores`. */
  modelVersion: number;
  /** When scoring finished, ms since the epoch. */
  processedAtMs: number;
}

/** A file that is complete on disk: written, flushed and renamed into place. */
export interface DurableFile {
  path: string;
  source: string;
  partition: number;
  firstOffset: bigint;
  lastOffset: bigint;
  rows: number;
  bytes: number;
}

/** Per call: when `signal` aborts, a call that is retrying a failing store rejects at once. */
export interface SinkCallOptions {
  signal?: AbortSignal;
}

/** Where scored rows go. Parquet is the default; one implementation per file. */
export interface Sink {
  /** True for a sink that keeps nothing (a trainer's): its rows are not counted as output; the scorers count theirs. */
  readonly keepsNothing?: boolean;
  /**
   * Appends the rows; returns the files that became durable because of this write. May
   * take long: an implementation can retry a failing store before it returns (the caller
   * then commits nothing and pulls nothing meanwhile, which is the backpressure wanted).
   */
  write(scored: ScoredBatch, options?: SinkCallOptions): Promise<DurableFile[]>;
  /** Finishes every open file; returns them. */
  flush(options?: SinkCallOptions): Promise<DurableFile[]>;
  /** Flushes, then releases resources. Safe to call twice. */
  close(): Promise<DurableFile[]>;
  /** Discards open temporary files without publishing them; the sink stays usable. */
  discard(): Promise<void>;
  /** Discards open temporary files and closes the sink. Safe to call twice. */
  abort(): Promise<void>;
}

/** Where dead letters go: a topic for Kafka, a file for replay. */
export interface DeadLetterSink {
  /** True for a sink that keeps nothing (a trainer's): its dead letters are not counted; the scorers count theirs. */
  readonly keepsNothing?: boolean;
  write(letters: readonly DeadLetter[]): Promise<void>;
  /** Safe to call twice. */
  close(): Promise<void>;
}
