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
  /** Yields record batches until the source is exhausted or `signal` aborts. */
  batches(signal: AbortSignal): AsyncIterable<RawRecord[]>;
  /** Acknowledge that every record up to and including these positions is durable. */
  commit(positions: readonly SourcePosition[]): Promise<void>;
  /** Safe to call twice. */
  close(): Promise<void>;
}
