/**
 * Crash recovery of a partition's Parquet output: checking that a final file is whole,
 * finding the last offset on disk, deleting a crashed writer's temporary files, moving
 * invalid files to quarantine and files of the legacy layout into place.
 */
import { open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SinkError } from '../errors.js';
import { fsyncDirectory, makeDirectoryDurably } from '../fs/durable.js';
import {
  FINAL_NAME,
  legacyPartitionDirectory,
  partitionDirectory,
  TEMP_SUFFIX,
  type LegacyKey,
  type ParquetLayout,
} from './parquet-layout.js';

const PARQUET_MAGIC = Buffer.from('PAR1', 'latin1');
/** 'PAR1', then at the end: footer length (uint32 LE) and 'PAR1'. */
const MIN_PARQUET_BYTES = 12;

/**
 * Why `file` is not a complete Parquet file, or null when it looks complete: 'PAR1' at
 * both ends and a footer length that fits between them. Reads 12 bytes whatever the
 * size (a truncated or zero-filled file fails it; its rows are not decoded). Throws
 * only when the file cannot be read at all.
 */
export async function checkParquetFile(file: string): Promise<string | null> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) return 'not a regular file';
    if (info.size < MIN_PARQUET_BYTES) return `${info.size} bytes, shorter than any Parquet file (truncated)`;
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(8);
    await handle.read(head, 0, 4, 0);
    await handle.read(tail, 0, 8, info.size - 8);
    if (!head.equals(PARQUET_MAGIC)) return 'does not start with the Parquet magic PAR1';
    if (!tail.subarray(4).equals(PARQUET_MAGIC)) return `does not end with the Parquet magic PAR1 (truncated at ${info.size} bytes?)`;
    const footer = tail.readUInt32LE(0);
    if (footer === 0 || footer > info.size - MIN_PARQUET_BYTES) return `footer length ${footer} does not fit in ${info.size} bytes`;
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') return 'not a regular file';
    throw err;
  } finally {
    await handle.close();
  }
}

/** A final-named file that failed checkParquetFile and was moved out of the partition. */
export interface QuarantinedFile {
  /** Where it was. */
  path: string;
  /** Where it is now: `<dir>/<pipeline>/_quarantine/input=<source>/partition-<p>/<name>.<ms>.quarantined`. */
  movedTo: string;
  reason: string;
  firstOffset: bigint;
  lastOffset: bigint;
  bytes: number;
}

/** What recoverPartitionOutput found and did. */
export interface PartitionRecovery {
  /** The last offset in a valid final file (what findLastOffsetOnDisk returns now), or null. */
  lastOffset: bigint | null;
  /** Temporary files of a crashed writer, deleted. */
  removedTempFiles: string[];
  /**
   * Temporary files that could not be deleted (a read-only or failing disk), with the
   * error code. Harmless where they are: a temporary name is never read as output, and
   * the next start tries again.
   */
  tempFilesLeft: { path: string; code: string }[];
  /**
   * Invalid final files above the last valid one, highest first. Their offsets are not
   * in the output any more: resuming after `lastOffset` writes them again, but only if
   * the consumer is not already past them (see the worker's recovery).
   */
  quarantined: QuarantinedFile[];
  /** Files of the legacy layout moved into the partition's folder (see legacyPartitionDirectory). */
  migrated: string[];
}

interface FinalFile {
  name: string;
  firstOffset: bigint;
  lastOffset: bigint;
}

/** Final-named entries of a partition directory, highest last offset first; null when there is no directory. */
async function listFinalFiles(dir: string): Promise<FinalFile[] | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SinkError(`cannot list ${dir}`, { cause: err });
  }
  const files: FinalFile[] = [];
  for (const name of names) {
    const match = FINAL_NAME.exec(name);
    if (match) files.push({ name, firstOffset: BigInt(match[1]!), lastOffset: BigInt(match[2]!) });
  }
  return files.sort((a, b) => (a.lastOffset === b.lastOffset ? (b.firstOffset > a.firstOffset ? 1 : -1) : b.lastOffset > a.lastOffset ? 1 : -1));
}

/**
 * Walks the final files from the highest offset down and returns the first valid one;
 * each invalid one on the way goes to `onInvalid`. Only files above the end are checked
 * (one or two reads each): a crash cannot leave a final name on a partial file (publish
 * is write temp → fsync → rename), so an invalid one is rare — a disk error or a bad copy.
 */
async function findLastValidFile(
  dir: string,
  onInvalid: (file: FinalFile, reason: string) => Promise<void>,
): Promise<FinalFile | null> {
  for (const file of (await listFinalFiles(dir)) ?? []) {
    let reason: string | null;
    try {
      reason = await checkParquetFile(path.join(dir, file.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // replaced or moved meanwhile
      throw new SinkError(`cannot check ${path.join(dir, file.name)}`, { cause: err });
    }
    if (reason === null) return file;
    await onInvalid(file, reason);
  }
  return null;
}

/**
 * The last offset already in a durable file for (source, partition), found by listing
 * final file names (temporary files are ignored: they were never published) and checking
 * the footer of the highest ones: a final file that is not a complete Parquet file
 * (truncated by a disk error or a copy) never counts as the end. A consumer resumes after
 * max(committed offset, this) so a crash between rename and commit does not write the
 * same rows twice (Kafka Connect's HDFS sink recovers the same way). Returns null when
 * nothing valid has been written. Changes nothing on disk: see recoverPartitionOutput.
 */
export async function findLastOffsetOnDisk(
  layout: ParquetLayout,
  source: string,
  partition: number,
): Promise<bigint | null> {
  const last = await findLastValidFile(partitionDirectory(layout, source, partition), async () => {});
  return last === null ? null : last.lastOffset;
}

/**
 * Deletes temporary files a crashed writer left in (source, partition); returns how many.
 * Call it only for a partition this worker owns (e.g. on Kafka partition assignment):
 * another live writer's temp file looks the same.
 */
export async function removeStaleTempFiles(layout: ParquetLayout, source: string, partition: number): Promise<number> {
  return (await removeTempFiles(partitionDirectory(layout, source, partition))).removed.length;
}

async function removeTempFiles(dir: string): Promise<{ removed: string[]; left: { path: string; code: string }[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed: [], left: [] };
    throw new SinkError(`cannot list ${dir}`, { cause: err });
  }
  const stale = names.filter((n) => n.startsWith('.') && n.endsWith(TEMP_SUFFIX)).map((n) => path.join(dir, n));
  const removed: string[] = [];
  const left: { path: string; code: string }[] = [];
  // unlink, not rm: rm answers EPERM on a read-only folder by treating the file as a
  // folder, and fails with a misleading ENOTDIR.
  await Promise.all(
    stale.map((file) =>
      unlink(file).then(
        () => removed.push(file),
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') removed.push(file);
          else left.push({ path: file, code: err.code ?? 'unknown' });
        },
      ),
    ),
  );
  return { removed, left };
}

const QUARANTINE_DIR = '_quarantine';
/** Not `.parquet`: globs of published files (DuckDB read_parquet, inspect, report) must not read it. */
const QUARANTINE_SUFFIX = '.quarantined';

/** `<dir>/<pipeline>/_quarantine/input=<source>/partition-<p>`: beside the data, never read as data. */
export function quarantineDirectory(layout: ParquetLayout, source: string, partition: number): string {
  return partitionDirectory({ dir: path.join(layout.dir, layout.pipeline), pipeline: QUARANTINE_DIR }, source, partition);
}

export interface RecoveryOptions {
  /** Also move the partition's files of the legacy layout, with this key, into place first. */
  legacyKey?: LegacyKey;
  /** Clock for quarantined names; tests pass their own. */
  now?: () => number;
}

/**
 * Start-up recovery of a partition this worker now owns: moves its files of the legacy
 * layout into place, deletes a crashed writer's temporary files, moves final files that
 * fail checkParquetFile (from the highest offset down to the first valid one) to
 * quarantineDirectory, and returns the last offset of a valid file. Call it only for an
 * owned partition, before writing to it.
 */
export async function recoverPartitionOutput(
  layout: ParquetLayout,
  source: string,
  partition: number,
  options: RecoveryOptions = {},
): Promise<PartitionRecovery> {
  const now = options.now ?? Date.now;
  const dir = partitionDirectory(layout, source, partition);
  const migrated = options.legacyKey === undefined ? [] : await migrateLegacyPartition(legacyPartitionDirectory(layout, options.legacyKey, source, partition), dir);
  const temp = await removeTempFiles(dir);
  const quarantined: QuarantinedFile[] = [];
  const last = await findLastValidFile(dir, async (file, reason) => {
    const from = path.join(dir, file.name);
    const target = quarantineDirectory(layout, source, partition);
    const movedTo = path.join(target, `${file.name}.${now()}${QUARANTINE_SUFFIX}`);
    try {
      const { size } = await stat(from);
      await makeDirectoryDurably(target);
      await rename(from, movedTo);
      await fsyncDirectory(dir);
      await fsyncDirectory(target);
      quarantined.push({ path: from, movedTo, reason, firstOffset: file.firstOffset, lastOffset: file.lastOffset, bytes: size });
    } catch (err) {
      // Left in place it would count as the partition's end on the next start.
      throw new SinkError(`cannot quarantine ${from} (${reason}) to ${movedTo}`, { cause: err });
    }
  });
  return { lastOffset: last === null ? null : last.lastOffset, removedTempFiles: temp.removed, tempFilesLeft: temp.left, quarantined, migrated };
}

/**
 * Moves the final files of a legacy partition folder into `dir` (a rename: same disk,
 * atomic per file), deletes its temporary files, and removes the folder and its source
 * folder once empty. Returns the new paths. A name already in `dir` is left where it is
 * and stops the move: two copies of one range need a person to look (`textstream inspect`).
 */
async function migrateLegacyPartition(legacy: string, dir: string): Promise<string[]> {
  const files = await listFinalFiles(legacy);
  if (files === null) return [];
  await removeTempFiles(legacy);
  await makeDirectoryDurably(dir);
  const moved: string[] = [];
  for (const { name } of files) {
    const to = path.join(dir, name);
    if (await stat(to).then(() => true, () => false)) {
      throw new SinkError(`cannot move ${path.join(legacy, name)} to ${to}: a file of that name is already there`, { canRetry: false });
    }
    await rename(path.join(legacy, name), to);
    moved.push(to);
  }
  await fsyncDirectory(dir);
  // Only empty folders go: anything else left there stays for a person to see.
  for (const folder of [legacy, path.dirname(legacy)]) {
    if ((await readdir(folder)).length > 0) break;
    await rmdir(folder).catch(() => {});
  }
  return moved;
}
