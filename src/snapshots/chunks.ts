/**
 * Assembles snapshot chunk records back into snapshot payloads, and says why chunks that
 * made no snapshot were skipped. Pure: no Kafka client; records go in in offset order.
 *
 * Each record carries one chunk of a payload (src/model/snapshot-codec.ts), keyed
 * `<producer>/<chunk index>`, with headers naming its snapshot (`SnapshotHeaders`;
 * `snapshotMessages` in topic.ts writes them). Compaction keeps the newest record
 * per key, so chunks of an older, longer snapshot may outlive its first chunks: chunks are
 * grouped by snapshot id, never by key, so such leftovers form an unfinished older
 * snapshot that a newer one of the same producer supersedes, and never mix into it.
 */
import { createHash } from 'node:crypto';
import { SourceError } from '../errors.js';
import type { IHeaders, KafkaMessage } from '../kafka/types.js';
import { readSnapshotHeader } from '../model/snapshot-codec.js';

/** Header names of a snapshot chunk record; values are UTF-8 strings. */
export const SnapshotHeaders = {
  ID: 'textstream.snapshot.id',
  PRODUCER: 'textstream.snapshot.producer',
  MODEL_VERSION: 'textstream.snapshot.model-version',
  CHUNK_INDEX: 'textstream.snapshot.chunk-index',
  CHUNK_COUNT: 'textstream.snapshot.chunk-count',
  PAYLOAD_BYTES: 'textstream.snapshot.payload-bytes',
  PAYLOAD_SHA256: 'textstream.snapshot.payload-sha256',
} as const;

/** Why chunks on the topic did not make a snapshot. */
export const IgnoredReasons = {
  /** Newer than its producer's latest complete snapshot, with chunks missing when the read ended: a publish cut short or still going. */
  INCOMPLETE: 'incomplete',
  /** Chunks of an unfinished snapshot older than its producer's latest complete one: left by compaction or by a publish cut short. */
  SUPERSEDED: 'superseded',
  /** All chunks arrived but the assembled payload does not match the SHA-256 its chunks carry. */
  CHECKSUM_MISMATCH: 'checksum-mismatch',
  /** A record without valid snapshot headers, or a chunk that contradicts the other chunks of its snapshot. */
  INVALID_RECORD: 'invalid-record',
  /** A complete, intact payload that does not decode (e.g. written by a newer format version). */
  UNDECODABLE: 'undecodable',
  /** Dropped unfinished to keep held chunks under `maxPendingBytes`. */
  EVICTED: 'evicted',
} as const;
export type IgnoredReason = (typeof IgnoredReasons)[keyof typeof IgnoredReasons];

export interface IgnoredSnapshot {
  reason: IgnoredReason;
  /** The snapshot id (null when a record carried none). */
  id: string | null;
  producer: string | null;
  /** Offsets of the first and last record concerned (decimal strings). */
  firstOffset: string;
  lastOffset: string;
  /** One sentence for the log: what is wrong, naming the topic. */
  message: string;
}

/** A snapshot whose chunks all arrived and whose payload is intact; not yet decoded. */
export interface AssembledSnapshot {
  id: string;
  producer: string;
  /** Offsets of its first and last chunk. */
  firstOffset: bigint;
  lastOffset: bigint;
  payload: Buffer;
}

/** What the assembler reads of a record (a kafkajs consumer's `KafkaMessage` is one). */
export type ChunkRecord = Pick<KafkaMessage, 'value' | 'headers'>;

export interface SnapshotAssemblerOptions {
  /** Named in every `IgnoredSnapshot.message`. */
  topic: string;
  /** Bytes of unfinished snapshots held at most; the oldest are dropped beyond it (default 256 MiB). */
  maxPendingBytes?: number;
  /** Told about every chunk or snapshot skipped, as it is skipped. */
  onIgnored: (ignored: IgnoredSnapshot) => void;
}

const DEFAULT_MAX_PENDING_BYTES = 256 * 1024 * 1024;
/** Ids finished (completed or dropped) remembered, so their late or repeated chunks are skipped. */
const FINISHED_IDS = 4096;

interface Chunk {
  id: string;
  producer: string;
  index: number;
  count: number;
  payloadBytes: number;
  sha256: string;
}

interface Pending extends Omit<Chunk, 'index'> {
  parts: (Buffer | undefined)[];
  received: number;
  heldBytes: number;
  firstOffset: bigint;
  lastOffset: bigint;
}

/**
 * Groups chunk records by snapshot id and hands back each snapshot whose chunks are all
 * there, whose payload matches its SHA-256 and whose header reads as a snapshot's. When
 * one completes, its producer's unfinished snapshots that started earlier are dropped as
 * superseded, so a producer's snapshots come out in the order they started.
 */
export class SnapshotAssembler {
  readonly #topic: string;
  readonly #maxPendingBytes: number;
  readonly #onIgnored: (ignored: IgnoredSnapshot) => void;
  /** Unfinished snapshots by id; Map order is the order their first chunk arrived. */
  readonly #pending = new Map<string, Pending>();
  #pendingBytes = 0;
  readonly #finished = new Set<string>();

  constructor(options: SnapshotAssemblerOptions) {
    const maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes <= 0) {
      throw new SourceError(`maxPendingBytes must be a positive integer, got ${String(options.maxPendingBytes)}`);
    }
    this.#topic = options.topic;
    this.#maxPendingBytes = maxPendingBytes;
    this.#onIgnored = options.onIgnored;
  }

  /** Takes the record at `offset`; returns the snapshot it completes, if it completes an intact one. */
  add(offset: bigint, record: ChunkRecord): AssembledSnapshot | null {
    // A tombstone deletes a key on compaction; it carries no chunk.
    if (record.value === null) return null;
    const headers = record.headers ?? {};
    const chunk = parseChunk(headers);
    const here = { firstOffset: offset, lastOffset: offset };
    if (typeof chunk === 'string') {
      const named = { id: headerValue(headers, SnapshotHeaders.ID) ?? null, producer: headerValue(headers, SnapshotHeaders.PRODUCER) ?? null };
      this.#ignore(IgnoredReasons.INVALID_RECORD, { ...named, ...here }, `record at offset ${offset} is not a snapshot chunk: ${chunk}`);
      return null;
    }
    if (this.#finished.has(chunk.id)) return null;
    const { index, ...identity } = chunk;
    const pending = this.#pending.get(chunk.id) ?? { ...identity, parts: new Array<Buffer | undefined>(chunk.count), received: 0, heldBytes: 0, ...here };
    this.#pending.set(chunk.id, pending);
    const disagreement = (['producer', 'count', 'payloadBytes', 'sha256'] as const).find((k) => pending[k] !== identity[k]);
    if (disagreement !== undefined) {
      this.#ignore(
        IgnoredReasons.INVALID_RECORD,
        { ...chunk, ...here },
        `chunk ${index} of snapshot ${chunk.id} at offset ${offset} disagrees with the snapshot's earlier chunks on ${disagreement}`,
      );
      return null;
    }
    // A copy: kafkajs' value is a view of the whole fetch response, which it would keep alive.
    const part = Buffer.from(record.value);
    const previous = pending.parts[index];
    if (previous === undefined) pending.received++;
    const grown = part.length - (previous?.length ?? 0);
    pending.heldBytes += grown;
    this.#pendingBytes += grown;
    pending.parts[index] = part;
    pending.lastOffset = offset;
    if (pending.received === pending.count) return this.#complete(pending);
    this.#evictOverflow();
    return null;
  }

  /** The input has ended: reports each unfinished snapshot as incomplete, and forgets it. */
  finish(): void {
    for (const p of [...this.#pending.values()]) {
      this.#drop(p);
      this.#ignore(IgnoredReasons.INCOMPLETE, p, `snapshot ${p.id} from ${p.producer} is incomplete: ${p.received} of ${p.count} chunks (a publish cut short or still running)`);
    }
  }

  #complete(p: Pending): AssembledSnapshot | null {
    this.#drop(p);
    const payload = Buffer.concat(p.parts as Buffer[]);
    if (payload.length !== p.payloadBytes) {
      this.#ignore(IgnoredReasons.INVALID_RECORD, p, `snapshot ${p.id} from ${p.producer} has ${payload.length} bytes in its chunks, its headers say ${p.payloadBytes}`);
      return null;
    }
    if (createHash('sha256').update(payload).digest('hex') !== p.sha256) {
      this.#ignore(IgnoredReasons.CHECKSUM_MISMATCH, p, `snapshot ${p.id} from ${p.producer} does not match its SHA-256: a chunk is damaged`);
      return null;
    }
    try {
      // Cheap (no hashing): catches a payload of an unknown format before it replaces a good snapshot.
      readSnapshotHeader(payload);
    } catch (err) {
      this.#ignore(IgnoredReasons.UNDECODABLE, p, `snapshot ${p.id} from ${p.producer} does not decode: ${message(err)}`);
      return null;
    }
    // This producer's unfinished snapshots that started earlier will never matter again.
    for (const other of [...this.#pending.values()]) {
      if (other.producer === p.producer && other.firstOffset < p.firstOffset) {
        this.#drop(other);
        this.#ignore(
          IgnoredReasons.SUPERSEDED,
          other,
          `snapshot ${other.id} from ${other.producer} was never completed (${other.received} of ${other.count} chunks) and is superseded by ${p.id}`,
        );
      }
    }
    return { id: p.id, producer: p.producer, firstOffset: p.firstOffset, lastOffset: p.lastOffset, payload };
  }

  #evictOverflow(): void {
    for (const oldest of this.#pending.values()) {
      if (this.#pendingBytes <= this.#maxPendingBytes) return;
      this.#drop(oldest);
      this.#ignore(
        IgnoredReasons.EVICTED,
        oldest,
        `snapshot ${oldest.id} from ${oldest.producer} was dropped unfinished (${oldest.received} of ${oldest.count} chunks): unfinished snapshots held more than maxPendingBytes ${this.#maxPendingBytes}`,
      );
    }
  }

  #drop(p: Pending): void {
    this.#pending.delete(p.id);
    this.#pendingBytes -= p.heldBytes;
    this.#finished.add(p.id);
    // Set order is insertion order: forget the oldest ids first.
    if (this.#finished.size > FINISHED_IDS) this.#finished.delete(this.#finished.values().next().value!);
  }

  #ignore(
    reason: IgnoredReason,
    what: { id: string | null; producer: string | null; firstOffset: bigint; lastOffset: bigint },
    sentence: string,
  ): void {
    this.#onIgnored({
      reason,
      id: what.id,
      producer: what.producer,
      firstOffset: String(what.firstOffset),
      lastOffset: String(what.lastOffset),
      message: `topic ${this.#topic}: ${sentence}`,
    });
  }
}

/** A chunk's identity from its headers, or what is wrong with them. */
function parseChunk(headers: IHeaders): Chunk | string {
  const get = (name: string): string | undefined => headerValue(headers, name);
  const id = get(SnapshotHeaders.ID);
  const producer = get(SnapshotHeaders.PRODUCER);
  const sha256 = get(SnapshotHeaders.PAYLOAD_SHA256);
  if (!id) return `header ${SnapshotHeaders.ID} is missing`;
  if (!producer) return `header ${SnapshotHeaders.PRODUCER} is missing`;
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) return `header ${SnapshotHeaders.PAYLOAD_SHA256} is not a hex SHA-256`;
  const int = (name: string): number | string => {
    const text = get(name);
    const n = Number(text);
    return text !== undefined && /^\d+$/.test(text) && Number.isSafeInteger(n) ? n : `header ${name} is not a non-negative integer: ${JSON.stringify(text)}`;
  };
  const index = int(SnapshotHeaders.CHUNK_INDEX);
  const count = int(SnapshotHeaders.CHUNK_COUNT);
  const payloadBytes = int(SnapshotHeaders.PAYLOAD_BYTES);
  if (typeof index === 'string') return index;
  if (typeof count === 'string') return count;
  if (typeof payloadBytes === 'string') return payloadBytes;
  if (count < 1 || index >= count) return `chunk index ${index} is outside the chunk count ${count}`;
  return { id, producer, index, count, payloadBytes, sha256 };
}

function headerValue(headers: IHeaders, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first.toString('utf8') : first;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
