import { AUC_BINS, aucFromHistogram, scoreBin } from '../model/auc.js';
import { Timeline, type TimelineSummary } from './timeline.js';

/** The columns of one output row that the report reads (see OutputColumns in sinks/parquet-rows.ts). */
export interface ReportRow {
  score: number;
  predicted: number;
  /** 0, 1 or null (unlabelled); anything else counts as unlabelled. */
  label: number | null;
  processedAtMs: number;
  source: string;
  partition: number;
  offset: bigint;
}

/** Bins of the score histogram chart: equal width over [0, 1]. */
export const SCORE_HISTOGRAM_BINS = 20;

export interface PartitionSummary {
  pipeline: string;
  source: string;
  partition: number;
  files: number;
  rows: number;
  /** Offsets as decimal strings: they are int64. */
  firstOffset: string | null;
  lastOffset: string | null;
}

export interface DeadLetterSummary {
  total: number;
  /** Reason → count, most frequent first. */
  byReason: Array<[reason: string, count: number]>;
  files: string[];
  /** Lines that were not a JSON object with a string `reason`. */
  unreadable: number;
}

export interface ReportData {
  dir: string;
  files: number;
  /** Output files that could not be read (damaged, not ours): left out of every figure. */
  unreadableFiles: Array<{ file: string; reason: string }>;
  rows: number;
  labelled: number;
  positives: number;
  negatives: number;
  unlabelled: number;
  nonFiniteScores: number;
  accuracy: number | null;
  auc: number | null;
  aucMaxError: number | null;
  firstProcessedMs: number | null;
  lastProcessedMs: number | null;
  firstOffset: string | null;
  lastOffset: string | null;
  partitions: PartitionSummary[];
  timeline: TimelineSummary;
  scoreHistogram: { binWidth: number; negative: number[]; positive: number[]; unlabelled: number[] };
  deadLetters: DeadLetterSummary;
}

interface PartitionState {
  pipeline: string;
  source: string;
  partition: number;
  files: Set<string>;
  rows: number;
  first: bigint | null;
  last: bigint | null;
}

/**
 * Folds output rows into everything the report shows. Memory does not depend on the
 * number of rows: counters, fixed histograms, a bounded Timeline, one entry per
 * (pipeline, source, partition) and per dead-letter reason.
 */
export class ReportAggregator {
  readonly #timeline: Timeline;
  readonly #pos = new Float64Array(AUC_BINS);
  readonly #neg = new Float64Array(AUC_BINS);
  readonly #hist = {
    negative: new Array<number>(SCORE_HISTOGRAM_BINS).fill(0),
    positive: new Array<number>(SCORE_HISTOGRAM_BINS).fill(0),
    unlabelled: new Array<number>(SCORE_HISTOGRAM_BINS).fill(0),
  };
  readonly #partitions = new Map<string, PartitionState>();
  readonly #files = new Set<string>();
  readonly #reasons = new Map<string, number>();
  readonly #letterFiles: string[] = [];
  #unreadableLetters = 0;
  #rows = 0;
  #labelled = 0;
  #positives = 0;
  #correct = 0;
  #unlabelled = 0;
  #nonFinite = 0;
  #firstMs = Infinity;
  #lastMs = -Infinity;

  constructor(options: { maxBuckets?: number } = {}) {
    this.#timeline = new Timeline(options);
  }

  /** Rows of one output file; `pipeline` comes from the file's path. */
  addRows(file: string, pipeline: string, rows: readonly ReportRow[]): void {
    this.#files.add(file);
    for (const row of rows) {
      this.#rows++;
      const key = `${pipeline}\u0000${row.source}\u0000${row.partition}`;
      let part = this.#partitions.get(key);
      if (!part) {
        part = { pipeline, source: row.source, partition: row.partition, files: new Set(), rows: 0, first: null, last: null };
        this.#partitions.set(key, part);
      }
      part.files.add(file);
      part.rows++;
      if (part.first === null || row.offset < part.first) part.first = row.offset;
      if (part.last === null || row.offset > part.last) part.last = row.offset;

      const t = row.processedAtMs;
      if (Number.isFinite(t)) {
        if (t < this.#firstMs) this.#firstMs = t;
        if (t > this.#lastMs) this.#lastMs = t;
        this.#timeline.add(t, row.score, row.predicted, row.label);
      }

      const label = row.label === 0 || row.label === 1 ? row.label : null;
      if (!Number.isFinite(row.score)) {
        this.#nonFinite++;
        if (label === null) this.#unlabelled++;
        continue;
      }
      const bin = Math.min(SCORE_HISTOGRAM_BINS - 1, Math.max(0, Math.floor(row.score * SCORE_HISTOGRAM_BINS)));
      if (label === null) {
        this.#unlabelled++;
        this.#hist.unlabelled[bin]!++;
        continue;
      }
      this.#labelled++;
      if (row.predicted === label) this.#correct++;
      if (label === 1) {
        this.#positives++;
        this.#pos[scoreBin(row.score)]! += 1;
        this.#hist.positive[bin]!++;
      } else {
        this.#neg[scoreBin(row.score)]! += 1;
        this.#hist.negative[bin]!++;
      }
    }
  }

  /** One dead-letter file's line counts by reason. */
  addDeadLetters(file: string, byReason: ReadonlyMap<string, number>, unreadable: number): void {
    this.#letterFiles.push(file);
    for (const [reason, count] of byReason) this.#reasons.set(reason, (this.#reasons.get(reason) ?? 0) + count);
    this.#unreadableLetters += unreadable;
  }

  summary(dir: string): ReportData {
    const partitions = [...this.#partitions.values()]
      .sort((a, b) => a.pipeline.localeCompare(b.pipeline) || a.source.localeCompare(b.source) || a.partition - b.partition)
      .map((p) => ({
        pipeline: p.pipeline,
        source: p.source,
        partition: p.partition,
        files: p.files.size,
        rows: p.rows,
        firstOffset: p.first?.toString() ?? null,
        lastOffset: p.last?.toString() ?? null,
      }));
    let first: bigint | null = null;
    let last: bigint | null = null;
    for (const p of this.#partitions.values()) {
      if (p.first !== null && (first === null || p.first < first)) first = p.first;
      if (p.last !== null && (last === null || p.last > last)) last = p.last;
    }
    const auc = aucFromHistogram(this.#pos, this.#neg);
    const byReason = [...this.#reasons].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return {
      dir,
      files: this.#files.size,
      unreadableFiles: [],
      rows: this.#rows,
      labelled: this.#labelled,
      positives: this.#positives,
      negatives: this.#labelled - this.#positives,
      unlabelled: this.#unlabelled,
      nonFiniteScores: this.#nonFinite,
      accuracy: this.#labelled > 0 ? this.#correct / this.#labelled : null,
      auc: auc?.auc ?? null,
      aucMaxError: auc?.maxError ?? null,
      firstProcessedMs: Number.isFinite(this.#firstMs) ? this.#firstMs : null,
      lastProcessedMs: Number.isFinite(this.#lastMs) ? this.#lastMs : null,
      firstOffset: first?.toString() ?? null,
      lastOffset: last?.toString() ?? null,
      partitions,
      timeline: this.#timeline.summary(),
      scoreHistogram: { binWidth: 1 / SCORE_HISTOGRAM_BINS, ...structuredClone(this.#hist) },
      deadLetters: {
        total: byReason.reduce((s, [, n]) => s + n, 0) + this.#unreadableLetters,
        byReason: this.#unreadableLetters > 0 ? [...byReason, ['(unreadable line)', this.#unreadableLetters]] : byReason,
        files: [...this.#letterFiles],
        unreadable: this.#unreadableLetters,
      },
    };
  }
}
