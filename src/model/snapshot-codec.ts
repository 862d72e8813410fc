/**
 * A model snapshot as one self-checking byte string: the checkpoint's state plus who
 * published it and when, for the snapshot topic (src/snapshots/topic.ts). It decodes to
 * exactly what was encoded or fails with a CheckpointError. The byte layout:
 * docs/operations.md, "Checkpoint and snapshot formats".
 */
import { createHash, randomUUID } from 'node:crypto';
import type { io } from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import { modelJsonOf, type CheckpointState } from './checkpoint.js';
import { OnlineEvaluator, type EvaluationSnapshot } from './evaluation.js';

export const SNAPSHOT_FORMAT_VERSION = 1;

/** Ends in a newline so a payload mangled by a text-mode transfer fails on the magic. */
const MAGIC = Buffer.from('TXTSNAP\n', 'latin1');
const HEADER_BYTES = 24;
const HASH_BYTES = 32;

/** Who published a snapshot, when, and how good the model was then. */
export interface SnapshotInfo {
  /** Unique per publish: chunks of one snapshot on the topic carry it. */
  id: string;
  /** The publishing trainer's id (stable across its restarts). */
  producer: string;
  /** Milliseconds since the epoch. */
  publishedAtMs: number;
  /** The online evaluation at publish time (accuracy, log loss, AUC, rows trained…); null without one. */
  metrics: EvaluationSnapshot | null;
}

/** A checkpoint's state plus who published it: what travels on the snapshot topic. */
export interface ModelSnapshot extends CheckpointState, SnapshotInfo {}

export interface MakeSnapshotOptions {
  producer: string;
  /** Default: a random UUID. */
  id?: string;
  /** Default: now. */
  publishedAtMs?: number;
  /** Default: computed from `state.evaluation` (null when the state has none). */
  metrics?: EvaluationSnapshot | null;
}

/** Wraps a learner's `checkpointState()` as a snapshot ready to encode or publish. */
export function makeSnapshot(state: CheckpointState, options: MakeSnapshotOptions): ModelSnapshot {
  const snapshot: ModelSnapshot = {
    ...state,
    id: options.id ?? randomUUID(),
    producer: options.producer,
    publishedAtMs: options.publishedAtMs ?? Date.now(),
    metrics: options.metrics !== undefined ? options.metrics : metricsOf(state),
  };
  validateInfo(snapshot, 'snapshot');
  return snapshot;
}

function metricsOf(state: CheckpointState): EvaluationSnapshot | null {
  if (state.evaluation === null) return null;
  try {
    return OnlineEvaluator.fromJSON(state.evaluation).snapshot();
  } catch (cause) {
    throw new CheckpointError(`snapshot.evaluation is invalid: ${String(cause)}`, { cause });
  }
}

/** The JSON part of a payload. Field names are part of the format: change them only with the version. */
interface Metadata {
  snapshot: SnapshotInfo;
  modelVersion: number;
  rowsSeen: number;
  network: CheckpointState['network'];
  tokenizer: unknown;
  evaluation: CheckpointState['evaluation'];
  adamPowers: CheckpointState['adamPowers'];
  trainedThrough?: CheckpointState['trainedThrough'];
  /** tfjs ModelArtifacts minus the weight bytes (checkpoint.ts' model.json). */
  model: Omit<io.ModelArtifacts, 'weightData'>;
}

/** Encodes a snapshot (see the layout above). Throws a CheckpointError naming a bad field. */
export function encodeSnapshot(snapshot: ModelSnapshot): Uint8Array {
  validateInfo(snapshot, 'snapshot');
  const { artifacts } = snapshot;
  if (artifacts.weightData === undefined || artifacts.weightSpecs === undefined) {
    throw new CheckpointError(`snapshot ${snapshot.id}: artifacts have no weights (weightData and weightSpecs are required)`);
  }
  if (!Number.isSafeInteger(snapshot.modelVersion) || snapshot.modelVersion < 0) {
    throw new CheckpointError(`snapshot.modelVersion must be a non-negative integer, got ${String(snapshot.modelVersion)}`);
  }
  if (!Number.isSafeInteger(snapshot.rowsSeen) || snapshot.rowsSeen < 0) {
    throw new CheckpointError(`snapshot.rowsSeen must be a non-negative integer, got ${String(snapshot.rowsSeen)}`);
  }
  const weightBytes = weightDataBytes(artifacts.weightData);
  const specBytes = totalSpecBytes(artifacts.weightSpecs, `snapshot ${snapshot.id}`);
  if (specBytes !== weightBytes) {
    throw new CheckpointError(`snapshot ${snapshot.id}: weight specs describe ${specBytes} bytes but weightData has ${weightBytes}`);
  }
  const metadata: Metadata = {
    snapshot: { id: snapshot.id, producer: snapshot.producer, publishedAtMs: snapshot.publishedAtMs, metrics: snapshot.metrics },
    modelVersion: snapshot.modelVersion,
    rowsSeen: snapshot.rowsSeen,
    network: snapshot.network,
    tokenizer: snapshot.tokenizer ?? null,
    evaluation: snapshot.evaluation,
    adamPowers: snapshot.adamPowers,
    ...(snapshot.trainedThrough ? { trainedThrough: snapshot.trainedThrough } : {}),
    model: modelJsonOf(artifacts),
  };
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  const total = HEADER_BYTES + json.length + weightBytes + HASH_BYTES;
  const out = Buffer.allocUnsafe(total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  out.writeUInt32LE(json.length, 12);
  out.writeBigUInt64LE(BigInt(weightBytes), 16);
  json.copy(out, HEADER_BYTES);
  let at = HEADER_BYTES + json.length;
  for (const part of weightParts(artifacts.weightData)) {
    out.set(new Uint8Array(part), at);
    at += part.byteLength;
  }
  createHash('sha256').update(out.subarray(0, at)).digest().copy(out, at);
  return out;
}

/** What the fixed header of a payload says (see the layout above). */
export interface SnapshotHeader {
  formatVersion: number;
  metadataBytes: number;
  weightBytes: number;
  /** The payload's length according to the header. */
  totalBytes: number;
}

/**
 * Reads and checks the fixed header only: magic, format version, and that the payload's
 * length is what the header declares. Cheap (no hashing), for readers that assemble many
 * payloads and decode only the last; `decodeSnapshot` does it too.
 */
export function readSnapshotHeader(bytes: Uint8Array): SnapshotHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new CheckpointError(`snapshot payload is truncated: ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const buf = asBuffer(bytes);
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CheckpointError(`not a textstream snapshot: the payload starts with ${buf.subarray(0, MAGIC.length).toString('hex')}, not the magic ${MAGIC.toString('hex')}`);
  }
  const formatVersion = buf.readUInt32LE(8);
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new CheckpointError(`snapshot has format version ${formatVersion}; this build reads version ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const metadataBytes = buf.readUInt32LE(12);
  const weights = buf.readBigUInt64LE(16);
  const declared = BigInt(HEADER_BYTES + metadataBytes + HASH_BYTES) + weights;
  if (declared > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CheckpointError(`snapshot header is damaged: it declares ${weights} bytes of weight data`);
  }
  const totalBytes = Number(declared);
  if (bytes.length < totalBytes) {
    throw new CheckpointError(`snapshot payload is truncated: ${bytes.length} bytes, the header declares ${totalBytes}`);
  }
  if (bytes.length > totalBytes) {
    throw new CheckpointError(`snapshot payload has ${bytes.length - totalBytes} unexpected bytes after the ${totalBytes} its header declares`);
  }
  return { formatVersion, metadataBytes, weightBytes: Number(weights), totalBytes };
}

/**
 * Decodes and verifies a payload from `encodeSnapshot`. A truncated, extended or damaged
 * payload, or one whose content is not a snapshot, is a CheckpointError that says which.
 * The weights are copied out, so `bytes` may be reused afterwards.
 */
export function decodeSnapshot(bytes: Uint8Array): ModelSnapshot {
  const header = readSnapshotHeader(bytes);
  const buf = asBuffer(bytes);
  const hashAt = header.totalBytes - HASH_BYTES;
  const actual = createHash('sha256').update(buf.subarray(0, hashAt)).digest();
  if (!actual.equals(buf.subarray(hashAt))) {
    throw new CheckpointError('snapshot payload is damaged: its SHA-256 does not match the content');
  }
  const metaEnd = HEADER_BYTES + header.metadataBytes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(HEADER_BYTES, metaEnd)));
  } catch (cause) {
    throw new CheckpointError('snapshot metadata is not valid UTF-8 JSON', { cause });
  }
  const meta = validateMetadata(parsed);
  const where = `snapshot ${meta.snapshot.id} from ${meta.snapshot.producer}`;
  const specBytes = totalSpecBytes(meta.model.weightSpecs!, where);
  if (specBytes !== header.weightBytes) {
    throw new CheckpointError(`${where} is invalid: weight specs describe ${specBytes} bytes, the payload holds ${header.weightBytes}`);
  }
  // A copy of exactly the weights: tfjs wants an ArrayBuffer of its own.
  const weightData = buf.buffer.slice(buf.byteOffset + metaEnd, buf.byteOffset + metaEnd + header.weightBytes) as ArrayBuffer;
  return {
    artifacts: { ...meta.model, weightData },
    network: meta.network,
    modelVersion: meta.modelVersion,
    rowsSeen: meta.rowsSeen,
    tokenizer: meta.tokenizer,
    evaluation: meta.evaluation ?? null,
    adamPowers: meta.adamPowers ?? null,
    ...(meta.trainedThrough ? { trainedThrough: meta.trainedThrough } : {}),
    id: meta.snapshot.id,
    producer: meta.snapshot.producer,
    publishedAtMs: meta.snapshot.publishedAtMs,
    metrics: meta.snapshot.metrics,
  };
}

function validateMetadata(value: unknown): Metadata {
  const invalid = (what: string): CheckpointError => new CheckpointError(`snapshot metadata is invalid: ${what}`);
  if (!isObject(value)) throw invalid('not a JSON object');
  const m = value as Partial<Metadata>;
  if (!isObject(m.snapshot)) throw invalid('snapshot is missing');
  validateInfo(m.snapshot, 'snapshot metadata: snapshot');
  if (!Number.isSafeInteger(m.modelVersion) || !Number.isSafeInteger(m.rowsSeen)) throw invalid('modelVersion or rowsSeen is not an integer');
  if (!isObject(m.network)) throw invalid('network is missing');
  if (!isObject(m.model) || m.model.modelTopology === undefined || !Array.isArray(m.model.weightSpecs)) {
    throw invalid('model lacks modelTopology or weightSpecs');
  }
  if (m.evaluation !== undefined && m.evaluation !== null && !isObject(m.evaluation)) throw invalid('evaluation is not an object');
  if (m.trainedThrough !== undefined && !isObject(m.trainedThrough)) throw invalid('trainedThrough is not an object');
  return m as Metadata;
}

/**
 * Snapshot fields every reader relies on. Producer ids become Kafka keys and header values,
 * so they are printable ASCII without spaces.
 */
function validateInfo(info: Partial<SnapshotInfo>, path: string): void {
  if (typeof info.id !== 'string' || info.id.length === 0 || info.id.length > 200) {
    throw new CheckpointError(`${path}.id must be a non-empty string of at most 200 characters, got ${JSON.stringify(info.id)}`);
  }
  if (typeof info.producer !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(info.producer)) {
    throw new CheckpointError(`${path}.producer must be 1 to 200 printable ASCII characters without spaces, got ${JSON.stringify(info.producer)}`);
  }
  if (!Number.isSafeInteger(info.publishedAtMs) || info.publishedAtMs! < 0) {
    throw new CheckpointError(`${path}.publishedAtMs must be milliseconds since the epoch, got ${String(info.publishedAtMs)}`);
  }
  if (info.metrics !== null && !isObject(info.metrics)) {
    throw new CheckpointError(`${path}.metrics must be an object or null`);
  }
}

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** Bytes the specs describe; the same rules as checkpoint.ts (no quantisation, known dtypes). */
function totalSpecBytes(specs: readonly io.WeightsManifestEntry[], where: string): number {
  let total = 0;
  for (const spec of specs) {
    const per = BYTES_PER_DTYPE[spec.dtype];
    if (per === undefined || spec.quantization !== undefined || !Array.isArray(spec.shape)) {
      throw new CheckpointError(`${where} is invalid: unsupported weight spec for ${String(spec.name)}`);
    }
    total += spec.shape.reduce((n, d) => n * d, 1) * per;
  }
  return total;
}

function weightParts(data: io.WeightData): ArrayBuffer[] {
  return Array.isArray(data) ? data : [data];
}

function weightDataBytes(data: io.WeightData): number {
  return weightParts(data).reduce((n, b) => n + b.byteLength, 0);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
