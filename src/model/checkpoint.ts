/**
 * Checkpoints on disk: everything needed to resume training where it stopped. This file
 * holds the format, saving (temporary directory, fsync, rename, then LATEST), and loading
 * one verified checkpoint directory; checkpoint-recovery.ts loads a root's latest (and
 * quarantines damaged ones), checkpoint-roots.ts finds and moves roots. The layout and
 * the crash guarantees: docs/operations.md, "Checkpoint and snapshot formats".
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { io } from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import { fsyncDirectory, writeDurably } from '../fs/durable.js';
import type { NetworkConfig } from './network.js';
import type { EvaluatorState } from './evaluation.js';

export const CHECKPOINT_FORMAT = 'textstream-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Names inside a checkpoint root and directory: the format (checkpoint-recovery.ts and checkpoint-roots.ts read them too). */
export const LATEST = 'LATEST';
const TMP_PREFIX = '.tmp-';
const DIR_PREFIX = 'ckpt-';
export const QUARANTINE = 'quarantine';
export const Files = { MANIFEST: 'manifest.json', MODEL: 'model.json', WEIGHTS: 'weights.bin', TOKENIZER: 'tokenizer.json' } as const;

/**
 * A checkpoint whose content is wrong (missing or truncated files, hash mismatches, not a
 * manifest): what 'quarantine' moves aside. Still a CheckpointError with the same message.
 */
export class DamagedCheckpointError extends CheckpointError {}

/** What a checkpoint holds, in memory. */
export interface CheckpointState {
  /** tfjs artifacts saved with includeOptimizer: topology, training config, weights. */
  artifacts: io.ModelArtifacts;
  network: NetworkConfig;
  /** Optimiser steps applied so far. */
  modelVersion: number;
  /** Rows processed (scored) so far, labelled or not. */
  rowsSeen: number;
  /** The caller's tokenizer (e.g. Keras' tokenizer.to_json() object); stored verbatim. */
  tokenizer: unknown;
  evaluation: EvaluatorState | null;
  /**
   * Per source and partition, the last offset the model has learnt from (source → partition
   * → offset as a decimal string): after a crash, what is after it is learnt again. Absent
   * in checkpoints from before it was kept.
   */
  trainedThrough?: TrainedThrough;
  /**
   * Adam's running powers beta1^t and beta2^t. tfjs saves only the step count and
   * recomputes them with pow() on load, which differs from the running product in the
   * last float32 bit after some dozens of steps; storing them makes the next step after a
   * restore bit-identical. Null for optimisers without them.
   */
  adamPowers: AdamPowers | null;
}

export type TrainedThrough = Record<string, Record<string, string>>;

export interface AdamPowers {
  beta1Power: number;
  beta2Power: number;
}

interface FileEntry {
  bytes: number;
  sha256: string;
}

interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  createdAt: string;
  modelVersion: number;
  rowsSeen: number;
  network: NetworkConfig;
  evaluation: EvaluatorState | null;
  adamPowers: AdamPowers | null;
  trainedThrough?: TrainedThrough;
  files: Record<string, FileEntry>;
}

export interface SaveCheckpointOptions {
  /** Complete checkpoints to keep, the new one included (default 2, minimum 1). */
  keep?: number;
}

export interface SavedCheckpoint {
  dir: string;
  bytes: number;
}

/** The artifacts without their weight bytes: what model.json holds (and a snapshot's metadata). */
export function modelJsonOf(artifacts: io.ModelArtifacts): Omit<io.ModelArtifacts, 'weightData'> {
  return {
    modelTopology: artifacts.modelTopology,
    trainingConfig: artifacts.trainingConfig,
    weightSpecs: artifacts.weightSpecs,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
  };
}

/** Writes `state` as a new checkpoint under `root` and makes it the latest. */
export async function saveCheckpoint(root: string, state: CheckpointState, options: SaveCheckpointOptions = {}): Promise<SavedCheckpoint> {
  const keep = Math.max(1, options.keep ?? 2);
  await mkdir(root, { recursive: true });
  const { artifacts } = state;
  if (artifacts.weightData === undefined || artifacts.weightSpecs === undefined) {
    throw new CheckpointError('cannot save a checkpoint without weights');
  }
  const weights = new Uint8Array(joinWeightData(artifacts.weightData));
  const modelJson = modelJsonOf(artifacts);
  const payload: Record<string, Uint8Array> = {
    [Files.MODEL]: utf8(JSON.stringify(modelJson)),
    [Files.WEIGHTS]: weights,
    [Files.TOKENIZER]: utf8(JSON.stringify(state.tokenizer ?? null)),
  };
  const files: Record<string, FileEntry> = {};
  for (const [name, bytes] of Object.entries(payload)) files[name] = { bytes: bytes.length, sha256: sha256(bytes) };
  const manifest: Manifest = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    modelVersion: state.modelVersion,
    rowsSeen: state.rowsSeen,
    network: state.network,
    evaluation: state.evaluation,
    adamPowers: state.adamPowers,
    ...(state.trainedThrough ? { trainedThrough: state.trainedThrough } : {}),
    files,
  };

  const name = `${DIR_PREFIX}${String(state.modelVersion).padStart(12, '0')}-${Date.now()}`;
  const tmp = path.join(root, `${TMP_PREFIX}${randomUUID()}`);
  const dir = path.join(root, name);
  await mkdir(tmp);
  try {
    for (const [file, bytes] of Object.entries(payload)) await writeDurably(path.join(tmp, file), bytes);
    await writeDurably(path.join(tmp, Files.MANIFEST), utf8(JSON.stringify(manifest, null, 2)));
    await fsyncDirectory(tmp);
    await rename(tmp, dir);
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(`could not write checkpoint ${dir}: ${String(cause)}`, { cause, canRetry: true });
  }
  await fsyncDirectory(root);
  await publishLatest(root, name);
  await prune(root, name, keep);
  let bytes = 0;
  for (const entry of Object.values(files)) bytes += entry.bytes;
  return { dir, bytes };
}

type LatestPointer = { kind: 'missing' } | { kind: 'name'; name: string } | { kind: 'garbage'; reason: string };

export async function readLatest(root: string): Promise<LatestPointer> {
  const file = path.join(root, LATEST);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if (isNotFound(cause)) return { kind: 'missing' };
    if (errorCode(cause) === 'EISDIR') return { kind: 'garbage', reason: `${file} is a directory, not the name of a checkpoint` };
    throw new CheckpointError(`could not read ${file}: ${String(cause)}`, { cause });
  }
  const name = text.trim();
  if (!isCheckpointName(name)) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
    return { kind: 'garbage', reason: `${file} names ${JSON.stringify(shown)}, which is not a checkpoint directory` };
  }
  return { kind: 'name', name };
}

/** A checkpoint directory's name: one path component, never `..` or a path. */
export function isCheckpointName(name: string): boolean {
  return /^ckpt-[\w.-]+$/.test(name);
}

/** Checkpoint directory names under `root`, newest save first. */
export async function listCheckpoints(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (cause) {
    if (isNotFound(cause)) return [];
    throw new CheckpointError(`could not list ${root}: ${String(cause)}`, { cause });
  }
  return bySaveTime(entries.filter(isCheckpointName)).reverse();
}

/**
 * Checkpoint names, oldest save first: by the save time their names end with, not by
 * model version, which starts at 0 again when a fresh run of the same input saves into
 * the same root.
 */
function bySaveTime(names: string[]): string[] {
  const savedAt = (name: string): number => Number(/-(\d+)$/.exec(name)?.[1] ?? 0);
  return [...names].sort((a, b) => savedAt(a) - savedAt(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Loads and verifies one checkpoint directory. */
export async function loadCheckpointDir(dir: string): Promise<CheckpointState> {
  const manifest = parseManifest(await readChecked(dir, Files.MANIFEST), dir);
  for (const name of Object.values(Files)) {
    if (name !== Files.MANIFEST && manifest.files[name] === undefined) {
      throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: manifest lists no ${name}`);
    }
  }
  const read = async (name: string): Promise<Uint8Array> => {
    const expected = manifest.files[name]!;
    const bytes = await readChecked(dir, name);
    if (bytes.length !== expected.bytes) {
      throw new DamagedCheckpointError(
        `checkpoint ${dir} is damaged: ${name} has ${bytes.length} bytes, the manifest says ${expected.bytes} (truncated write?)`,
      );
    }
    if (sha256(bytes) !== expected.sha256) {
      throw new DamagedCheckpointError(`checkpoint ${dir} is damaged: ${name} does not match its SHA-256 in the manifest`);
    }
    return bytes;
  };
  const model = parseJson(await read(Files.MODEL), dir, Files.MODEL) as Partial<io.ModelArtifacts>;
  const weights = await read(Files.WEIGHTS);
  const tokenizer = parseJson(await read(Files.TOKENIZER), dir, Files.TOKENIZER);
  if (model.modelTopology === undefined || !Array.isArray(model.weightSpecs)) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: ${Files.MODEL} lacks modelTopology or weightSpecs`);
  }
  const specBytes = model.weightSpecs.reduce((sum, spec) => sum + weightSpecBytes(spec, dir), 0);
  if (specBytes !== weights.length) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: weight specs describe ${specBytes} bytes, ${Files.WEIGHTS} has ${weights.length}`);
  }
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return {
    artifacts: { ...model, weightData },
    network: manifest.network,
    modelVersion: manifest.modelVersion,
    rowsSeen: manifest.rowsSeen,
    tokenizer,
    evaluation: manifest.evaluation ?? null,
    adamPowers: manifest.adamPowers ?? null,
    ...(manifest.trainedThrough ? { trainedThrough: manifest.trainedThrough } : {}),
  };
}

function joinWeightData(data: io.WeightData): ArrayBuffer {
  if (!Array.isArray(data)) return data;
  const total = data.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function weightSpecBytes(spec: io.WeightsManifestEntry, dir: string): number {
  const per = BYTES_PER_DTYPE[spec.dtype];
  if (per === undefined || spec.quantization !== undefined || !Array.isArray(spec.shape)) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: unsupported weight spec for ${spec.name}`);
  }
  return spec.shape.reduce((n, d) => n * d, 1) * per;
}

export function parseManifest(bytes: Uint8Array, dir: string): Manifest {
  const m = parseJson(bytes, dir, Files.MANIFEST) as Partial<Manifest> | null;
  if (m === null || typeof m !== 'object' || m.format !== CHECKPOINT_FORMAT) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: ${Files.MANIFEST} is not a ${CHECKPOINT_FORMAT} manifest`);
  }
  if (m.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      `checkpoint ${dir} has format version ${String(m.formatVersion)}; this build reads version ${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  if (
    !Number.isSafeInteger(m.modelVersion) ||
    !Number.isSafeInteger(m.rowsSeen) ||
    typeof m.network !== 'object' ||
    typeof m.files !== 'object' ||
    m.files === null
  ) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: ${Files.MANIFEST} lacks modelVersion, rowsSeen, network or files`);
  }
  return m as Manifest;
}

async function readChecked(dir: string, name: string): Promise<Uint8Array> {
  try {
    return await readFile(path.join(dir, name));
  } catch (cause) {
    // Missing, or a directory where a file belongs (or the reverse): damage. Anything else
    // (permissions, I/O errors) says nothing about the checkpoint itself.
    const code = errorCode(cause);
    if (code === 'ENOENT' || code === 'EISDIR') {
      throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: ${name} ${code === 'ENOENT' ? 'is missing' : 'is not a file'}`, { cause });
    }
    if (code === 'ENOTDIR') throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: it is not a directory`, { cause });
    throw new CheckpointError(`checkpoint ${dir} is invalid: ${name} could not be read (${String(cause)})`, { cause });
  }
}

function parseJson(bytes: Uint8Array, dir: string, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch (cause) {
    throw new DamagedCheckpointError(`checkpoint ${dir} is invalid: ${name} is not valid JSON`, { cause });
  }
}

export async function publishLatest(root: string, name: string): Promise<void> {
  const tmp = path.join(root, `${TMP_PREFIX}${LATEST}-${randomUUID()}`);
  try {
    await writeDurably(tmp, utf8(`${name}\n`));
    await rename(tmp, path.join(root, LATEST));
    await fsyncDirectory(root);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new CheckpointError(`could not publish checkpoint ${name} in ${root}: ${String(cause)}`, { cause, canRetry: true });
  }
}

/**
 * Deletes checkpoints older than the newest `keep`, and temporary entries a crash left
 * behind more than a day ago (younger ones may belong to a save still running).
 */
async function prune(root: string, current: string, keep: number): Promise<void> {
  const entries = await readdir(root);
  const checkpoints = bySaveTime(entries.filter((e) => e.startsWith(DIR_PREFIX) && e !== current));
  const stale = checkpoints.slice(0, Math.max(0, checkpoints.length - (keep - 1)));
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const e of entries.filter((e) => e.startsWith(TMP_PREFIX))) {
    const info = await stat(path.join(root, e)).catch(() => null);
    if (info !== null && info.mtimeMs < dayAgo) stale.push(e);
  }
  for (const e of stale) await rm(path.join(root, e), { recursive: true, force: true });
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function isNotFound(err: unknown): boolean {
  return errorCode(err) === 'ENOENT';
}
