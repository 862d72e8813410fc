import type { Logger } from 'pino';
import { SourceError } from '../errors.js';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from '../kafka/types.js';
import type { RawRecord, SourcePosition } from '../message.js';
import type { Source } from './source.js';

/** Consumer lag of one assigned partition (see `KafkaSource.lag`). */
export interface KafkaPartitionLag {
  topic: string;
  partition: number;
  /** High watermark − the next offset this worker will hand to the pipeline. */
  messages: number;
  /** Now − timestamp of the newest record handed over; 0 when caught up; null if unknown. */
  seconds: number | null;
}

/** What the source knows per assigned partition, for lag at scrape time. */
interface PartitionProgress {
  /** The latest high watermark seen (fetch responses, or the admin API on assignment). */
  highWatermark: bigint;
  /** The next offset the pipeline will be handed (last handed + 1, or the resume point). */
  next: bigint;
  /** Kafka timestamp (ms) of the newest record handed to the pipeline; null before one. */
  newestTimestampMs: number | null;
  /**
   * Before anything was handed over since assignment: the timestamp of the first record
   * fetched, the next one the pipeline will take. Its age is a lower bound of the time lag.
   */
  firstFetchedTimestampMs: number | null;
}

export interface OutputOnDisk {
  /** The last offset in a durable output file, or null. */
  lastOffset: bigint | null;
  /**
   * Output after `lastOffset` was found damaged and moved aside: read again from just
   * after `lastOffset`, even where the group has committed past it.
   */
  lostAfterLast: boolean;
}

/** Longest wait for an offset commit or a disconnect; past it the files on disk still mark progress. */
const COMMIT_TIMEOUT_MS = 10_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** While fetching is paused for backpressure no fetch reports the high watermark; ask this often. */
const WATERMARK_REFRESH_MS = 5000;
/**
 * The longest a fetch waits for data. With every partition paused (backpressure) kafkajs
 * also sleeps this long before it looks again, and a resume does not wake it: at kafkajs'
 * default of 5 s a lone scorer sat idle most of the time, and at 500 ms (the Java
 * consumer's fetch.max.wait.ms) a worker that cleans at thousands of messages a second
 * still drained its buffer and waited on every resume: `npm run bench:kafka -- --reps 1
 * --repeat 4 --clean-threads 0` gave 1 228 (all) and 1 655 (scorer) messages/s with 5.6 s
 * of the run waiting on the source, against 1 599 and 2 412 (0.2 and 0.7 s) at 100 ms. An
 * idle topic costs ten empty fetches a second; data that arrives is returned at once
 * either way (minBytes 1).
 */
const FETCH_MAX_WAIT_MS = 100;

export interface KafkaSourceOptions {
  /** The worker's client (see src/kafka/client.ts); the source makes its consumer and admin from it. */
  kafka: Kafka;
  topic: string;
  groupId: string;
  /** Where a group with no committed offset starts. */
  fromBeginning: boolean;
  /** Consumer-group session timeout: how soon a crashed worker's partitions move. */
  sessionTimeoutMs: number;
  /** Fetched but unprocessed messages above which every partition is paused. */
  maxBufferedMessages: number;
  /** Turns one message into a record (decoding rules live in kafka-message.ts). */
  toRecord: (message: KafkaMessage, partition: number) => RawRecord;
  /**
   * What a partition's output on disk says (see `OutputOnDisk`). On assignment a worker
   * resumes after the later of its last offset and the committed offset, so a crash
   * between publishing a file and committing its offsets writes nothing twice.
   */
  outputOnDisk: (partition: number) => Promise<OutputOnDisk>;
  /**
   * The last offset of a partition the model (restored from a checkpoint) has trained on,
   * or null. When it is before the resume point, the partition is read from just after it,
   * and the records up to the resume point come back as retrain-only (`isRetrainOnly`), so
   * training lost in a crash is redone, up to `maxRetrainMessages` per partition.
   */
  modelTrainedThrough?: (partition: number) => bigint | null;
  /** The largest gap that is re-trained; a longer one (e.g. another worker's progress) is skipped. */
  maxRetrainMessages?: number;
  logger: Logger;
  /** How long `batches()` waits for data before yielding an empty batch. */
  idleTickMs?: number;
  /** Called when partitions are paused because the pipeline is behind. */
  onBackpressure?: () => void;
  onRebalance?: () => void;
  /** After each assignment (with at least one partition), before fetching: this worker's partitions and the topic's count. */
  onAssigned?: (assigned: readonly number[], topicPartitions: number) => void;
}

/**
 * A Kafka topic as a pipeline source, through one kafkajs consumer in a consumer group.
 *
 * kafkajs pushes fetched batches into `eachBatch`; they wait in a bounded queue until the
 * pipeline pulls them. When the queue holds more than `maxBufferedMessages`, every
 * partition is paused, and resumed once the pipeline has drained half of it.
 *
 * Offsets are never auto-committed: `commit` is called by the pipeline for records that
 * are durable. On every (re)join the epoch goes up, the queue is emptied and each
 * assigned partition is paused until its resume point is known (the later of the
 * committed offset and the last offset on disk, +1), then sought there and resumed. A
 * rebalance also starts a new epoch, so the pipeline drops what it holds unpublished
 * instead of publishing files for partitions that may now belong to another worker.
 */
export class KafkaSource implements Source {
  readonly name: string;
  readonly size = null;
  #epoch = 0;
  #epochController = new AbortController();
  readonly #opts: KafkaSourceOptions;
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  #queue: RawRecord[][] = [];
  #queued = 0;
  /** Paused because the pipeline is behind (backpressure). */
  #paused = false;
  /** Paused for good: draining for shutdown. */
  #stopped = false;
  #assigned: number[] = [];
  /** Whether the group has assigned this worker its partitions (possibly none) at least once. */
  #joined = false;
  /**
   * The next offset the pipeline expects per partition, set once the partition's resume
   * point is sought. Batches for a partition without one, or below it (fetched before a
   * seek), are dropped: they will be fetched again from the right place.
   */
  #expected = new Map<number, bigint>();
  /** Per partition: the resume point, when records before it are read again to re-train. */
  #retrainUntil = new Map<number, bigint>();
  /** Lag state of the partitions this worker owns (others are dropped on rebalance). */
  #progress = new Map<number, PartitionProgress>();
  #watermarksRefreshedAt = 0;
  #refreshingWatermarks = false;
  #wake: (() => void) | null = null;
  #crashed: Error | null = null;
  #closed = false;

  private constructor(opts: KafkaSourceOptions) {
    this.name = opts.topic;
    this.#opts = opts;
    this.#consumer = opts.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      // Kafka's rule of thumb: heartbeat at a third of the session timeout or more often.
      heartbeatInterval: Math.min(3000, Math.floor(opts.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      retry: { retries: 10 },
    });
    this.#admin = opts.kafka.admin();
  }

  get epoch(): number {
    return this.#epoch;
  }

  get epochSignal(): AbortSignal {
    return this.#epochController.signal;
  }

  /** Connects, joins the group and starts fetching. */
  static async start(opts: KafkaSourceOptions): Promise<KafkaSource> {
    const source = new KafkaSource(opts);
    try {
      await source.#admin.connect();
      const topics = await source.#admin.listTopics();
      if (!topics.includes(opts.topic)) {
        throw new SourceError(`topic "${opts.topic}" does not exist; create it first (e.g. kafka-topics.sh --create --topic ${opts.topic})`);
      }
      await source.#consumer.connect();
      await source.#consumer.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning });
      source.#listen();
      await source.#consumer.run({
        autoCommit: false,
        // Resolving only moves kafkajs' fetch position; commits stay ours.
        eachBatchAutoResolve: true,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => source.#onBatch(payload),
      });
    } catch (err) {
      await source.close();
      throw err instanceof SourceError ? err : new SourceError(`cannot consume ${opts.topic}: ${String(err)}`, { cause: err, canRetry: true });
    }
    return source;
  }

  async *batches(signal: AbortSignal): AsyncIterable<RawRecord[]> {
    const tickMs = this.#opts.idleTickMs ?? 250;
    const onAbort = (): void => this.#wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (this.#crashed) throw new SourceError(`the Kafka consumer stopped: ${this.#crashed.message}`, { cause: this.#crashed });
        const batch = this.#queue.shift();
        if (batch) {
          this.#queued -= batch.length;
          this.#handedOver(batch);
          this.#resumeIfDrained();
          this.#refreshWatermarksWhilePaused();
          yield batch;
          continue;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, tickMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
        // Nothing arrived: an empty batch lets the pipeline run its time-based flushes.
        if (this.#queue.length === 0 && !signal.aborted) yield [];
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Consumer lag per assigned partition, from state kept as records pass (no broker call):
   * messages = latest high watermark − next offset to hand over; seconds = now − Kafka
   * timestamp of the newest record handed over (0 when caught up; before the first
   * hand-over since assignment, of the first record fetched, a lower bound). Partitions whose
   * resume point is not known yet are left out.
   */
  lag(nowMs = Date.now()): KafkaPartitionLag[] {
    const out: KafkaPartitionLag[] = [];
    for (const partition of this.#assigned) {
      const p = this.#progress.get(partition);
      if (!p) continue;
      const messages = p.highWatermark > p.next ? Number(p.highWatermark - p.next) : 0;
      let seconds: number | null = 0;
      const timestampMs = p.newestTimestampMs ?? p.firstFetchedTimestampMs;
      if (messages > 0) seconds = timestampMs === null ? null : Math.max(0, (nowMs - timestampMs) / 1000);
      out.push({ topic: this.#opts.topic, partition, messages, seconds });
    }
    return out;
  }

  /** Joined, every assigned partition's resume point known, and nothing left below its high watermark. */
  caughtUp(): boolean {
    if (!this.#joined || this.#queued > 0) return false;
    return this.#assigned.every((partition) => {
      const p = this.#progress.get(partition);
      return p !== undefined && this.#expected.has(partition) && p.next >= p.highWatermark;
    });
  }

  isRetrainOnly(position: SourcePosition): boolean {
    const until = this.#retrainUntil.get(position.partition);
    return until !== undefined && position.source === this.#opts.topic && position.offset < until;
  }

  async commit(positions: readonly SourcePosition[]): Promise<void> {
    const offsets = positions
      .filter((p) => p.source === this.#opts.topic && this.#assigned.includes(p.partition))
      .map((p) => ({ topic: this.#opts.topic, partition: p.partition, offset: (p.offset + 1n).toString() }));
    if (offsets.length === 0) return;
    try {
      // kafkajs retries a commit for minutes while the group is unsettled (a broker restart);
      // the pipeline, and a shutdown drain, must not wait that long for it.
      await withTimeout(this.#consumer.commitOffsets(offsets), COMMIT_TIMEOUT_MS, 'offset commit');
    } catch (err) {
      // After a rebalance the new owner resumes from the files on disk, so a lost commit
      // costs a little re-reading, never a duplicate row.
      this.#opts.logger.warn({ err: String(err), offsets }, 'offset commit failed; the files on disk still mark progress');
    }
  }

  /** Stops fetching: pauses every partition (used when draining for shutdown). */
  stopFetching(): void {
    this.#stopped = true;
    this.#consumer.pause([{ topic: this.#opts.topic }]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    await withTimeout(this.#consumer.disconnect(), COMMIT_TIMEOUT_MS, 'consumer disconnect').catch(() => undefined);
    await withTimeout(this.#admin.disconnect(), COMMIT_TIMEOUT_MS, 'admin disconnect').catch(() => undefined);
  }

  #listen(): void {
    const { events } = this.#consumer;
    this.#consumer.on(events.REBALANCING, () => {
      // From here on, nothing fetched so far may be published: the partitions may move.
      this.#newEpoch();
    });
    this.#consumer.on(events.GROUP_JOIN, (event) => {
      this.#newEpoch();
      const partitions = event.payload.memberAssignment[this.#opts.topic] ?? [];
      this.#assigned = [...partitions].sort((a, b) => a - b);
      this.#joined = true;
      for (const partition of [...this.#progress.keys()]) if (!partitions.includes(partition)) this.#progress.delete(partition);
      if (partitions.length === 0) return;
      // Synchronously, before kafkajs fetches from the committed offsets. (Pause and resume
      // always act on the whole topic: kafkajs keeps per-partition pause state across
      // assignments, which mixed calls would leave inconsistent.)
      this.#consumer.pause([{ topic: this.#opts.topic }]);
      const epoch = this.#epoch;
      this.#seekToResumePoints(partitions, epoch).then(
        () => {
          if (epoch !== this.#epoch || this.#closed) return;
          if (!this.#paused && !this.#stopped) this.#consumer.resume([{ topic: this.#opts.topic }]);
          this.#opts.logger.info({ topic: this.#opts.topic, partitions }, 'partitions assigned');
        },
        (err: unknown) => {
          this.#crashed = err instanceof Error ? err : new Error(String(err));
          this.#wake?.();
        },
      );
    });
    this.#consumer.on(events.CRASH, (event) => {
      if (event.payload.restart) return;
      this.#crashed = event.payload.error;
      this.#wake?.();
    });
  }

  async #seekToResumePoints(partitions: number[], epoch: number): Promise<void> {
    const [committed] = await this.#admin.fetchOffsets({ groupId: this.#opts.groupId, topics: [this.#opts.topic] });
    const committedBy = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    const bounds = new Map(
      (await this.#admin.fetchTopicOffsets(this.#opts.topic)).map((p) => [p.partition, { low: BigInt(p.low), high: BigInt(p.high) }]),
    );
    if (epoch !== this.#epoch) return;
    this.#opts.onAssigned?.(partitions, bounds.size);
    // Offsets already durable on disk but never committed (a crash, or a broker outage,
    // between publishing and committing). Nothing new may arrive on these partitions to
    // carry the commit forward, so commit them now: lag and the group's position agree.
    const durable: { topic: string; partition: number; offset: string }[] = [];
    for (const partition of partitions) {
      const onDisk = await this.#opts.outputOnDisk(partition);
      if (epoch !== this.#epoch) return;
      const fromCommit = committedBy.get(partition) ?? -1n;
      const fromDisk = onDisk.lastOffset === null ? -1n : onDisk.lastOffset + 1n;
      const { low, high } = bounds.get(partition) ?? { low: 0n, high: 0n };
      // Negative means "none"; then the group's starting point applies. Every partition
      // is sought explicitly, also when resuming at the committed offset: after a rejoin
      // kafkajs may hold a fetch position past records this worker dropped unpublished.
      let resumeAt = fromDisk > fromCommit ? fromDisk : fromCommit;
      if (onDisk.lostAfterLast && fromCommit > fromDisk) {
        // Committed, but their file was damaged: the records are read again while the topic keeps them.
        resumeAt = fromDisk < 0n ? low : fromDisk;
        this.#opts.logger.warn({ partition, committed: String(fromCommit), resumeAt: String(resumeAt) }, 'reading again the offsets of a damaged output file');
      }
      if (resumeAt < 0n) resumeAt = this.#opts.fromBeginning ? low : high;
      if (resumeAt < low) resumeAt = low; // the records before it are gone (retention)
      if (fromDisk > fromCommit) {
        this.#opts.logger.info({ partition, committed: String(fromCommit), resumeAt: String(resumeAt) }, 'resuming after the last offset on disk');
        durable.push({ topic: this.#opts.topic, partition, offset: fromDisk.toString() });
      }
      const readFrom = this.#retrainFrom(partition, resumeAt, low);
      this.#consumer.seek({ topic: this.#opts.topic, partition, offset: readFrom.toString() });
      this.#expected.set(partition, readFrom);
      this.#progress.set(partition, { highWatermark: high, next: resumeAt, newestTimestampMs: null, firstFetchedTimestampMs: null });
    }
    if (durable.length === 0 || epoch !== this.#epoch) return;
    try {
      await this.#consumer.commitOffsets(durable);
    } catch (err) {
      this.#opts.logger.warn({ err: String(err), offsets: durable }, 'committing the offsets already on disk failed; the files still mark progress');
    }
  }

  /** Where to read a partition from: the resume point, or earlier to re-train (see `modelTrainedThrough`). */
  #retrainFrom(partition: number, resumeAt: bigint, low: bigint): bigint {
    this.#retrainUntil.delete(partition);
    const trained = this.#opts.modelTrainedThrough?.(partition) ?? null;
    if (trained === null || trained + 1n >= resumeAt || this.#opts.maxRetrainMessages === 0) return resumeAt;
    const from = trained + 1n < low ? low : trained + 1n;
    const gap = resumeAt - from;
    const limit = BigInt(this.#opts.maxRetrainMessages ?? Number.MAX_SAFE_INTEGER);
    const fields = { partition, trainedThrough: String(trained), resumeAt: String(resumeAt), messages: Number(gap) };
    if (gap > limit) {
      this.#opts.logger.warn({ ...fields, limit: Number(limit) }, 'not re-training the model on the messages since its checkpoint: more than the limit');
      return resumeAt;
    }
    this.#opts.logger.info(fields, 're-training the model on the messages between its checkpoint and the resume point (not written again)');
    this.#retrainUntil.set(partition, resumeAt);
    return from;
  }

  #newEpoch(): void {
    this.#epoch++;
    this.#epochController.abort(new Error('the consumer group was rebalanced'));
    this.#epochController = new AbortController();
    this.#queue = [];
    this.#queued = 0;
    this.#expected.clear();
    // The queue is empty now; the join handler pauses and resumes partitions itself.
    this.#paused = false;
    this.#opts.onRebalance?.();
    this.#wake?.();
  }

  async #onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale() || batch.messages.length === 0) return;
    const expected = this.#expected.get(batch.partition);
    if (expected === undefined) return;
    const progress = this.#progress.get(batch.partition);
    if (progress) progress.highWatermark = BigInt(batch.highWatermark);
    const fresh = batch.messages.filter((m) => BigInt(m.offset) >= expected);
    if (fresh.length === 0) return;
    this.#expected.set(batch.partition, BigInt(fresh[fresh.length - 1]!.offset) + 1n);
    const records = fresh.map((m) => this.#opts.toRecord(m, batch.partition));
    if (progress && progress.firstFetchedTimestampMs === null) progress.firstFetchedTimestampMs = records[0]!.position.timestampMs;
    this.#queue.push(records);
    this.#queued += records.length;
    if (!this.#paused && this.#queued > this.#opts.maxBufferedMessages) {
      this.#paused = true;
      this.#consumer.pause([{ topic: this.#opts.topic }]);
      this.#opts.onBackpressure?.();
    }
    this.#wake?.();
    await Promise.resolve();
  }

  /** A batch (always one partition's) goes to the pipeline: it is no longer lag. */
  #handedOver(batch: RawRecord[]): void {
    const last = batch[batch.length - 1];
    if (!last) return;
    const progress = this.#progress.get(last.position.partition);
    if (!progress) return;
    // Records read again to re-train lie before the resume point: lag does not grow back.
    if (last.position.offset + 1n > progress.next) progress.next = last.position.offset + 1n;
    if (last.position.timestampMs !== null) progress.newestTimestampMs = last.position.timestampMs;
  }

  /**
   * A paused consumer fetches nothing, so no fetch response reports the high watermark
   * and lag would look flat exactly while it grows; ask the admin API now and then.
   */
  #refreshWatermarksWhilePaused(): void {
    if (!this.#paused || this.#refreshingWatermarks || Date.now() - this.#watermarksRefreshedAt < WATERMARK_REFRESH_MS) return;
    this.#refreshingWatermarks = true;
    this.#watermarksRefreshedAt = Date.now();
    this.#admin.fetchTopicOffsets(this.#opts.topic).then(
      (offsets) => {
        this.#refreshingWatermarks = false;
        for (const { partition, high } of offsets) {
          const progress = this.#progress.get(partition);
          const value = BigInt(high);
          if (progress && value > progress.highWatermark) progress.highWatermark = value;
        }
      },
      (err: unknown) => {
        this.#refreshingWatermarks = false;
        this.#opts.logger.debug({ err: String(err) }, 'could not refresh high watermarks for the lag metrics');
      },
    );
  }

  #resumeIfDrained(): void {
    if (!this.#paused || this.#stopped || this.#closed || this.#queued > this.#opts.maxBufferedMessages / 2) return;
    this.#paused = false;
    this.#consumer.resume([{ topic: this.#opts.topic }]);
  }
}
