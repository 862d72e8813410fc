/**
 * Online ("prequential") evaluation: every labelled score is judged before the model
 * trains on that row, so these numbers are honest out-of-sample estimates on the stream.
 *
 * Memory is bounded: running sums, plus one fixed histogram of scores per class for AUC.
 *
 * AUC: scores are binned by their logit, clamped to ±LOGIT_RANGE, into `bins` equal-width
 * bins. Logit bins, not [0, 1] bins, because a trained sigmoid squeezes most scores into
 * the last percent at either end, where equal-width probability bins would lump them
 * together. A float32 sigmoid output saturates at logit ≈ ±16.6, so the range loses only
 * the resolution among scores within 1e-7 of 0 or 1. The histogram AUC equals the exact
 * (Mann–Whitney, ties counted ½) AUC except for pairs of a positive and a negative that
 * fall in the same bin, which it counts as ½; the snapshot reports that worst case as
 * `aucMaxError` (exactly Σ_b pos_b·neg_b / (2·P·N)), so the figure states its own precision.
 */

import { InputError } from '../errors.js';
import { AUC_BINS, aucFromHistogram, scoreBin } from './auc.js';

/** Keras' binary_accuracy threshold: a row is predicted positive when score > 0.5. */
export const DECISION_THRESHOLD = 0.5;

/** Keras' epsilon: probabilities are clipped to [EPSILON, 1 − EPSILON] for log loss. */
export const EPSILON = 1e-7;


export function predictedLabel(score: number): 0 | 1 {
  return score > DECISION_THRESHOLD ? 1 : 0;
}

export interface EvaluatorOptions {
  /** Histogram bins per class for AUC (default 4096: ≈ 0.008 logit units per bin). */
  bins?: number;
  /**
   * Fading factor per labelled row for the `recent*` figures (default 0.999, i.e. an
   * effective window of ≈ 1 000 rows), so drift shows up without waiting for the
   * cumulative averages to move.
   */
  fading?: number;
}

export interface EvaluationSnapshot {
  /** Labelled rows evaluated (rows with a non-finite score are counted separately). */
  count: number;
  positives: number;
  negatives: number;
  /** Fraction of labelled rows with predictedLabel(score) === label. Null before any. */
  accuracy: number | null;
  /** Mean binary cross-entropy of the pre-training scores. */
  logLoss: number | null;
  /** ROC AUC over all labelled scores so far; null until both classes have been seen. */
  auc: number | null;
  /** Worst-case absolute difference between `auc` and the exact AUC. */
  aucMaxError: number | null;
  recentAccuracy: number | null;
  recentLogLoss: number | null;
  /**
   * Calibration over the recent window (same fading factor): the mean pre-training score
   * and the fraction of label 1. A calibrated model keeps them close.
   */
  recentMeanScore: number | null;
  recentPositiveRate: number | null;
  /** Labelled rows whose score was NaN or infinite (a diverged model), left out above. */
  nonFiniteScores: number;
  /** Training: optimiser steps and rows trained on, and the loss they reported. */
  trainSteps: number;
  trainedRows: number;
  /** Mean training loss over every trained row so far. */
  trainLoss: number | null;
  /** Training loss with the same fading factor as the recent figures. */
  recentTrainLoss: number | null;
  lastTrainLoss: number | null;
}

/** The evaluator's state as plain JSON, for checkpoints. */
export interface EvaluatorState {
  bins: number;
  fading: number;
  count: number;
  correct: number;
  logLossSum: number;
  recent: [weight: number, correct: number, logLoss: number];
  /**
   * Faded calibration sums. Optional: checkpoints written before it existed lack it, and
   * their calibration starts empty (its own weight, so the other figures are unaffected).
   */
  calibration?: [weight: number, scoreSum: number, positives: number];
  nonFiniteScores: number;
  /** Non-empty histogram bins as [bin, positives, negatives]. */
  histogram: [number, number, number][];
  train: { steps: number; rows: number; lossSum: number; recentWeight: number; recentLoss: number; last: number | null };
}

export class OnlineEvaluator {
  readonly #bins: number;
  readonly #fading: number;
  // Float64 counts: exact integers far beyond any stream's length.
  readonly #pos: Float64Array;
  readonly #neg: Float64Array;
  #count = 0;
  #correct = 0;
  #logLossSum = 0;
  #recentWeight = 0;
  #recentCorrect = 0;
  #recentLogLoss = 0;
  #calibrationWeight = 0;
  #calibrationScore = 0;
  #calibrationPositives = 0;
  #nonFinite = 0;
  #trainSteps = 0;
  #trainedRows = 0;
  #trainLossSum = 0;
  #trainRecentWeight = 0;
  #trainRecentLoss = 0;
  #lastTrainLoss: number | null = null;

  constructor(options: EvaluatorOptions = {}) {
    this.#bins = options.bins ?? AUC_BINS;
    this.#fading = options.fading ?? 0.999;
    if (!Number.isInteger(this.#bins) || this.#bins < 2) throw new InputError('bins must be an integer >= 2');
    if (!(this.#fading > 0 && this.#fading <= 1)) throw new InputError('fading must be in (0, 1]');
    this.#pos = new Float64Array(this.#bins);
    this.#neg = new Float64Array(this.#bins);
  }

  /**
   * Records pre-training scores: `labels[k]` is the label of row `rows[k]` of `scores`.
   */
  observe(scores: Float32Array, rows: ArrayLike<number>, labels: ArrayLike<number>): void {
    const a = this.#fading;
    for (let k = 0; k < rows.length; k++) {
      const score = scores[rows[k]!]!;
      const label = labels[k]!;
      if (!Number.isFinite(score)) {
        this.#nonFinite++;
        continue;
      }
      const correct = predictedLabel(score) === label ? 1 : 0;
      const p = Math.min(Math.max(score, EPSILON), 1 - EPSILON);
      const loss = label === 1 ? -Math.log(p) : -Math.log(1 - p);
      this.#count++;
      this.#correct += correct;
      this.#logLossSum += loss;
      this.#recentWeight = a * this.#recentWeight + 1;
      this.#recentCorrect = a * this.#recentCorrect + correct;
      this.#recentLogLoss = a * this.#recentLogLoss + loss;
      this.#calibrationWeight = a * this.#calibrationWeight + 1;
      this.#calibrationScore = a * this.#calibrationScore + score;
      this.#calibrationPositives = a * this.#calibrationPositives + label;
      (label === 1 ? this.#pos : this.#neg)[scoreBin(score, this.#bins)]! += 1;
    }
  }

  /** Records one optimiser step: its mean loss over `rows` rows. */
  observeTraining(loss: number, rows: number): void {
    const decay = this.#fading ** rows;
    this.#trainSteps++;
    this.#trainedRows += rows;
    this.#trainLossSum += loss * rows;
    this.#trainRecentWeight = decay * this.#trainRecentWeight + rows;
    this.#trainRecentLoss = decay * this.#trainRecentLoss + loss * rows;
    this.#lastTrainLoss = loss;
  }

  snapshot(): EvaluationSnapshot {
    const estimate = aucFromHistogram(this.#pos, this.#neg);
    let positives = 0;
    for (const c of this.#pos) positives += c;
    const div = (x: number, n: number): number | null => (n > 0 ? x / n : null);
    return {
      count: this.#count,
      positives,
      negatives: this.#count - positives,
      accuracy: div(this.#correct, this.#count),
      logLoss: div(this.#logLossSum, this.#count),
      auc: estimate?.auc ?? null,
      aucMaxError: estimate?.maxError ?? null,
      recentAccuracy: div(this.#recentCorrect, this.#recentWeight),
      recentLogLoss: div(this.#recentLogLoss, this.#recentWeight),
      recentMeanScore: div(this.#calibrationScore, this.#calibrationWeight),
      recentPositiveRate: div(this.#calibrationPositives, this.#calibrationWeight),
      nonFiniteScores: this.#nonFinite,
      trainSteps: this.#trainSteps,
      trainedRows: this.#trainedRows,
      trainLoss: div(this.#trainLossSum, this.#trainedRows),
      recentTrainLoss: div(this.#trainRecentLoss, this.#trainRecentWeight),
      lastTrainLoss: this.#lastTrainLoss,
    };
  }

  toJSON(): EvaluatorState {
    const histogram: [number, number, number][] = [];
    for (let b = 0; b < this.#bins; b++) {
      if (this.#pos[b] !== 0 || this.#neg[b] !== 0) histogram.push([b, this.#pos[b]!, this.#neg[b]!]);
    }
    return {
      bins: this.#bins,
      fading: this.#fading,
      count: this.#count,
      correct: this.#correct,
      logLossSum: this.#logLossSum,
      recent: [this.#recentWeight, this.#recentCorrect, this.#recentLogLoss],
      calibration: [this.#calibrationWeight, this.#calibrationScore, this.#calibrationPositives],
      nonFiniteScores: this.#nonFinite,
      histogram,
      train: {
        steps: this.#trainSteps,
        rows: this.#trainedRows,
        lossSum: this.#trainLossSum,
        recentWeight: this.#trainRecentWeight,
        recentLoss: this.#trainRecentLoss,
        last: this.#lastTrainLoss,
      },
    };
  }

  static fromJSON(state: EvaluatorState): OnlineEvaluator {
    const e = new OnlineEvaluator({ bins: state.bins, fading: state.fading });
    e.#count = state.count;
    e.#correct = state.correct;
    e.#logLossSum = state.logLossSum;
    [e.#recentWeight, e.#recentCorrect, e.#recentLogLoss] = state.recent;
    if (state.calibration !== undefined) [e.#calibrationWeight, e.#calibrationScore, e.#calibrationPositives] = state.calibration;
    e.#nonFinite = state.nonFiniteScores;
    for (const [b, pos, neg] of state.histogram) {
      if (!Number.isInteger(b) || b < 0 || b >= state.bins) throw new InputError(`histogram bin ${b} out of range`);
      e.#pos[b] = pos;
      e.#neg[b] = neg;
    }
    e.#trainSteps = state.train.steps;
    e.#trainedRows = state.train.rows;
    e.#trainLossSum = state.train.lossSum;
    e.#trainRecentWeight = state.train.recentWeight;
    e.#trainRecentLoss = state.train.recentLoss;
    e.#lastTrainLoss = state.train.last;
    return e;
  }
}
