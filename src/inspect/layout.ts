import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { DEAD_LETTER_FOLDER, LEGACY_DEAD_LETTER_FILE } from '../sinks/dead-letter-file.js';
import { INPUT_KEY, sourceDirectoryName } from '../sinks/parquet-layout.js';

/**
 * What a run left in an output folder, sorted into what `inspect` reads (published Parquet
 * files, grouped by partition), what it only lists (temporary files) and what does not
 * fit the sink's layout `<pipeline>/input=<source>/partition-<p>/<first>-<last>.parquet`
 * (sinks/parquet-layout.ts). Files of the legacy layout `<key>=<source>/partition=<p>/` are read
 * too, and flagged: the next `replay --resume` or worker start moves them into place.
 */
export interface OutputLayout {
  partitions: PartitionFiles[];
  /** Hidden `.<first>-<uuid>.parquet.inprogress` files: a writer still at work, or one that crashed. */
  tempFiles: Array<{ path: string; bytes: number }>;
  /** `.parquet` files whose path or name does not fit the layout; never read as data. */
  strayFiles: Array<{ path: string; reason: string }>;
  /** `_dead-letters/<input>.jsonl`, and the legacy `dead-letters.jsonl`. */
  deadLetterFiles: string[];
}

export interface PartitionFiles {
  pipeline: string;
  /** The source's name in its folder, unescaped (`spamassassin` for `input=spamassassin`, from `spamassassin.parquet`). */
  source: string;
  /** True for a folder of the legacy layout (`<key>=<source>/partition=<p>`). */
  legacy: boolean;
  partition: number;
  /** `<pipeline>/<source folder>/<partition folder>`, for messages. */
  label: string;
  /** In offset order (by first offset, then last). */
  files: RangeFile[];
}

export interface RangeFile {
  path: string;
  name: string;
  first: bigint;
  last: bigint;
}

/** Whether rows or letters of `source` (the name in the files) belong in the partition's folder. */
export function holdsSource(p: PartitionFiles, source: string): boolean {
  return p.legacy ? source === p.source : folderNameOf(source) === p.source;
}

/**
 * A source's folder name, unescaped, as placeFile reads it. Called for every row inspect
 * reads, so each distinct source is escaped once (a file holds one source; the bound only
 * matters for a damaged one with many).
 */
const folderNames = new Map<string, string>();
function folderNameOf(source: string): string {
  let name = folderNames.get(source);
  if (name === undefined) {
    if (folderNames.size >= 1024) folderNames.clear();
    name = unescapePathSegment(sourceDirectoryName(source));
    folderNames.set(source, name);
  }
  return name;
}

/** Same pattern as the sink's final names (sinks/parquet-layout.ts): 20-digit offsets. */
const FINAL_NAME = /^(\d{20})-(\d{20})\.parquet$/u;
const PARTITION_DIR = /^partition-(\d+)$/u;
const SOURCE_DIR = new RegExp(`^${INPUT_KEY}=(.+)$`, 'u');
const LEGACY_PARTITION_DIR = /^partition=(\d+)$/u;
const LEGACY_SOURCE_DIR = /^(topic|file)=(.+)$/u;
/** The sink's temporary names: hidden, `.parquet.inprogress` (see ParquetSink#openFile). */
const TEMP_SUFFIX = '.parquet.inprogress';

/** Lists `dir` recursively; fails with a ConfigError (exit 2) naming the path when it is not a folder. */
export async function scanOutputLayout(dir: string): Promise<OutputLayout> {
  const info = await stat(dir).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError('output dir', code === 'ENOENT' ? `${dir} does not exist` : `cannot read ${dir}: ${String(err)}`, {
      cause: err,
    });
  });
  if (!info.isDirectory()) throw new ConfigError('output dir', `${dir} is not a directory`);

  const layout: OutputLayout = { partitions: [], tempFiles: [], strayFiles: [], deadLetterFiles: [] };
  const byDir = new Map<string, PartitionFiles>();
  const walk = async (at: string): Promise<void> => {
    const entries = (await readdir(at, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) {
        // `_` folders hold state (checkpoints, quarantine), not output; dead letters are listed.
        if (entry.name === DEAD_LETTER_FOLDER) await listDeadLetters(full, layout);
        else if (!entry.name.startsWith('.') && !entry.name.startsWith('_')) await walk(full);
        continue;
      }
      if (!entry.isFile()) continue;
      if (entry.name.startsWith('.') && entry.name.endsWith(TEMP_SUFFIX)) {
        layout.tempFiles.push({ path: full, bytes: (await stat(full)).size });
      } else if (entry.name === LEGACY_DEAD_LETTER_FILE) {
        layout.deadLetterFiles.push(full);
      } else if (entry.name.endsWith('.parquet') && !entry.name.startsWith('.')) {
        placeFile(full, byDir, layout);
      }
    }
  };
  await walk(dir);
  layout.partitions = [...byDir.values()].sort(
    (a, b) => cmp(a.pipeline, b.pipeline) || cmp(a.source, b.source) || Number(a.legacy) - Number(b.legacy) || a.partition - b.partition,
  );
  for (const p of layout.partitions) p.files.sort((a, b) => cmpBig(a.first, b.first) || cmpBig(a.last, b.last));
  return layout;
}

async function listDeadLetters(dir: string, layout: OutputLayout): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    if (name.endsWith('.jsonl') && !name.startsWith('.')) layout.deadLetterFiles.push(path.join(dir, name));
  }
}

function placeFile(file: string, byDir: Map<string, PartitionFiles>, layout: OutputLayout): void {
  const name = path.basename(file);
  const partitionDir = path.dirname(path.resolve(file));
  const sourceDir = path.dirname(partitionDir);
  const currentSource = SOURCE_DIR.exec(path.basename(sourceDir));
  const current = currentSource === null ? null : PARTITION_DIR.exec(path.basename(partitionDir));
  const legacyPartition = LEGACY_PARTITION_DIR.exec(path.basename(partitionDir));
  const legacySource = LEGACY_SOURCE_DIR.exec(path.basename(sourceDir));
  const legacy = current === null;
  if (legacy && (legacyPartition === null || legacySource === null)) {
    layout.strayFiles.push({ path: file, reason: `not in a ${INPUT_KEY}=<source>/partition-<p> folder` });
    return;
  }
  const range = FINAL_NAME.exec(name);
  if (!range) {
    layout.strayFiles.push({ path: file, reason: 'name is not <20-digit first offset>-<20-digit last offset>.parquet' });
    return;
  }
  let partition = byDir.get(partitionDir);
  if (!partition) {
    const pipeline = path.basename(path.dirname(sourceDir));
    partition = {
      pipeline,
      source: unescapePathSegment(legacy ? legacySource![2]! : currentSource![1]!),
      legacy,
      partition: Number((current ?? legacyPartition)![1]),
      label: `${pipeline}/${path.basename(sourceDir)}/${path.basename(partitionDir)}`,
      files: [],
    };
    byDir.set(partitionDir, partition);
  }
  partition.files.push({ path: file, name, first: BigInt(range[1]!), last: BigInt(range[2]!) });
}

/** Reverses escapePathSegment (sinks/parquet-layout.ts): %XX are UTF-8 bytes. */
export function unescapePathSegment(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
