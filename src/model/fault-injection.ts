/**
 * The learner's fault-injection seam (`textstream run --inject-fault nan-loss:N`,
 * npm run chaos): one chosen training step computes a NaN loss, so a live worker goes
 * through the NaN guard's real path. Off (null) everywhere else.
 */
import * as tf from '@tensorflow/tfjs';

/** Counts a learner's training steps and picks the one whose loss is poisoned. */
export class NanLossInjection {
  readonly #atStep: number | null;
  #stepsAttempted = 0;

  /** `atStep`: the 1-based training step to poison; null: none. */
  constructor(atStep: number | null) {
    this.#atStep = atStep;
  }

  /** Counts one attempted training step; true when its loss is to be poisoned. */
  nextStepPoisoned(): boolean {
    return ++this.#stepsAttempted === this.#atStep;
  }
}

/** The loss times NaN, inside the gradient tape: the loss and every gradient turn NaN. */
export function poisonLoss(loss: tf.Scalar): tf.Scalar {
  return tf.mul<tf.Scalar>(loss, Number.NaN);
}
