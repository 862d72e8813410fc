/**
 * Checkpoints on disk: everything needed to resume training exactly where it stopped —
 * model topology and weights, Adam's state, the frozen tokenizer, model version, rows seen
 * and (optionally) the running evaluation.
 *
 * Layout of a checkpoint root:
 *
 *   <root>/LATEST                   name of the current checkpoint directory
 *   <root>/ckpt-<version>-<time>/   one complete checkpoint:
 *       manifest.json               format, counters, network config, file sizes + SHA-256
 *       model.json                  tfjs ModelArtifacts minus the weight bytes
 *       weights.bin                 model weights, then optimizer weights (tfjs encoding)
 *       tokenizer.json              the caller's tokenizer, opaque to us
 *   <root>/.tmp-…                   a save in progress (or abandoned by a crash); ignored
 *   <root>/quarantine/              damaged checkpoints moved aside at start (never deleted)
 *
 * A save writes and fsyncs every file in a temporary directory, renames it into place,
 * then atomically replaces LATEST (temp file, fsync, rename, fsync the directory), and
 * only then prunes older checkpoints (the newest `keep`, default 2, stay). A crash at any
 * point leaves LATEST naming a complete checkpoint and, at worst, a `.tmp-` leftover that
 * loading never reads. Loading verifies sizes and hashes, so a damaged checkpoint (disk
 * damage, a copy cut short, a hand edit) is never read as valid: by default it raises
 * CheckpointError; a worker starting up asks for `onDamaged: 'quarantine'` instead, which
 * moves it to <root>/quarantine/ and falls back to the newest intact checkpoint.
 *
 * This is the file half of a tfjs IOHandler (tfjs' own `file://` handler exists only in
 * tfjs-node); the learner moves ModelArtifacts in and out of tfjs with `model.save` and
 * `tf.io.fromMemory`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { io } from '@tensorflow/tfjs';
import { CheckpointError, ConfigError } from '../errors.js';
import type { NetworkConfig } from './network.js';
import type { EvaluatorState } from './evaluation.js';

export const CHECKPOINT_FORMAT = 'textstream-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;

/** The folder of a pipeline's output folder that holds a checkpoint root per input (runtime/run-state.ts). */
export const CHECKPOINTS_FOLDER = '_checkpoints';
const LATEST = 'LATEST';
const TMP_PREFIX = '.tmp-';
const DIR_PREFIX = 'ckpt-';
const QUARANTINE = 'quarantine';
const Files = { MANIFEST: 'manifest.json', MODEL: 'model.json', WEIGHTS: 'weights.bin', TOKENIZER: 'tokenizer.json' } as const;

/**
 * A checkpoint whose content is wrong (missing or truncated files, hash mismatches, not a
 * manifest): what 'quarantine' moves aside. Still a CheckpointError with the same message.
 */
class DamagedCheckpointError extends CheckpointError {}

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
    await fsyncDir(tmp);
    await rename(tmp, dir);
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    throw new CheckpointError(`could not write checkpoint ${dir}: ${String(cause)}`, { cause, canRetry: true });
  }
  await fsyncDir(root);
  await publishLatest(root, name);
  await prune(root, name, keep);
  let bytes = 0;
  for (const entry of Object.values(files)) bytes += entry.bytes;
  return { dir, bytes };
}

/** What `loadLatestCheckpoint` does with a damaged checkpoint (see LoadCheckpointOptions). */
export const DamagedCheckpointPolicies = { FAIL: 'fail', QUARANTINE: 'quarantine' } as const;
export type DamagedCheckpointPolicy = (typeof DamagedCheckpointPolicies)[keyof typeof DamagedCheckpointPolicies];

export interface LoadCheckpointOptions {
  /**
   * 'fail' (the default): a damaged checkpoint, a LATEST naming a missing directory or
   * garbage in LATEST is a CheckpointError. For read-only callers such as `model export`,
   * which must not move a user's files.
   *
   * 'quarantine': for a worker starting up. Each damaged checkpoint (and a LATEST that
   * names none) is moved to <root>/quarantine/, the newest intact checkpoint is loaded
   * instead and LATEST is repointed at it; null when none is left. A root with checkpoint
   * directories but no LATEST (a crash between a first save's rename and its publish)
   * loads its newest intact one too. Moving, not skipping, keeps a damaged checkpoint from
   * ever being read again, and keeps the next save's pruning (which keeps the newest names)
   * from deleting the intact one in its place. A checkpoint that is merely unreadable
   * (permissions, I/O errors) or from a newer format is an error in both modes: it is not
   * known to be damaged.
   */
  onDamaged?: DamagedCheckpointPolicy;
  /** Told about each checkpoint moved to quarantine; log `event.message` at warn. */
  onQuarantine?: (event: QuarantinedCheckpoint) => void;
}

export interface QuarantinedCheckpoint {
  /** The damaged checkpoint directory's name, or LATEST when the pointer itself was bad. */
  name: string;
  /** Why it cannot be used. */
  reason: string;
  /** Where it is now: <root>/quarantine/<name> (LATEST-<ms> for the pointer). */
  movedTo: string;
  /** The checkpoint loaded instead; null when no intact one is left (a fresh start). */
  fallback: string | null;
  /** One line with all of the above, for the log. */
  message: string;
}

/**
 * Loads the checkpoint LATEST names; null when `root` holds no published checkpoint. With
 * `onDamaged: 'quarantine'`, recovers from damage instead of failing (see the option).
 */
export async function loadLatestCheckpoint(root: string, options: LoadCheckpointOptions = {}): Promise<CheckpointState | null> {
  if (options.onDamaged === DamagedCheckpointPolicies.QUARANTINE) return loadRecovering(root, options.onQuarantine);
  const latest = await readLatest(root);
  if (latest.kind === 'missing') return null;
  if (latest.kind === 'garbage') throw new CheckpointError(latest.reason);
  return loadCheckpointDir(path.join(root, latest.name));
}

/**
 * Tries LATEST's checkpoint, then every other checkpoint directory, newest first; quarantines each damaged one on the way. Every move is reported, even
 * when a later step throws.
 */
async function loadRecovering(root: string, onQuarantine: LoadCheckpointOptions['onQuarantine']): Promise<CheckpointState | null> {
  const moved: { name: string; reason: string; movedTo: string }[] = [];
  let chosen: string | null = null;
  let failed = true;
  try {
    const latest = await readLatest(root);
    const names = await listCheckpoints(root);
    const published = latest.kind === 'name' && names.includes(latest.name) ? latest.name : null;
    if (latest.kind === 'garbage') {
      moved.push({ name: LATEST, reason: latest.reason, movedTo: await quarantine(root, LATEST) });
    } else if (latest.kind === 'name' && published === null) {
      const reason = `${path.join(root, LATEST)} names ${latest.name}, which does not exist`;
      moved.push({ name: LATEST, reason, movedTo: await quarantine(root, LATEST) });
    }
    // LATEST is rewritten unless it names the checkpoint that loads.
    let repoint = published === null;
    const order = published !== null ? [published, ...names.filter((n) => n !== published)] : names;
    let state: CheckpointState | null = null;
    for (const name of order) {
      try {
        state = await loadCheckpointDir(path.join(root, name));
        chosen = name;
        break;
      } catch (err) {
        if (!(err instanceof DamagedCheckpointError)) throw err;
        moved.push({ name, reason: err.message, movedTo: await quarantine(root, name) });
        if (name === published) repoint = true;
      }
    }
    if (chosen !== null && repoint) {
      await publishLatest(root, chosen);
    } else if (chosen === null && published !== null) {
      // LATEST names a checkpoint now in quarantine: move it there too, so the next start
      // finds an empty root instead of reporting the same damage again.
      await quarantine(root, LATEST);
    }
    failed = false;
    return state;
  } finally {
    for (const m of moved) {
      const outcome =
        chosen !== null
          ? `loading ${chosen} instead`
          : failed
            ? 'loading stopped on the error that follows'
            : `no intact checkpoint is left in ${root}: starting without one`;
      onQuarantine?.({ ...m, fallback: chosen, message: `${m.reason}; moved it to ${m.movedTo}; ${outcome}` });
    }
  }
}

type LatestPointer = { kind: 'missing' } | { kind: 'name'; name: string } | { kind: 'garbage'; reason: string };

async function readLatest(root: string): Promise<LatestPointer> {
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
function isCheckpointName(name: string): boolean {
  return /^ckpt-[\w.-]+$/.test(name);
}

/** Checkpoint directory names under `root`, newest save first. */
async function listCheckpoints(root: string): Promise<string[]> {
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

/** Moves `root/name` to `root/quarantine/`, never over an earlier entry there; returns where. */
async function quarantine(root: string, name: string): Promise<string> {
  const dir = path.join(root, QUARANTINE);
  const base = name === LATEST ? `${LATEST}-${Date.now()}` : name;
  try {
    await mkdir(dir, { recursive: true });
    let target = path.join(dir, base);
    for (let i = 1; (await stat(target).catch(() => null)) !== null; i++) target = path.join(dir, `${base}.${i}`);
    await rename(path.join(root, name), target);
    await fsyncDir(dir);
    await fsyncDir(root);
    return target;
  } catch (cause) {
    throw new CheckpointError(`could not move the damaged ${path.join(root, name)} to ${dir}: ${String(cause)}`, { cause });
  }
}

/**
 * Loads the checkpoint a user points at: one checkpoint directory (holding manifest.json),
 * a checkpoint root (holding LATEST), or a pipeline's output folder (or its _checkpoints)
 * with one input's root. Anything else is a ConfigError naming `where`, the argument or
 * option the path came from.
 */
export async function loadCheckpointAt(checkpointPath: string, where = '<checkpoint dir>'): Promise<CheckpointState> {
  let isDir = false;
  try {
    isDir = (await stat(checkpointPath)).isDirectory();
  } catch {
    throw new ConfigError(where, `${checkpointPath} does not exist`);
  }
  if (!isDir) throw new ConfigError(where, `${checkpointPath} is not a directory`);
  if (await exists(path.join(checkpointPath, Files.MANIFEST))) return loadCheckpointDir(checkpointPath);
  const latest = await loadLatestCheckpoint(checkpointPath);
  if (latest !== null) return latest;
  // A pipeline's output folder, or its _checkpoints folder: one root per input below it.
  const roots = await inputRoots(checkpointPath);
  if (roots.length === 1) return (await loadLatestCheckpoint(roots[0]!))!;
  if (roots.length > 1) {
    throw new ConfigError(where, `${checkpointPath} holds the checkpoints of ${roots.length} inputs; name one: ${roots.join(', ')}`);
  }
  throw new ConfigError(where, `${checkpointPath} holds no checkpoint (neither a manifest.json nor a LATEST file)`);
}

/** The checkpoint roots (folders with a LATEST) directly under `dir` or under `dir/_checkpoints`. */
async function inputRoots(dir: string): Promise<string[]> {
  const parent = (await exists(path.join(dir, CHECKPOINTS_FOLDER))) ? path.join(dir, CHECKPOINTS_FOLDER) : dir;
  const entries = await readdir(parent, { withFileTypes: true });
  const roots: string[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (await exists(path.join(parent, entry.name, LATEST))) roots.push(path.join(parent, entry.name));
  }
  return roots;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
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

function parseManifest(bytes: Uint8Array, dir: string): Manifest {
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

async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so a rename inside it survives a power cut. */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function publishLatest(root: string, name: string): Promise<void> {
  const tmp = path.join(root, `${TMP_PREFIX}${LATEST}-${randomUUID()}`);
  try {
    await writeDurably(tmp, utf8(`${name}\n`));
    await rename(tmp, path.join(root, LATEST));
    await fsyncDir(root);
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

/**
 * The sources the latest checkpoint in `root` trained on (its trainedThrough), or null when
 * `root` holds no checkpoint. Reads the manifest only.
 */
export async function latestCheckpointSources(root: string): Promise<string[] | null> {
  const latest = await readLatest(root);
  if (latest.kind !== 'name') return null;
  const manifest = parseManifest(await readFile(path.join(root, latest.name, Files.MANIFEST)), root);
  return Object.keys(manifest.trainedThrough ?? {});
}

/**
 * Moves the checkpoints of `from` (LATEST, the checkpoint directories and the quarantine)
 * into `to`, one rename each; for a root saved before checkpoints had a folder per input.
 * Returns the names moved; nothing when `to` already holds a LATEST. Removes `from` when
 * that leaves it empty.
 */
export async function moveCheckpoints(from: string, to: string): Promise<string[]> {
  if ((await readLatest(to)).kind !== 'missing') return [];
  const names = (await readdir(from)).filter((n) => n === LATEST || n === QUARANTINE || isCheckpointName(n));
  await mkdir(to, { recursive: true });
  // LATEST last: until it moves, `to` holds no pointer to a checkpoint not there yet.
  for (const name of [...names.filter((n) => n !== LATEST), ...names.filter((n) => n === LATEST)]) {
    await rename(path.join(from, name), path.join(to, name));
  }
  await fsyncDir(to);
  await fsyncDir(from);
  // A folder left empty goes too (it would sit in the output folder, where it used to be).
  if ((await readdir(from)).length === 0) await rmdir(from).catch(() => undefined);
  return names;
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
