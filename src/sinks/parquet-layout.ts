/**
 * Where the Parquet sink's files live and what they are called: a pipeline's output
 * folder as one dataset, source names escaped into folder names, offsets into file names,
 * and the legacy layout that recovery migrates from.
 */
import path from 'node:path';
import { SinkError } from '../errors.js';

// Layout of a pipeline's output folder `<dir>/<pipeline>/`, which pandas, pyarrow, DuckDB
// and Spark read as one dataset:
//
//   input=<source>/partition-<p>/<firstOffset>-<lastOffset>.parquet   published files
//   input=<source>/partition-<p>/.<…>.parquet.inprogress               a file being written
//   _quarantine/input=<source>/partition-<p>/<name>.<ms>.quarantined   invalid files moved aside
//
// `input=` is a Hive partition: Spark reads nested folders only below one, and readers add
// an `input` column from it. The partition folder is not one: `partition=<p>` would add a
// column that clashes with the files' own `partition` (pandas refuses int32 against
// dictionary<int32>, DuckDB makes it BIGINT). All four readers skip names that start with
// `_` or `.`, which is where state lives (checkpoints and dead letters too, see
// runtime/run-state.ts).

/** Where a pipeline's files live: `<dir>/<pipeline>/`. */
export interface ParquetLayout {
  dir: string;
  pipeline: string;
}

/**
 * Offsets are zero-padded to 20 digits (as Kafka names its log segments) so that file
 * names sort in offset order; 20 digits hold any non-negative int64.
 */
const OFFSET_DIGITS = 20;
export const FINAL_NAME = /^(\d{20})-(\d{20})\.parquet$/;
export const TEMP_SUFFIX = '.parquet.inprogress';
const PARQUET_EXTENSION = '.parquet';
/** The Hive partition key of a source's folder (a replayed file or a Kafka topic). */
export const INPUT_KEY = 'input';

export function padOffset(offset: bigint): string {
  return offset.toString().padStart(OFFSET_DIGITS, '0');
}

export function parquetFileName(firstOffset: bigint, lastOffset: bigint): string {
  return `${padOffset(firstOffset)}-${padOffset(lastOffset)}.parquet`;
}

/**
 * Escapes a source name for use in a path: anything outside [A-Za-z0-9._-] becomes %XX
 * (UTF-8), so a file name like `a b/c` cannot add a path level, and a leading `_` or `.`
 * too, which readers would skip as hidden. Kafka topic names are almost always unchanged.
 */
export function escapePathSegment(value: string): string {
  if (value === '') throw new SinkError('a source name must not be empty', { canRetry: false });
  // Escaping a leading `.` also keeps `.` and `..` from walking the directory tree.
  return value.replace(/[^A-Za-z0-9._-]|^[._]/gu, percentEncode);
}

/** The escaping of the legacy layout: a leading `_` or `.` was kept, `.` and `..` were not. */
function escapeLegacyPathSegment(value: string): string {
  const escaped = value.replace(/[^A-Za-z0-9._-]/gu, percentEncode);
  return escaped === '.' || escaped === '..' ? escaped.replaceAll('.', '%2E') : escaped;
}

function percentEncode(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/**
 * A source's name in paths: escaped, without a `.parquet` extension, so that globbing for
 * Parquet files never returns a folder (`spamassassin.parquet` → `spamassassin`).
 */
export function sourceDirectoryName(source: string): string {
  const escaped = escapePathSegment(source);
  const bare = escaped.endsWith(PARQUET_EXTENSION) ? escaped.slice(0, -PARQUET_EXTENSION.length) : escaped;
  return bare === '' ? escaped : bare;
}

export function partitionDirectory(layout: ParquetLayout, source: string, partition: number): string {
  return path.join(layout.dir, layout.pipeline, `${INPUT_KEY}=${sourceDirectoryName(source)}`, `partition-${partition}`);
}

/**
 * The layout before output folders became datasets: `<key>=<source>/partition=<p>/`, with
 * key `topic` (Kafka) or `file` (replay) and the source's full name. Recovery moves what
 * it finds there into partitionDirectory (see recoverPartitionOutput).
 */
export function legacyPartitionDirectory(layout: ParquetLayout, key: LegacyKey, source: string, partition: number): string {
  return path.join(layout.dir, layout.pipeline, `${key}=${escapeLegacyPathSegment(source)}`, `partition=${partition}`);
}

export type LegacyKey = 'topic' | 'file';
