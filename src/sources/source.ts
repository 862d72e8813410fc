import type { RawRecord, SourcePosition } from '../message.js';

/**
 * A source of raw records. Kafka and Parquet replay each implement it in one file.
 * Records come in batches so that per-record overhead stays off the hot path.
 */
export interface Source {
  /** A short name used in output paths and metric labels, e.g. a topic or file name. */
  readonly name: string;
  /** Total number of records, when known up front (replay); used for progress bars. */
  readonly size: number | null;
  /**
   * Sources whose records can be taken away mid-stream (a Kafka rebalance) count up here
   * each time that happens. Everything in flight from an earlier epoch must then be
   * dropped unpublished: the source delivers it again from the durable state.
   * Absent for sources that never do this (replay).
   */
  readonly epoch?: number;
  /**
   * Aborts when the current epoch ends. A sink retrying a failing write for records of
   * that epoch then gives up instead of publishing them late, maybe beside the rows of
   * the worker that owns their partition now.
   */
  readonly epochSignal?: AbortSignal;
  /**
   * Yields record batches until the source is exhausted or `signal` aborts. A source that
   * can go quiet yields empty batches now and then, so that time-based flushes still run.
   */
  batches(signal: AbortSignal): AsyncIterable<RawRecord[]>;
  /**
   * True for a record handed over again only so that a model restored from an older
   * checkpoint relearns it: its output is durable already, so it is trained on, never
   * written, dead-lettered or committed again. Absent: every record is new.
   */
  isRetrainOnly?(position: SourcePosition): boolean;
  /**
   * False while the source is known to have more to deliver, or cannot tell yet (a Kafka
   * consumer still joining its group). Absent: the source never says.
   */
  caughtUp?(): boolean;
  /** Acknowledge that every record up to and including these positions is durable. */
  commit(positions: readonly SourcePosition[]): Promise<void>;
  /** Safe to call twice. */
  close(): Promise<void>;
}
