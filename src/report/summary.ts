import type { ReportData } from './aggregate.js';

/**
 * The figures of the report's header (see headerRows in html.ts) as plain values, plus
 * where the report was written: what `report --json` prints. Counts are numbers, offsets
 * decimal strings (they are int64), times ISO 8601; null where the header shows "–" or
 * "no labelled rows".
 */
export interface ReportSummary {
  dir: string;
  /** The HTML report written (absolute). */
  report: string;
  rows: number;
  files: number;
  partitions: number;
  firstOffset: string | null;
  lastOffset: string | null;
  labelled: number;
  positives: number;
  negatives: number;
  unlabelled: number;
  /** Prequential accuracy over the labelled rows. */
  accuracy: number | null;
  /** Prequential AUC from the binned score logits, and its worst-case error from binning. */
  auc: number | null;
  aucMaxError: number | null;
  deadLetters: number;
  /** Dead-letter files read; 0 with deadLetters 0 is the header's "no dead-letter file". */
  deadLetterFiles: number;
  firstProcessedAt: string | null;
  lastProcessedAt: string | null;
  /** Rows whose score is not a finite number (the header shows them only when > 0). */
  nonFiniteScores: number;
}

export function makeReportSummary(data: ReportData, report: string): ReportSummary {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    dir: data.dir,
    report,
    rows: data.rows,
    files: data.files,
    partitions: data.partitions.length,
    firstOffset: data.firstOffset,
    lastOffset: data.lastOffset,
    labelled: data.labelled,
    positives: data.positives,
    negatives: data.negatives,
    unlabelled: data.unlabelled,
    accuracy: data.accuracy,
    auc: data.auc,
    aucMaxError: data.aucMaxError,
    deadLetters: data.deadLetters.total,
    deadLetterFiles: data.deadLetters.files.length,
    firstProcessedAt: iso(data.firstProcessedMs),
    lastProcessedAt: iso(data.lastProcessedMs),
    nonFiniteScores: data.nonFiniteScores,
  };
}
