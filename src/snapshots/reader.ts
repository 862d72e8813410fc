/**
 * Reads the snapshot topic (topic.ts): the latest complete snapshot of each
 * producer once (`readLatestSnapshots`), or that and every later one as it completes
 * (`SnapshotWatcher`).
 *
 * Each read has a consumer in a fresh random group that never commits (kafkajs 2.2.4 has
 * no manual partition assignment): it reads from the start of the log up to the high
 * watermark taken when the read began, and, for a watcher, on from there for good. Chunks
 * are assembled by chunks.ts; only the survivors are decoded.
 */
import { randomUUID } from 'node:crypto';
import { SourceError, TextstreamError } from '../errors.js';
import type { Consumer, Kafka, KafkaMessage } from '../kafka/types.js';
import { decodeSnapshot, type ModelSnapshot } from '../model/snapshot-codec.js';
import { IgnoredReasons, SnapshotAssembler, type AssembledSnapshot, type IgnoredSnapshot } from './chunks.js';

/** Per fetch: several chunks at once, while one response stays a bounded buffer. */
const FETCH_BYTES = 16 * 1024 * 1024;
/** Longest broker-side wait of an idle fetch: also how long `close()` may wait for one. */
const FETCH_WAIT_MS = 200;
const DEFAULT_READ_TIMEOUT_MS = 30_000;

export interface SnapshotsRead {
  topic: string;
  /** The latest complete snapshot of each producer, in the order they completed (newest last). */
  snapshots: ModelSnapshot[];
  /** What was skipped, and why. */
  ignored: IgnoredSnapshot[];
  /** The high watermark the read went up to (decimal string). */
  highWatermark: string;
}

export interface ReadSnapshotsOptions {
  /** Longest time for the whole read, connecting included (default 30 s). */
  timeoutMs?: number;
  /** Bytes of unfinished snapshots held at most (default 256 MiB). */
  maxPendingBytes?: number;
}

/**
 * Reads `topic` from its start up to its high watermark at the time of the call and
 * returns the latest complete, intact snapshot of each producer, plus what it skipped.
 * An empty topic returns at once, without joining a group. A missing topic, or one still
 * not read to the end after `timeoutMs`, is a retryable SourceError naming the topic.
 */
export async function readLatestSnapshots(kafka: Kafka, topic: string, options: ReadSnapshotsOptions = {}): Promise<SnapshotsRead> {
  const reader = new TopicReader(kafka, topic, { ...options, follow: false });
  try {
    return await reader.start();
  } finally {
    await reader.close();
  }
}

export interface SnapshotWatcherOptions extends ReadSnapshotsOptions {
  /**
   * Called with each snapshot completed after the watcher caught up, newer than its
   * producer's previous one. Runs inside the fetch loop: hand the snapshot over (e.g. keep
   * it for the next batch boundary) rather than work on it here.
   */
  onSnapshot: (snapshot: ModelSnapshot) => void;
  /** Told about chunks skipped after the catch-up (log `ignored.message` at warn). */
  onIgnored?: (ignored: IgnoredSnapshot) => void;
  /** Told when the consumer stops for good, or a callback throws. */
  onError?: (error: SourceError) => void;
}

/**
 * Follows the snapshot topic for a scorer's hot swap (or a trainer's averaging): `start`
 * reads the topic to its current end like `readLatestSnapshots` (its result is
 * `initial`), then keeps reading and calls `onSnapshot` for every snapshot that completes
 * later. One pass, so a snapshot being published while the watcher starts is neither
 * missed nor delivered twice. Memory: the latest snapshot per producer, plus chunks of
 * unfinished ones (a producer's are dropped when a newer snapshot of it completes; all
 * are capped by `maxPendingBytes`). `close()` stops it and is safe to call twice.
 */
export class SnapshotWatcher {
  readonly topic: string;
  /** What the topic held when the watcher started. */
  readonly initial: SnapshotsRead;
  readonly #reader: TopicReader;

  private constructor(reader: TopicReader, initial: SnapshotsRead) {
    this.topic = initial.topic;
    this.#reader = reader;
    this.initial = initial;
  }

  static async start(kafka: Kafka, topic: string, options: SnapshotWatcherOptions): Promise<SnapshotWatcher> {
    const reader = new TopicReader(kafka, topic, { ...options, follow: true });
    try {
      return new SnapshotWatcher(reader, await reader.start());
    } catch (err) {
      await reader.close();
      throw err;
    }
  }

  /** The latest snapshot of each producer seen so far, newest last. */
  latest(): ModelSnapshot[] {
    return this.#reader.latest();
  }

  close(): Promise<void> {
    return this.#reader.close();
  }
}

interface ReaderOptions extends Partial<SnapshotWatcherOptions> {
  /** Keep reading past the high watermark taken at the start (a watcher), or stop there. */
  follow: boolean;
}

/**
 * A producer's latest complete snapshot. Until the catch-up ends it stays assembled but
 * undecoded, since most snapshots read then are superseded before it ends.
 */
type Latest = { firstOffset: bigint; snapshot: ModelSnapshot } | { firstOffset: bigint; snapshot: null; assembled: AssembledSnapshot };

/** One pass over the topic with a consumer of its own; see readLatestSnapshots and SnapshotWatcher. */
class TopicReader {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #opts: ReaderOptions;
  readonly #timeoutMs: number;
  readonly #assembler: SnapshotAssembler;
  /** Per producer, its latest complete snapshot; Map order is completion order once re-inserted. */
  readonly #latest = new Map<string, Latest>();
  readonly #ignored: IgnoredSnapshot[] = [];
  #consumer: Consumer | null = null;
  #target = 0n;
  /** The last offset handled: records at or below it (re-delivered after a consumer restart) are skipped. */
  #position = -1n;
  #caughtUp = false;
  #onCaughtUp: (() => void) | null = null;
  #onFailed: ((err: SourceError) => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(kafka: Kafka, topic: string, opts: ReaderOptions) {
    if (typeof topic !== 'string' || topic.length === 0) throw new SourceError(`snapshot topic must be a non-empty string, got ${JSON.stringify(topic)}`);
    this.#assembler = new SnapshotAssembler({ topic, maxPendingBytes: opts.maxPendingBytes, onIgnored: (ignored) => this.#report(ignored) });
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    if (!(this.#timeoutMs > 0)) throw new SourceError(`timeoutMs must be > 0, got ${String(opts.timeoutMs)}`);
    this.#kafka = kafka;
    this.#topic = topic;
    this.#opts = opts;
  }

  /** Reads up to the high watermark taken now; resolves with the latest snapshots there. */
  async start(): Promise<SnapshotsRead> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const at = this.#position < 0n ? 'no record read' : `read through offset ${this.#position}`;
        reject(new SourceError(`reading snapshot topic ${this.#topic} timed out after ${this.#timeoutMs} ms: ${at} of ${this.#target} records`, { canRetry: true }));
      }, this.#timeoutMs);
    });
    const catchUp = this.#catchUp().catch((err: unknown) => {
      if (err instanceof TextstreamError) throw err;
      throw new SourceError(`reading snapshot topic ${this.#topic} failed: ${message(err)}`, { cause: err, canRetry: true });
    });
    // After a timeout the catch-up may still fail (close() cuts it short): nobody awaits it then.
    catchUp.catch(() => undefined);
    try {
      await Promise.race([catchUp, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { topic: this.#topic, snapshots: this.latest(), ignored: [...this.#ignored], highWatermark: String(this.#target) };
  }

  latest(): ModelSnapshot[] {
    return [...this.#latest.values()].flatMap((l) => (l.snapshot ? [l.snapshot] : []));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const consumer = this.#consumer;
      this.#consumer = null;
      if (consumer === null) return;
      try {
        await consumer.disconnect();
      } catch (err) {
        throw new SourceError(`closing the reader of snapshot topic ${this.#topic} failed: ${message(err)}`, { cause: err });
      }
    })();
    return this.#closing;
  }

  async #catchUp(): Promise<void> {
    this.#target = await this.#highWatermark();
    // Closed meanwhile (start timed out): a consumer made now would never be disconnected.
    if (this.#closing !== null) return;
    if (this.#target === 0n) this.#caughtUp = true;
    // Nothing to read and nothing to follow: no consumer, no group join.
    if (this.#caughtUp && !this.#opts.follow) return;
    const reached = new Promise<void>((resolve, reject) => {
      this.#onCaughtUp = resolve;
      this.#onFailed = reject;
    });
    const consumer = this.#kafka.consumer({
      // A group of its own, never committed: every reader reads the whole topic.
      groupId: `textstream-snapshot-reader-${randomUUID()}`,
      maxBytes: FETCH_BYTES,
      maxBytesPerPartition: FETCH_BYTES,
      maxWaitTimeInMs: FETCH_WAIT_MS,
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Also fires for batches of control records only, which eachBatch never sees.
      if (BigInt(payload.lastOffset) + 1n >= this.#target) this.#markCaughtUp();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return; // kafkajs reconnects; re-delivered records are skipped by offset.
      const err = new SourceError(`the reader of snapshot topic ${this.#topic} stopped: ${message(payload.error)}`, { cause: payload.error, canRetry: true });
      if (!this.#caughtUp) this.#onFailed?.(err);
      else this.#opts.onError?.(err);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      // Every record of a batch is handled, even when kafkajs is stopping: it is cheap, and
      // END_BATCH_PROCESS then never reports progress past a record that was not seen.
      eachBatch: ({ batch }) => {
        for (const record of batch.messages) this.#onRecord(record);
        return Promise.resolve();
      },
    });
    if (this.#caughtUp) this.#markCaughtUp();
    await reached;
  }

  /** The partition's high watermark; checks the topic exists and has one partition. */
  async #highWatermark(): Promise<bigint> {
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      if (!(await admin.listTopics()).includes(this.#topic)) {
        throw new SourceError(`snapshot topic ${this.#topic} does not exist; a trainer creates it on its first publish`, { canRetry: true });
      }
      const offsets = await admin.fetchTopicOffsets(this.#topic);
      if (offsets.length !== 1) {
        throw new SourceError(`snapshot topic ${this.#topic} has ${offsets.length} partitions; snapshots need exactly 1`, { canRetry: false });
      }
      const { high, low } = offsets[0]!;
      return BigInt(high) > BigInt(low) ? BigInt(high) : 0n;
    } catch (err) {
      if (err instanceof TextstreamError) throw err;
      throw new SourceError(`reading the offsets of snapshot topic ${this.#topic} failed: ${message(err)}`, { cause: err, canRetry: true });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  #onRecord(record: KafkaMessage): void {
    const offset = BigInt(record.offset);
    if (offset <= this.#position) return;
    // A one-off read stops at the watermark it started with; what came later is the next read's.
    if (!this.#opts.follow && offset >= this.#target) return;
    this.#position = offset;
    const assembled = this.#assembler.add(offset, record);
    if (assembled !== null) this.#onAssembled(assembled);
    if (!this.#caughtUp && offset + 1n >= this.#target) this.#markCaughtUp();
  }

  #onAssembled(a: AssembledSnapshot): void {
    const previous = this.#latest.get(a.producer);
    // Only ever forward: never replace a producer's snapshot by one that started earlier.
    if (previous !== undefined && previous.firstOffset >= a.firstOffset) return;
    if (!this.#caughtUp) {
      // Up to the watermark, superseded snapshots are common: decode only the survivors, at the end.
      this.#latest.delete(a.producer);
      this.#latest.set(a.producer, { firstOffset: a.firstOffset, snapshot: null, assembled: a });
      return;
    }
    const snapshot = this.#decode(a);
    if (snapshot === null) return;
    this.#latest.delete(a.producer);
    this.#latest.set(a.producer, { firstOffset: a.firstOffset, snapshot });
    try {
      this.#opts.onSnapshot?.(snapshot);
    } catch (err) {
      this.#opts.onError?.(new SourceError(`onSnapshot failed for snapshot ${a.id} from topic ${this.#topic}: ${message(err)}`, { cause: err }));
    }
  }

  #markCaughtUp(): void {
    if (this.#caughtUp && this.#onCaughtUp === null) return;
    // #caughtUp is set only at the end: what is reported until then belongs to the result.
    for (const [producer, l] of [...this.#latest]) {
      if (l.snapshot !== null) continue;
      const snapshot = this.#decode(l.assembled);
      if (snapshot === null) this.#latest.delete(producer);
      else this.#latest.set(producer, { firstOffset: l.firstOffset, snapshot });
    }
    // A one-off read reports what never completed; a watcher keeps waiting for it.
    if (!this.#opts.follow) this.#assembler.finish();
    this.#caughtUp = true;
    const resolve = this.#onCaughtUp;
    this.#onCaughtUp = null;
    resolve?.();
  }

  #decode(a: AssembledSnapshot): ModelSnapshot | null {
    try {
      return decodeSnapshot(a.payload);
    } catch (err) {
      this.#report({
        reason: IgnoredReasons.UNDECODABLE,
        id: a.id,
        producer: a.producer,
        firstOffset: String(a.firstOffset),
        lastOffset: String(a.lastOffset),
        message: `snapshot ${a.id} from ${a.producer} on topic ${this.#topic} is complete but does not decode: ${message(err)}`,
      });
      return null;
    }
  }

  #report(ignored: IgnoredSnapshot): void {
    if (!this.#caughtUp || !this.#opts.follow) this.#ignored.push(ignored);
    else this.#opts.onIgnored?.(ignored);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
