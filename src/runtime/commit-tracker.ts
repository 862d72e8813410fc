import type { SourcePosition } from '../message.js';
import type { DurableFile } from '../sinks/sink.js';

interface PartitionState {
  source: string;
  partition: number;
  /** Offsets taken from the source and not yet done, in the order they were taken. */
  pending: bigint[];
  /** The source timestamp (ms) of each pending record, NaN when it has none. */
  timestamps: number[];
  head: number;
  /** Done offsets that are not at the head yet (a dead letter behind an open file's rows). */
  doneEarly: Set<bigint>;
  /** Highest offset such that it and everything before it is done; null if none yet. */
  doneThrough: bigint | null;
  committedThrough: bigint | null;
}

/**
 * Knows, per partition, up to which offset every record is done: written to a durable
 * file or delivered as a dead letter. Only that offset may be committed to the source:
 * a record still in the batcher, the model or an open Parquet file holds the commit back
 * even when later records (e.g. dead letters) are already done.
 */
export class CommitTracker {
  readonly #partitions = new Map<string, PartitionState>();

  /** Records taken from the source, in source order within each partition. */
  track(positions: Iterable<SourcePosition>): void {
    for (const p of positions) {
      const state = this.#state(p.source, p.partition);
      state.pending.push(p.offset);
      state.timestamps.push(p.timestampMs ?? Number.NaN);
    }
  }

  /** Records that left as dead letters (their delivery is acknowledged). */
  markDone(positions: Iterable<SourcePosition>): void {
    for (const p of positions) {
      const state = this.#state(p.source, p.partition);
      state.doneEarly.add(p.offset);
      this.#advance(state);
    }
  }

  /**
   * A durable file holds every row of its partition between its first and last offset.
   * Returns the source timestamps (ms) of the rows it made durable, for the end-to-end
   * latency; records without a timestamp (replay) and dead letters are not included.
   */
  markDurable(file: DurableFile): number[] {
    const state = this.#state(file.source, file.partition);
    const timestamps: number[] = [];
    for (let i = state.head; i < state.pending.length; i++) {
      const offset = state.pending[i]!;
      if (offset > file.lastOffset) break;
      // Already done here means a dead letter, not one of this file's rows.
      if (offset < file.firstOffset || state.doneEarly.has(offset)) continue;
      state.doneEarly.add(offset);
      if (!Number.isNaN(state.timestamps[i]!)) timestamps.push(state.timestamps[i]!);
    }
    this.#advance(state);
    return timestamps;
  }

  /** The last done position of each partition that moved since the previous call. */
  takeCommittable(): SourcePosition[] {
    const out: SourcePosition[] = [];
    for (const state of this.#partitions.values()) {
      if (state.doneThrough !== null && state.doneThrough !== state.committedThrough) {
        state.committedThrough = state.doneThrough;
        out.push({ source: state.source, partition: state.partition, offset: state.doneThrough, timestampMs: null });
      }
    }
    return out;
  }

  /**
   * Records taken and neither written nor dead-lettered yet, over all partitions. A dead
   * letter delivered behind rows of an open file is done, though it cannot be committed yet.
   */
  get inFlightCount(): number {
    let n = 0;
    for (const state of this.#partitions.values()) n += state.pending.length - state.head - state.doneEarly.size;
    return n;
  }

  /** Forgets everything in flight (after a rebalance, the source replays from durable state). */
  clear(): void {
    this.#partitions.clear();
  }

  #state(source: string, partition: number): PartitionState {
    const key = `${source}\u0000${partition}`;
    let state = this.#partitions.get(key);
    if (!state) {
      state = { source, partition, pending: [], timestamps: [], head: 0, doneEarly: new Set(), doneThrough: null, committedThrough: null };
      this.#partitions.set(key, state);
    }
    return state;
  }

  #advance(state: PartitionState): void {
    while (state.head < state.pending.length && state.doneEarly.delete(state.pending[state.head]!)) {
      state.doneThrough = state.pending[state.head]!;
      state.head++;
    }
    // Compact now and then so a long-running partition's array does not grow forever.
    if (state.head > 4096 && state.head * 2 > state.pending.length) {
      state.pending = state.pending.slice(state.head);
      state.timestamps = state.timestamps.slice(state.head);
      state.head = 0;
    }
  }
}
