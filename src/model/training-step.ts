/**
 * One training step that is applied only when it is sound: its loss and every gradient
 * finite. A step that is not changes nothing (weights, Adam's moments, step count and
 * powers), so one numerical blow-up cannot turn every weight into NaN for good. Optional
 * global gradient-norm clipping (Keras' `global_clipnorm`) rides on the same check.
 */
import * as tf from '@tensorflow/tfjs';
import { poisonLoss } from './fault-injection.js';
import { nativeGradientHelpers, tensorValues } from './fused-lstm.js';
import { networkLoss } from './network.js';

export interface StepSettings {
  maxLen: number;
  /** Scale gradients whose joint L2 norm exceeds this down to it; null: no clipping. */
  clipNorm: number | null;
  /** Fault injection only (see fault-injection.ts): this step's loss is made NaN. */
  poisoned: boolean;
}

/** `scores`: the step's rows scored by its forward pass, before the update. */
export type StepOutcome =
  | { applied: true; loss: number; scores: Float32Array }
  | { applied: false; loss: number; reason: 'loss' | 'gradient'; scores: Float32Array };

/**
 * One optimiser step on `n` rows, unless its loss or a gradient is not finite: then
 * nothing changes (weights, Adam's moments, step count and powers) and `applied` is false.
 *
 * It computes what tfjs' trainOnBatch computes (the forward pass in training mode, the
 * mean of the compiled loss, then optimizer.minimize's gradients and update with the
 * variables in the same order), split so the update can be skipped: without clipping
 * (clipNorm) the results are bit-identical to trainOnBatch's. Checking costs one read of
 * the loss (trainOnBatch made it too) and one pass over the gradients' memory (see
 * sumOfSquares); no snapshot.
 * The forward pass's outputs are the rows' scores before the step (the network has no
 * dropout, so training mode computes what predict does).
 */
export function guardedTrainStep(
  model: tf.LayersModel,
  tokens: Int32Array,
  labels: Float32Array,
  n: number,
  { maxLen, clipNorm, poisoned }: StepSettings,
): StepOutcome {
  const optimizer = model.optimizer;
  // Read each step: the variables behind the layers are what the optimiser updates.
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.tensor2d(tokens, [n, maxLen], 'int32');
  const y = tf.tensor2d(labels, [n, 1], 'float32');
  let computed: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
  let predictions: tf.Tensor | undefined;
  try {
    computed = optimizer.computeGradients(() => {
      const output = model.call(x, { training: true });
      predictions = tf.keep(Array.isArray(output) ? output[0]! : output);
      const loss = tf.mean<tf.Scalar>(networkLoss(y, predictions));
      return poisoned ? poisonLoss(loss) : loss;
    }, variables);
    const { value, grads } = computed;
    const scores = predictions!.dataSync() as Float32Array;
    const ordered = variables.map((v) => ({ name: v.name, tensor: grads[v.name]! }));
    const loss = value.dataSync()[0]!;
    if (!Number.isFinite(loss)) return { applied: false, loss, reason: 'loss', scores };
    // One pass over the gradients' memory gives both the finiteness check and the norm.
    const norm = Math.sqrt(ordered.reduce((sum, g) => sum + sumOfSquares(g.tensor), 0));
    if (!Number.isFinite(norm)) return { applied: false, loss, reason: 'gradient', scores };
    if (clipNorm !== null && norm > clipNorm) {
      const scaled = tf.tidy(() => ordered.map((g) => ({ name: g.name, tensor: tf.mul(g.tensor, clipNorm / norm) })));
      try {
        optimizer.applyGradients(scaled);
      } finally {
        tf.dispose(scaled.map((g) => g.tensor));
      }
    } else {
      optimizer.applyGradients(ordered);
    }
    return { applied: true, loss, scores };
  } finally {
    tf.dispose([x, y]);
    if (predictions !== undefined) predictions.dispose();
    if (computed !== undefined) tf.dispose([computed.value, ...Object.values(computed.grads)]);
  }
}

/**
 * The sum of squares of a float32 tensor's elements, in one pass over its memory (a view
 * of the wasm heap, no copy; dataSync elsewhere), in float64: NaN and ±Infinity survive
 * it, so a non-finite result means a non-finite element, and float32 squares cannot
 * overflow it. Eight independent sums let the CPU overlap the additions (≈ 0.3 ms for the
 * seed's 640 000-element embedding gradient; a whole training step is ≈ 15 ms).
 */
function sumOfSquares(t: tf.Tensor): number {
  // Nothing may allocate on the wasm heap while `a` is read (see tensorValues).
  const a = tensorValues(t);
  // The addon runs this same loop (same partial sums, same order) natively.
  const native = nativeGradientHelpers();
  if (native !== null) return native.sumOfSquares(a);
  const n = a.length;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a0 = a[i]!, a1 = a[i + 1]!, a2 = a[i + 2]!, a3 = a[i + 3]!;
    const a4 = a[i + 4]!, a5 = a[i + 5]!, a6 = a[i + 6]!, a7 = a[i + 7]!;
    s0 += a0 * a0;
    s1 += a1 * a1;
    s2 += a2 * a2;
    s3 += a3 * a3;
    s4 += a4 * a4;
    s5 += a5 * a5;
    s6 += a6 * a6;
    s7 += a7 * a7;
  }
  for (; i < n; i++) s0 += a[i]! * a[i]!;
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}
