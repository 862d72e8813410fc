import { AUC_BINS, aucFromHistogram, scoreBin } from '../model/auc.js';
import { InputError } from '../errors.js';

/**
 * Rows bucketed by processing time, in bounded memory and one pass over files in any order.
 *
 * Buckets are aligned to the epoch and `width` is BASE_MS·2^k: when the rows seen span more
 * than `maxBuckets` buckets, the width doubles and pairs of neighbours merge exactly (two
 * aligned buckets of width w make one aligned bucket of width 2w). Memory is at most
 * `maxBuckets` buckets, each with two AUC histograms once it holds labelled rows.
 *
 * Cumulative accuracy and AUC at the end of a bucket are exact for the rows processed up
 * to that bucket's end (up to the AUC's stated histogram precision): the order of rows
 * inside a bucket does not change a cumulative figure at its boundary. So the curve is the
 * row-ordered prequential curve (processed_at, then offset) sampled at bucket boundaries.
 */

export const BASE_MS = 10;

interface Bucket {
  rows: number;
  labelled: number;
  correct: number;
  pos: Float64Array | null;
  neg: Float64Array | null;
}

export interface TimelinePoint {
  /** Bucket start, ms since the epoch. */
  startMs: number;
  rows: number;
  rowsPerSecond: number;
  labelled: number;
  /** Accuracy of the labelled rows in this bucket alone (null without any). */
  bucketAccuracy: number | null;
  /** Accuracy and AUC over every labelled row processed up to this bucket's end. */
  cumulativeAccuracy: number | null;
  cumulativeAuc: number | null;
}

export interface TimelineSummary {
  widthMs: number;
  points: TimelinePoint[];
}

export class Timeline {
  readonly maxBuckets: number;
  readonly #bins: number;
  #width = BASE_MS;
  #buckets = new Map<number, Bucket>();
  #min = Infinity;
  #max = -Infinity;

  constructor(options: { maxBuckets?: number; bins?: number } = {}) {
    this.maxBuckets = options.maxBuckets ?? 96;
    this.#bins = options.bins ?? AUC_BINS;
    if (!Number.isInteger(this.maxBuckets) || this.maxBuckets < 2) throw new InputError('maxBuckets must be an integer >= 2');
  }

  get widthMs(): number {
    return this.#width;
  }

  /**
   * One row: processing time, score, and label (0, 1, or null when unlabelled). Rows with
   * a non-finite score count for throughput but not for accuracy or AUC.
   */
  add(processedAtMs: number, score: number, predicted: number, label: number | null): void {
    let key = Math.floor(processedAtMs / this.#width);
    if (key < this.#min || key > this.#max) {
      this.#min = Math.min(this.#min, key);
      this.#max = Math.max(this.#max, key);
      while (this.#max - this.#min + 1 > this.maxBuckets) this.#coarsen();
      key = Math.floor(processedAtMs / this.#width);
    }
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = { rows: 0, labelled: 0, correct: 0, pos: null, neg: null };
      this.#buckets.set(key, bucket);
    }
    bucket.rows++;
    if ((label !== 0 && label !== 1) || !Number.isFinite(score)) return;
    bucket.labelled++;
    if (predicted === label) bucket.correct++;
    bucket.pos ??= new Float64Array(this.#bins);
    bucket.neg ??= new Float64Array(this.#bins);
    (label === 1 ? bucket.pos : bucket.neg)[scoreBin(score, this.#bins)]! += 1;
  }

  /** Doubles the width, merging aligned pairs of buckets. */
  #coarsen(): void {
    this.#width *= 2;
    this.#min = Math.floor(this.#min / 2);
    this.#max = Math.floor(this.#max / 2);
    const merged = new Map<number, Bucket>();
    for (const [key, bucket] of this.#buckets) {
      const to = Math.floor(key / 2);
      const into = merged.get(to);
      if (!into) {
        merged.set(to, bucket);
        continue;
      }
      into.rows += bucket.rows;
      into.labelled += bucket.labelled;
      into.correct += bucket.correct;
      into.pos = addInto(into.pos, bucket.pos);
      into.neg = addInto(into.neg, bucket.neg);
    }
    this.#buckets = merged;
  }

  /**
   * Every bucket from the first to the last (empty ones included, as zero throughput).
   *
   * Rows of one sink write share a processed_at, so narrow buckets show a comb of spikes
   * with gaps between writes rather than a rate. Unless there would be fewer than
   * `minBuckets`, buckets are first widened (exactly, as above) until at least `minFill`
   * of those in the span hold rows. 0.9, not a half: writes a bucket width apart fill
   * every other bucket, which a half accepts and draws as a rate flipping to 0 and back.
   */
  summary(options: { minFill?: number; minBuckets?: number } = {}): TimelineSummary {
    const minFill = options.minFill ?? 0.9;
    const minBuckets = options.minBuckets ?? 8;
    const points: TimelinePoint[] = [];
    if (this.#buckets.size === 0) return { widthMs: this.#width, points };
    while (this.#max - this.#min + 1 >= 2 * minBuckets && this.#buckets.size < minFill * (this.#max - this.#min + 1)) this.#coarsen();
    const pos = new Float64Array(this.#bins);
    const neg = new Float64Array(this.#bins);
    let labelled = 0;
    let correct = 0;
    let auc: number | null = null;
    for (let key = this.#min; key <= this.#max; key++) {
      const b = this.#buckets.get(key);
      if (b) {
        labelled += b.labelled;
        correct += b.correct;
        if (b.pos) addInto(pos, b.pos);
        if (b.neg) addInto(neg, b.neg);
        // O(bins), only where the histograms changed.
        if (b.labelled > 0) auc = aucFromHistogram(pos, neg)?.auc ?? null;
      }
      const rows = b?.rows ?? 0;
      const bucketLabelled = b?.labelled ?? 0;
      points.push({
        startMs: key * this.#width,
        rows,
        rowsPerSecond: rows / (this.#width / 1000),
        labelled: bucketLabelled,
        bucketAccuracy: bucketLabelled > 0 ? b!.correct / bucketLabelled : null,
        cumulativeAccuracy: labelled > 0 ? correct / labelled : null,
        cumulativeAuc: auc,
      });
    }
    return { widthMs: this.#width, points };
  }
}

function addInto(into: Float64Array | null, from: Float64Array | null): Float64Array | null {
  if (!from) return into;
  if (!into) return from;
  for (let i = 0; i < into.length; i++) into[i]! += from[i]!;
  return into;
}
