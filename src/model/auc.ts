/**
 * ROC AUC from a fixed histogram of scores per class, so that memory does not grow with
 * the number of rows.
 *
 * Scores are binned by their logit, clamped to ±LOGIT_RANGE, into `bins` equal-width bins.
 * The pipeline's prequential evaluator and the report both use this module, so the
 * report's final AUC equals the one the run printed. Logit bins, because a trained
 * sigmoid squeezes most scores into the last percent at either end.
 *
 * Precision: the histogram AUC equals the exact Mann–Whitney AUC (ties counted ½) except
 * for pairs of a positive and a negative in the same bin, which it also counts as ½. The
 * worst-case error is therefore Σ_b pos_b·neg_b / (2·P·N), returned as `maxError`. Exact
 * ties always share a bin, so they are counted correctly.
 */

export const LOGIT_RANGE = 17;
/** 4096 bins: ≈ 0.008 logit units per bin. */
export const AUC_BINS = 4096;

export function scoreBin(score: number, bins: number = AUC_BINS): number {
  const logit = Math.log(score) - Math.log1p(-score);
  const x = Math.min(Math.max(logit, -LOGIT_RANGE), LOGIT_RANGE);
  return Math.min(bins - 1, Math.floor(((x + LOGIT_RANGE) / (2 * LOGIT_RANGE)) * bins));
}

export interface AucEstimate {
  auc: number;
  /** Worst-case absolute difference from the exact AUC. */
  maxError: number;
}

/** AUC from per-bin counts of positives and negatives; null unless both classes occur. */
export function aucFromHistogram(pos: ArrayLike<number>, neg: ArrayLike<number>): AucEstimate | null {
  let p = 0;
  let n = 0;
  let wins = 0; // (positive, negative) pairs with the positive ranked higher; same-bin pairs count ½
  let sameBin = 0;
  for (let b = 0; b < pos.length; b++) {
    const pb = pos[b]!;
    const nb = neg[b]!;
    wins += pb * (n + 0.5 * nb);
    sameBin += pb * nb;
    p += pb;
    n += nb;
  }
  if (p === 0 || n === 0) return null;
  return { auc: wins / (p * n), maxError: (0.5 * sameBin) / (p * n) };
}
