/**
 * The snapshot topic's writing side: creating or checking the topic, and publishing
 * snapshots to it in chunks. Trainers publish; readers (reader.ts) take the latest
 * complete snapshot of each trainer.
 *
 * Topic: one partition, so the log is a total order and "latest" means "completed last";
 * `cleanup.policy=compact`, so the topic keeps each trainer's latest snapshot forever and
 * drops older ones; `max.message.bytes` stays at the broker's default (≈ 1 MiB), so a
 * snapshot's payload (src/model/snapshot-codec.ts) travels in chunks that fit under it, one record
 * each (the record format is in chunks.ts).
 *
 * kafkajs sends all records of one `send` to a partition as ONE record batch, and the
 * broker checks the whole batch against `max.message.bytes` (measured: three 1 MB records
 * in one send fail with MESSAGE_TOO_LARGE on a default topic). So chunks go one per
 * `send`, in order, from an idempotent producer with one request in flight
 * (`makeSnapshotProducer`): they land in order, though another trainer's chunks may land
 * between them, which assembling by snapshot id makes harmless.
 */
import { createHash } from 'node:crypto';
import { SourceError, TextstreamError } from '../errors.js';
import { makeIdempotentProducer } from '../kafka/producer.js';
import { canRetryKafkaError, isTooLargeError, kafkaErrorType } from '../kafka/protocol-errors.js';
import { ensureTopic, maxMessageBytesOf, readTopicConfig } from '../kafka/topics.js';
import type { Admin, Kafka, Message, Producer, RetryOptions } from '../kafka/types.js';
import { encodeSnapshot, type ModelSnapshot } from '../model/snapshot-codec.js';
import { SnapshotHeaders } from './chunks.js';

/**
 * Bytes of a record batch that are not chunk data, besides the key and headers: log
 * overhead (12), batch header (61), record framing (≤ 25), with room to spare.
 */
const RECORD_HEADROOM = 512;
/** A limit that leaves less data than this per chunk is a mistake, not a setting. */
const MIN_CHUNK_BYTES = 1024;
/**
 * Segment size for a topic this module creates. Compaction never touches the active
 * segment, and the broker default (1 GiB) would let a reader starting up read through up
 * to a gigabyte of superseded snapshots; 64 MiB bounds that to a few dozen.
 */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** A topic this module creates: see the module comment. */
const SNAPSHOT_TOPIC = {
  numPartitions: 1,
  configEntries: [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'segment.bytes', value: String(SEGMENT_BYTES) },
  ],
};

// ── The topic ───────────────────────────────────────────────────────────────────────────

export interface SnapshotTopic {
  topic: string;
  /** Whether this call created it. */
  created: boolean;
  /** The topic's `cleanup.policy`; null when its configuration could not be read (ACLs). */
  cleanupPolicy: string | null;
  /**
   * The topic's `max.message.bytes` (Kafka's default when it could not be read): pass it
   * to `publishSnapshot`.
   */
  maxMessageBytes: number;
}

export interface EnsureSnapshotTopicOptions {
  /** Create the topic when it is missing (default true); false makes a missing topic an error. */
  create?: boolean;
}

/**
 * Makes sure `topic` can hold snapshots: creates it when missing (one partition,
 * `cleanup.policy=compact`, broker-default `max.message.bytes` and replication), and checks
 * an existing one has one partition and a compacting cleanup policy (`compact` or
 * `compact,delete`). Returns its size limit for `publishSnapshot`. A topic that cannot
 * hold snapshots is a non-retryable SourceError that says how to fix it.
 */
export async function ensureSnapshotTopic(admin: Admin, topic: string, options: EnsureSnapshotTopicOptions = {}): Promise<SnapshotTopic> {
  requireTopicName(topic);
  try {
    // Created by another process first, it is checked below like any existing topic.
    const presence = await ensureTopic(admin, topic, options.create === false ? null : () => SNAPSHOT_TOPIC);
    if (presence === 'missing') {
      throw new SourceError(`snapshot topic ${topic} does not exist; a trainer creates it on its first publish`, { canRetry: true });
    }
    const partitions = await partitionCount(admin, topic);
    if (partitions !== 1) {
      throw new SourceError(
        `snapshot topic ${topic} has ${partitions} partitions; it needs exactly 1, so that snapshots have one order and "latest" is well defined: delete it or choose another topic`,
        { canRetry: false },
      );
    }
    // Null when the settings cannot be read (ACLs): the broker still enforces the real limit on publish.
    const config = await readTopicConfig(admin, topic, ['cleanup.policy', 'max.message.bytes']);
    const cleanupPolicy = config === null ? null : (config.get('cleanup.policy') ?? 'delete');
    if (cleanupPolicy !== null && !cleanupPolicy.split(',').includes('compact')) {
      throw new SourceError(
        `snapshot topic ${topic} has cleanup.policy=${cleanupPolicy}; it must be compacted, or trainers' latest snapshots are deleted with old segments: kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config cleanup.policy=compact`,
        { canRetry: false },
      );
    }
    return {
      topic,
      created: presence === 'created',
      cleanupPolicy,
      maxMessageBytes: maxMessageBytesOf(config),
    };
  } catch (err) {
    if (err instanceof TextstreamError) throw err;
    throw new SourceError(`checking snapshot topic ${topic} failed: ${message(err)}`, { cause: err, canRetry: true });
  }
}

/** ensureSnapshotTopic with an admin client of its own, connected and released here. */
export async function ensureSnapshotTopicOn(kafka: Kafka, topic: string): Promise<SnapshotTopic> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureSnapshotTopic(admin, topic);
  } finally {
    await admin.disconnect();
  }
}

async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  return topics.find((t) => t.name === topic)?.partitions.length ?? 0;
}

// ── Publishing ──────────────────────────────────────────────────────────────────────────

/**
 * The producer `publishSnapshot` expects: idempotent with one request in flight (so
 * chunks land once each, in order) and no topic auto-creation. Connect it before use.
 */
export function makeSnapshotProducer(kafka: Kafka, options: { retry?: RetryOptions } = {}): Producer {
  // Bounded retries (5 by default): otherwise a publish would never fail.
  return makeIdempotentProducer(kafka, options.retry);
}

export interface PublishSnapshotOptions {
  /** The topic's `max.message.bytes` (`ensureSnapshotTopic` reads it). */
  maxMessageBytes: number;
}

export interface PublishedSnapshot {
  id: string;
  producer: string;
  modelVersion: number;
  /** The encoded snapshot's length. */
  payloadBytes: number;
  chunks: number;
  /** SHA-256 of the payload, hex. */
  sha256: string;
  /** Offsets of the first and the last chunk (decimal strings). */
  firstOffset: string;
  lastOffset: string;
}

/**
 * Encodes `snapshot` and publishes it in chunks (see the module comment); resolves when
 * the broker has acknowledged every chunk (acks = all). Use a producer from
 * `makeSnapshotProducer`. Fails with a SourceError naming the topic, the snapshot and how
 * far it got; the chunks already written are harmless (readers skip an incomplete
 * snapshot), and publishing the same snapshot again completes it.
 */
export async function publishSnapshot(producer: Producer, topic: string, snapshot: ModelSnapshot, options: PublishSnapshotOptions): Promise<PublishedSnapshot> {
  requireTopicName(topic);
  const payload = encodeSnapshot(snapshot);
  const messages = snapshotMessages(payload, snapshot, options.maxMessageBytes);
  const offsets: string[] = [];
  for (const [i, msg] of messages.entries()) {
    try {
      const [meta] = await producer.send({ topic, acks: -1, messages: [msg] });
      offsets.push(meta?.baseOffset ?? '-1');
    } catch (err) {
      const type = kafkaErrorType(err);
      const what = `publishing snapshot ${snapshot.id} (producer ${snapshot.producer}, model version ${snapshot.modelVersion}) to topic ${topic} failed at chunk ${i + 1} of ${messages.length}`;
      if (isTooLargeError(type)) {
        throw new SourceError(
          `${what}: the broker rejected a ${options.maxMessageBytes}-byte record as too large (${type}); pass the topic's real max.message.bytes (ensureSnapshotTopic reads it)`,
          { cause: err, canRetry: false },
        );
      }
      throw new SourceError(`${what}: ${message(err)}`, { cause: err, canRetry: canRetryKafkaError(type) });
    }
  }
  return {
    id: snapshot.id,
    producer: snapshot.producer,
    modelVersion: snapshot.modelVersion,
    payloadBytes: payload.length,
    chunks: messages.length,
    sha256: String(messages[0]!.headers![SnapshotHeaders.PAYLOAD_SHA256]),
    firstOffset: offsets[0]!,
    lastOffset: offsets.at(-1)!,
  };
}

/** Identifies the snapshot a payload belongs to (a ModelSnapshot is one). */
export interface SnapshotChunkIdentity {
  id: string;
  producer: string;
  modelVersion: number;
}

/**
 * The records of one encoded snapshot: chunks as large as `maxMessageBytes` allows once
 * the key, the headers and the record framing are counted. `publishSnapshot` sends them;
 * exported for tests and tools that write records themselves.
 */
export function snapshotMessages(payload: Uint8Array, identity: SnapshotChunkIdentity, maxMessageBytes: number): Message[] {
  const bytes = asBuffer(payload);
  const chunkBytes = chunkDataBytes(identity, maxMessageBytes);
  const count = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const messages: Message[] = [];
  for (let index = 0; index < count; index++) {
    messages.push({
      key: `${identity.producer}/${index}`,
      value: bytes.subarray(index * chunkBytes, Math.min(bytes.length, (index + 1) * chunkBytes)),
      partition: 0,
      headers: {
        [SnapshotHeaders.ID]: identity.id,
        [SnapshotHeaders.PRODUCER]: identity.producer,
        [SnapshotHeaders.MODEL_VERSION]: String(identity.modelVersion),
        [SnapshotHeaders.CHUNK_INDEX]: String(index),
        [SnapshotHeaders.CHUNK_COUNT]: String(count),
        [SnapshotHeaders.PAYLOAD_BYTES]: String(bytes.length),
        [SnapshotHeaders.PAYLOAD_SHA256]: sha256,
      },
    });
  }
  return messages;
}

/** Data bytes per chunk under `maxMessageBytes`, counting the longest key and header values. */
function chunkDataBytes(identity: SnapshotChunkIdentity, maxMessageBytes: number): number {
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
    throw new SourceError(`maxMessageBytes must be a positive integer, got ${String(maxMessageBytes)}`, { canRetry: false });
  }
  const longestNumber = 16; // decimal digits of any index, count, length or version we write
  const headerValues = [identity.id, identity.producer, 'x'.repeat(64), ...Array<string>(4).fill('9'.repeat(longestNumber))];
  const headerBytes =
    Object.values(SnapshotHeaders).reduce((n, name) => n + Buffer.byteLength(name) + 5, 0) +
    headerValues.reduce((n, v) => n + Buffer.byteLength(v) + 5, 0);
  const keyBytes = Buffer.byteLength(identity.producer) + 1 + longestNumber + 5;
  const data = maxMessageBytes - RECORD_HEADROOM - headerBytes - keyBytes;
  if (data < MIN_CHUNK_BYTES) {
    throw new SourceError(
      `maxMessageBytes ${maxMessageBytes} leaves ${data} bytes of snapshot data per record after key and headers; it must leave at least ${MIN_CHUNK_BYTES}`,
      { canRetry: false },
    );
  }
  return data;
}

function requireTopicName(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new SourceError(`snapshot topic must be a non-empty string, got ${JSON.stringify(topic)}`);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
