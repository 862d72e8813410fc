import { SourceError } from '../errors.js';
import { ReportAggregator, type ReportData } from './aggregate.js';
import { countDeadLetters, findOutputFiles, readOutputFile } from './read.js';

export interface BuildReportOptions {
  /** The run's output folder (a sink.dir, or one pipeline's folder inside it). */
  dir: string;
  /** Dead-letter files to read instead of the `dead-letters.jsonl` files found under `dir`. */
  deadLetters?: string[] | null;
  /** Called before reading each Parquet file (for a progress bar). */
  onFile?: (done: number, total: number) => void;
  maxBuckets?: number;
}

/**
 * Reads a run's output files one at a time and aggregates them (bounded memory). A file
 * that fails before any of its rows was counted (a damaged footer, not an output file) is
 * left out and listed in `unreadableFiles`; one that fails half-way through still fails
 * the report, whose figures would otherwise hold part of it.
 */
export async function buildReportData(options: BuildReportOptions): Promise<ReportData> {
  const found = await findOutputFiles(options.dir);
  const aggregator = new ReportAggregator({ maxBuckets: options.maxBuckets });
  const unreadableFiles: ReportData['unreadableFiles'] = [];
  let done = 0;
  for (const { file, pipeline } of found.parquet) {
    options.onFile?.(done, found.parquet.length);
    let counted = false;
    try {
      await readOutputFile(file, (rows) => {
        counted = true;
        aggregator.addRows(file, pipeline, rows);
      });
    } catch (err) {
      if (counted || !(err instanceof SourceError)) throw err;
      unreadableFiles.push({ file, reason: err.message });
    }
    done++;
  }
  options.onFile?.(done, found.parquet.length);
  const letters = options.deadLetters && options.deadLetters.length > 0 ? options.deadLetters : found.deadLetters;
  for (const file of letters) {
    const { byReason, unreadable } = await countDeadLetters(file);
    aggregator.addDeadLetters(file, byReason, unreadable);
  }
  return { ...aggregator.summary(options.dir), unreadableFiles };
}
