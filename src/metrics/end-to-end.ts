import type { Histogram } from 'prom-client';

/** Rows per (source, partition) held at most; beyond it new rows are not observed (and counted). */
export const MAX_PENDING_ROWS = 1 << 20;

/** A FIFO of (offset, timestamp) pairs in two growable typed arrays. */
class PendingRows {
  offsets = new Float64Array(256);
  timestamps = new Float64Array(256);
  head = 0;
  tail = 0;

  push(offset: number, timestampMs: number): boolean {
    if (this.tail === this.offsets.length) {
      const live = this.tail - this.head;
      if (live >= MAX_PENDING_ROWS) return false;
      // Compact, and grow when more than half is live.
      const capacity = live * 2 > this.offsets.length ? this.offsets.length * 2 : this.offsets.length;
      const offsets = new Float64Array(Math.min(capacity, MAX_PENDING_ROWS));
      const timestamps = new Float64Array(offsets.length);
      offsets.set(this.offsets.subarray(this.head, this.tail));
      timestamps.set(this.timestamps.subarray(this.head, this.tail));
      this.offsets = offsets;
      this.timestamps = timestamps;
      this.head = 0;
      this.tail = live;
    }
    this.offsets[this.tail] = offset;
    this.timestamps[this.tail] = timestampMs;
    this.tail++;
    return true;
  }
}

/**
 * End-to-end latency: from a record's source timestamp to the moment the file holding its
 * row became durable. The pipeline reports rows as they are handed to the sink
 * (`written`) and files as they are published (`durable`); each published row is
 * observed once. Rows without a timestamp (replay) are never held. Per open
 * (source, partition) the pending rows live in typed arrays bounded by MAX_PENDING_ROWS
 * (an open file holds at most `rotateRows` rows, far fewer).
 */
export class EndToEndLatency {
  readonly #histogram: Histogram;
  readonly #pending = new Map<string, PendingRows>();
  /** Rows not observed because a partition's buffer was full. */
  unobserved = 0;

  constructor(histogram: Histogram) {
    this.#histogram = histogram;
  }

  /** A row handed to the sink (offsets increase within a source/partition). */
  written(source: string, partition: number, offset: number, timestampMs: number): void {
    const key = `${source}\u0000${partition}`;
    let rows = this.#pending.get(key);
    if (!rows) {
      rows = new PendingRows();
      this.#pending.set(key, rows);
    }
    if (!rows.push(offset, timestampMs)) this.unobserved++;
  }

  /** A file is durable: observes every pending row of its partition up to its last offset. */
  durable(source: string, partition: number, lastOffset: number, nowMs = Date.now()): void {
    const key = `${source}\u0000${partition}`;
    const rows = this.#pending.get(key);
    if (!rows) return;
    while (rows.head < rows.tail && rows.offsets[rows.head]! <= lastOffset) {
      this.#histogram.observe(Math.max(0, (nowMs - rows.timestamps[rows.head]!) / 1000));
      rows.head++;
    }
    if (rows.head === rows.tail) this.#pending.delete(key);
  }

  /** Rows held, over all partitions. */
  get pendingCount(): number {
    let n = 0;
    for (const rows of this.#pending.values()) n += rows.tail - rows.head;
    return n;
  }

  /** Forgets every pending row (their files were discarded: a rebalance or a failed write). */
  clear(): void {
    this.#pending.clear();
  }
}
