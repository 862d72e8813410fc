/**
 * Finding and moving checkpoint roots: a pipeline keeps one root per input under its
 * output folder's _checkpoints; a user may point at a checkpoint, a root or that folder.
 */
import { readdir, readFile, rename, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { fsyncDirectory, makeDirectoryDurably } from '../fs/durable.js';
import { Files, isCheckpointName, LATEST, loadCheckpointDir, parseManifest, QUARANTINE, readLatest, type CheckpointState } from './checkpoint.js';
import { loadLatestCheckpoint } from './checkpoint-recovery.js';

/** The folder of a pipeline's output folder that holds a checkpoint root per input (runtime/run-state.ts). */
export const CHECKPOINTS_FOLDER = '_checkpoints';

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
  await makeDirectoryDurably(to);
  // LATEST last: until it moves, `to` holds no pointer to a checkpoint not there yet.
  for (const name of [...names.filter((n) => n !== LATEST), ...names.filter((n) => n === LATEST)]) {
    await rename(path.join(from, name), path.join(to, name));
  }
  await fsyncDirectory(to);
  await fsyncDirectory(from);
  // A folder left empty goes too (it would sit in the output folder, where it used to be).
  if ((await readdir(from)).length === 0) await rmdir(from).catch(() => undefined);
  return names;
}
