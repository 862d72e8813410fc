/**
 * Federated averaging (FedAvg) of model weights for trainers that learn data-parallel on
 * different partitions and meet on the snapshot topic; `federatedUpdate` adds a server
 * learning rate and momentum for `npm run bench:averaging`. Only model weights are averaged,
 * never the optimiser's state. The derivation, the sources and the weight-spec rule that
 * tells model weights from optimiser state: docs/scaling.md, "How averaging works".
 */
import type { io } from '@tensorflow/tfjs';
import { CheckpointError, InputError } from '../errors.js';
import type { CheckpointState } from './checkpoint.js';
import { PrequentialLearner } from './learner.js';

/** One weight's values. */
export interface WeightValues {
  /** The tfjs shape, e.g. [vocabSize, embeddingDim] for 'embedding/embeddings'. */
  readonly shape: readonly number[];
  /** Only float32 weights are averaged (every weight of our network is). */
  readonly dtype: 'float32';
  /** Row-major, as tfjs stores them; length = product of `shape`. */
  readonly values: Float32Array;
}

/** A model's weights by tfjs weight name ('lstm/kernel', …), in model order. */
export type ModelWeights = ReadonlyMap<string, WeightValues>;

export interface AverageInput {
  weights: ModelWeights;
  /**
   * How much this input counts: the rows its trainer trained on since the last average
   * (not since it started: rows trained before the last average are already in every
   * input). The caller keeps that count, e.g. as the difference of the snapshot's
   * `metrics.trainedRows` (labelled rows in applied steps, checkpointed with the
   * evaluation) since the last average, or the sum of `ProcessResult.trainedRows`. Any
   * finite number ≥ 0 (see federatedAverage for what integer counts guarantee).
   */
  rows: number;
}

/**
 * The FedAvg mean of the inputs' weights, weighted by `rows`; new arrays, in the first
 * input's order.
 *
 * Every input must hold the same weight names with the same shapes and dtype float32: a
 * CheckpointError names the first weight (in the first input's order) that differs, and
 * the input. `rows` must be finite and ≥ 0 (an InputError otherwise).
 *
 * When every `rows` is 0 (no trainer trained since the last average, e.g. a quiet
 * stream), the result is the plain mean. Throwing would make each caller special-case an
 * idle round, and the plain mean does the right thing there: the inputs are then
 * normally all the last average, and the mean of equal inputs is that input exactly.
 *
 * Each element is summed in float64 (Σ n_k·w_k, then one division by n) and rounded to
 * float32 once, so the result is the weighted mean to float32 precision (float64's
 * rounding is 2^29 times finer). With integer rows below 2^29 each product n_k·w_k is
 * exact, so equal inputs give themselves back bit for bit, whatever their rows; an
 * input with all the weight (rows 1 : 0, or a single input) is returned as it is.
 * Inputs with 0 rows take no part in the sum (their shapes are still checked). A
 * result that is not finite (an input holding NaN or ±Infinity) is a CheckpointError
 * naming the weight and the input: it would spread to every trainer.
 */
export function federatedAverage(inputs: readonly AverageInput[]): Map<string, WeightValues> {
  const mean = checkedMean(inputs, 'federatedAverage');
  const averaged = new Map<string, WeightValues>();
  for (const [name, w] of inputs[0]!.weights) {
    const values = Float32Array.from(mean.of(name));
    if (!allFinite(values)) throw mean.notFinite(name);
    averaged.set(name, { shape: [...w.shape], dtype: 'float32', values });
  }
  return averaged;
}

export interface FederatedUpdateOptions {
  /**
   * η, the server learning rate (Reddi et al. 2021, "Adaptive Federated Optimization"):
   * how far the round moves the model along the trainers' mean update. 1 (the default)
   * is plain FedAvg; N with N trainers of equal rows is the sum of their updates, the
   * progress one trainer would make on all their rows. A finite number > 0.
   */
  serverLearningRate?: number;
  /**
   * β, server momentum (Hsu et al. 2019, FedAvgM): the round's step is η·v with
   * v = β·v_prev + Δ. 0 (the default) is no momentum. A finite number in [0, 1); with
   * β > 0 the steady-state step on a constant Δ is η/(1 − β)·Δ, so lower η to match.
   */
  serverMomentum?: number;
  /**
   * v_prev: the `velocity` the previous round returned, or null (the default) in the first
   * round. Ignored when `serverMomentum` is 0.
   */
  velocity?: ModelWeights | null;
}

export interface FederatedUpdate {
  /** The new model: base + η·v, in inputs[0]'s order. */
  weights: Map<string, WeightValues>;
  /**
   * v = β·v_prev + Δ, to pass as `velocity` next round; Δ = Σ_k (n_k / n)·(w_k − base)
   * when there is no momentum.
   */
  velocity: Map<string, WeightValues>;
}

/**
 * FedAvg with a server learning rate and, optionally, server momentum: the trainers'
 * mean update since `base`, Δ = Σ_k (n_k / n)·(w_k − base) = mean − base (`mean` being
 * federatedAverage(inputs)), scaled by η and carried by momentum β:
 *
 *   v = β·v_prev + Δ,   w = base + η·v.
 *
 * `base` is the model every input started the round from: the last average, which every
 * trainer applied. Plain FedAvg (η = 1, no momentum) replaces the model by the mean, so a
 * round moves it by the trainers' mean update: with N trainers, each of which trained on
 * 1/N of the round's rows, about 1/N of the progress one trainer would make on the same
 * rows. η > 1 is meant to make up for that, as long as the round's updates are small
 * enough to add up. On the bundled corpus (npm run bench:averaging, issue 7) they only
 * did with one batch per trainer per round; with longer rounds η > 1 overshot, and server
 * momentum hurt throughout. So the defaults stay plain FedAvg.
 *
 * Inputs are checked as by federatedAverage (the same errors), `base` and `velocity` the
 * same way against inputs[0] (the error names `base` or `velocity`); bad options are an
 * InputError naming the option. Rows of 0, all rows 0: as in
 * federatedAverage.
 *
 * Each element is computed in float64 from the float64 mean, as mean + (η − 1)·Δ + η·β·v_prev,
 * and rounded to float32 once; a term whose factor is 0 is left out, so with η = 1 and no
 * momentum the weights are federatedAverage(inputs) bit for bit, whatever base is. The
 * velocity is kept in float32, like the weights.
 * A result that is not finite (a non-finite base or velocity, or η·Δ overflowing) is a
 * CheckpointError naming the weight.
 */
export function federatedUpdate(base: ModelWeights, inputs: readonly AverageInput[], options: FederatedUpdateOptions = {}): FederatedUpdate {
  const eta = options.serverLearningRate ?? 1;
  const beta = options.serverMomentum ?? 0;
  const previous = beta > 0 ? (options.velocity ?? null) : null;
  if (typeof eta !== 'number' || !Number.isFinite(eta) || eta <= 0) {
    throw new InputError(`options.serverLearningRate must be a finite number > 0, got ${String(eta)}`);
  }
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0 || beta >= 1) {
    throw new InputError(`options.serverMomentum must be a number in [0, 1), got ${String(beta)}`);
  }
  const mean = checkedMean(inputs, 'federatedUpdate');
  const reference = inputs[0]!.weights;
  checkSameWeights(reference, base, 'base');
  if (previous !== null) checkSameWeights(reference, previous, 'velocity');

  const weights = new Map<string, WeightValues>();
  const velocity = new Map<string, WeightValues>();
  for (const [name, w] of reference) {
    const m = mean.of(name);
    const b = base.get(name)!.values;
    const vPrev = previous?.get(name)!.values;
    const n = m.length;
    const values = new Float32Array(n);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const delta = m[i]! - b[i]!;
      // base + η·(β·v_prev + Δ), written as mean + (η − 1)·Δ + η·β·v_prev so that the mean
      // stays exact; a term whose factor is 0 is not added at all (not even as ±0).
      let x = m[i]!;
      if (eta !== 1) x += (eta - 1) * delta;
      if (vPrev === undefined) {
        v[i] = delta;
      } else {
        const carried = beta * vPrev[i]!;
        x += eta * carried;
        v[i] = carried + delta;
      }
      values[i] = x;
    }
    if (!allFinite(values) || !allFinite(v)) {
      if (!allFinite(Float32Array.from(m))) throw mean.notFinite(name);
      if (!allFinite(b)) throw new CheckpointError(`weight ${name} of base holds NaN or ±Infinity; the update would spread it to every trainer`);
      if (vPrev !== undefined && !allFinite(vPrev)) throw new CheckpointError(`weight ${name} of velocity holds NaN or ±Infinity`);
      throw new CheckpointError(`the update of weight ${name} is not finite (serverLearningRate ${eta}, serverMomentum ${beta})`);
    }
    weights.set(name, { shape: [...w.shape], dtype: 'float32', values });
    velocity.set(name, { shape: [...w.shape], dtype: 'float32', values: v });
  }
  return { weights, velocity };
}

interface CheckedMean {
  /** The weighted mean of one weight, in float64 (before the one rounding to float32). */
  of(name: string): Float64Array;
  /** The error for a mean that is not finite: names the input that holds NaN or ±Infinity. */
  notFinite(name: string): CheckpointError;
}

/** Checks the inputs (see federatedAverage) and returns their weighted mean, weight by weight. */
function checkedMean(inputs: readonly AverageInput[], caller: string): CheckedMean {
  const first = inputs[0];
  if (first === undefined) throw new InputError(`${caller} needs at least one input`);
  inputs.forEach((input, k) => {
    if (!Number.isFinite(input.rows) || input.rows < 0) {
      throw new InputError(`inputs[${k}].rows must be a finite number ≥ 0, got ${String(input.rows)}`);
    }
  });
  for (const [name, w] of first.weights) checkWeight(w, name, 'inputs[0]');
  for (let k = 1; k < inputs.length; k++) checkSameWeights(first.weights, inputs[k]!.weights, `inputs[${k}]`);

  const total = inputs.reduce((sum, input) => sum + input.rows, 0);
  // All zero: every input counts once (the plain mean; see federatedAverage).
  const counts = inputs.map((input) => (total > 0 ? input.rows : 1));
  const contributing = inputs.map((_, k) => k).filter((k) => counts[k]! > 0);
  const denominator = total > 0 ? total : inputs.length;
  return {
    of(name) {
      // One contributor: its values as they are (float32 → float64 is exact).
      if (contributing.length === 1) return Float64Array.from(inputs[contributing[0]!]!.weights.get(name)!.values);
      const n = first.weights.get(name)!.values.length;
      const sum = new Float64Array(n);
      for (const k of contributing) {
        const c = counts[k]!;
        const v = inputs[k]!.weights.get(name)!.values;
        for (let i = 0; i < n; i++) sum[i]! += c * v[i]!;
      }
      for (let i = 0; i < n; i++) sum[i] = sum[i]! / denominator;
      return sum;
    },
    notFinite(name) {
      const bad = contributing.find((k) => !allFinite(inputs[k]!.weights.get(name)!.values));
      return new CheckpointError(
        bad !== undefined
          ? `weight ${name} of inputs[${bad}] holds NaN or ±Infinity; the average would spread it to every trainer`
          : `the average of weight ${name} is not finite`,
      );
    },
  };
}

/**
 * The model weights (not the optimiser's: see the file comment) of a checkpoint or
 * snapshot, decoded from its artifacts without tfjs, or of a live learner. Copies, in
 * model order, named as in the checkpoint's weight specs.
 *
 * A learner is read synchronously, between two of its training steps (a step never
 * yields), so the weights are those after a whole number of steps; to pair them with
 * counters, read them when no batch is in progress.
 */
export function modelWeightsOf(source: CheckpointState | PrequentialLearner): Map<string, WeightValues> {
  return source instanceof PrequentialLearner ? learnerWeights(source) : checkpointWeights(source);
}

/**
 * Sets the learner's model weights to `averaged` (from federatedAverage): its optimiser
 * state (Adam's moments, step count and powers), model version, rows seen, offsets trained
 * through and evaluation stay as they are. Waits for a batch in progress. A weight that is
 * missing, extra, of another shape than the learner's, or not finite is a CheckpointError
 * naming it, and changes nothing.
 */
export async function applyAverage(learner: PrequentialLearner, averaged: ModelWeights): Promise<void> {
  for (const [name, w] of averaged) {
    checkWeight(w, name, null);
    // setModelWeights would take them: only training steps go through the learner's NaN guard.
    if (!allFinite(w.values)) throw new CheckpointError(`weight ${name} holds NaN or ±Infinity`);
  }
  await learner.setModelWeights(averaged);
}

function learnerWeights(learner: PrequentialLearner): Map<string, WeightValues> {
  const weights = new Map<string, WeightValues>();
  for (const variable of learner.model.weights) {
    const name = variable.originalName;
    if (variable.dtype !== 'float32') throw new CheckpointError(`weight ${name} is ${variable.dtype}; only float32 weights are averaged`);
    // read() is the variable's own tensor (nothing to dispose); dataSync may return the
    // backend's own array (cpu), hence the copy.
    const values = Float32Array.from(variable.read().dataSync() as Float32Array);
    weights.set(name, { shape: variable.shape.map((d) => d ?? 0), dtype: 'float32', values });
  }
  return weights;
}

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function checkpointWeights(state: CheckpointState): Map<string, WeightValues> {
  const { weightData, weightSpecs } = state.artifacts;
  if (weightData === undefined || weightSpecs === undefined) throw new CheckpointError('checkpoint artifacts have no weights');
  const data = joinWeightData(weightData);
  const weights = new Map<string, WeightValues>();
  let offset = 0;
  for (const spec of weightSpecs) {
    const per = BYTES_PER_DTYPE[spec.dtype];
    if (per === undefined || spec.quantization !== undefined || !Array.isArray(spec.shape)) {
      throw new CheckpointError(`checkpoint has an unsupported weight spec for ${spec.name}`);
    }
    const size = spec.shape.reduce((n, d) => n * d, 1);
    const end = offset + size * per;
    if (end > data.byteLength) {
      throw new CheckpointError(`checkpoint weight specs describe more than the ${data.byteLength} bytes of weight data (at ${spec.name})`);
    }
    if (spec.group !== 'optimizer') {
      if (spec.dtype !== 'float32') throw new CheckpointError(`weight ${spec.name} is ${spec.dtype}; only float32 weights are averaged`);
      if (weights.has(spec.name)) throw new CheckpointError(`checkpoint holds weight ${spec.name} twice`);
      // A slice: its own aligned buffer, whatever came before it.
      weights.set(spec.name, { shape: [...spec.shape], dtype: 'float32', values: new Float32Array(data.slice(offset, end)) });
    }
    offset = end;
  }
  if (offset !== data.byteLength) {
    throw new CheckpointError(`checkpoint weight specs describe ${offset} bytes but the weight data has ${data.byteLength}`);
  }
  return weights;
}

function joinWeightData(data: io.WeightData): ArrayBuffer {
  if (!Array.isArray(data)) return data;
  const out = new Uint8Array(data.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out.buffer;
}

/** `where`: the map's name in error messages ('inputs[1]', 'base'), or null for a lone weight map. */
function checkWeight(w: WeightValues, name: string, where: string | null): void {
  const of = where === null ? '' : ` in ${where}`;
  // dtype is typed 'float32', but weights may come from anywhere (JSON, a hand-built map).
  if ((w.dtype as string) !== 'float32' || !(w.values instanceof Float32Array)) {
    throw new CheckpointError(`weight ${name}${of} is ${String(w.dtype)}; only float32 weights are averaged`);
  }
  if (!w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(`weight ${name}${of} has an invalid shape [${w.shape.join(', ')}]`);
  }
  const size = w.shape.reduce((n, d) => n * d, 1);
  if (w.values.length !== size) {
    throw new CheckpointError(`weight ${name}${of} has ${w.values.length} values; its shape [${w.shape.join(', ')}] holds ${size}`);
  }
}

/** `where`: other's name in error messages ('inputs[1]', 'base'); reference is inputs[0]. */
function checkSameWeights(reference: ModelWeights, other: ModelWeights, where: string): void {
  for (const [name, w] of reference) {
    const o = other.get(name);
    if (o === undefined) throw new CheckpointError(`weight ${name} is in inputs[0] but not in ${where}`);
    checkWeight(o, name, where);
    if (o.shape.length !== w.shape.length || o.shape.some((d, i) => d !== w.shape[i])) {
      throw new CheckpointError(`weight ${name} has shape [${w.shape.join(', ')}] in inputs[0] but [${o.shape.join(', ')}] in ${where}`);
    }
  }
  for (const name of other.keys()) {
    if (!reference.has(name)) throw new CheckpointError(`weight ${name} is in ${where} but not in inputs[0]`);
  }
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}
