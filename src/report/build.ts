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

/** Reads a run's output files one at a time and aggregates them (bounded memory). */
export async function buildReportData(options: BuildReportOptions): Promise<ReportData> {
  const found = await findOutputFiles(options.dir);
  const aggregator = new ReportAggregator({ maxBuckets: options.maxBuckets });
  let done = 0;
  for (const { file, pipeline } of found.parquet) {
    options.onFile?.(done, found.parquet.length);
    await readOutputFile(file, (rows) => aggregator.addRows(file, pipeline, rows));
    done++;
  }
  options.onFile?.(done, found.parquet.length);
  const letters = options.deadLetters && options.deadLetters.length > 0 ? options.deadLetters : found.deadLetters;
  for (const file of letters) {
    const { byReason, unreadable } = await countDeadLetters(file);
    aggregator.addDeadLetters(file, byReason, unreadable);
  }
  return aggregator.summary(options.dir);
}
