/**
 * Loading a checkpoint root's latest checkpoint, and what to do when it is damaged: by
 * default a CheckpointError; a worker starting up asks for `onDamaged: 'quarantine'`
 * instead, which moves each damaged checkpoint to <root>/quarantine/ (never deleted) and
 * falls back to the newest intact one.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from '../errors.js';
import { fsyncDirectory } from '../fs/durable.js';
import {
  DamagedCheckpointError,
  LATEST,
  listCheckpoints,
  loadCheckpointDir,
  publishLatest,
  QUARANTINE,
  readLatest,
  type CheckpointState,
} from './checkpoint.js';

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

/** Moves `root/name` to `root/quarantine/`, never over an earlier entry there; returns where. */
async function quarantine(root: string, name: string): Promise<string> {
  const dir = path.join(root, QUARANTINE);
  const base = name === LATEST ? `${LATEST}-${Date.now()}` : name;
  try {
    await mkdir(dir, { recursive: true });
    let target = path.join(dir, base);
    for (let i = 1; (await stat(target).catch(() => null)) !== null; i++) target = path.join(dir, `${base}.${i}`);
    await rename(path.join(root, name), target);
    await fsyncDirectory(dir);
    await fsyncDirectory(root);
    return target;
  } catch (cause) {
    throw new CheckpointError(`could not move the damaged ${path.join(root, name)} to ${dir}: ${String(cause)}`, { cause });
  }
}
