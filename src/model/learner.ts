/**
 * The prequential ("test, then train") learner. For each Arrow batch it
 * 1. scores the unlabelled rows with the current model (tokens go from the Arrow buffer
 *    into one tensor; no per-row JS arrays),
 * 2. trains on the labelled rows in minibatches of `trainBatchSize`, one optimiser step
 *    each (Keras' train_on_batch), scoring each minibatch with the forward pass of the
 *    step that trains on it, so every row is scored by the model as it stands right before
 *    learning from it (Keras' predict_on_batch then train_on_batch), and records those
 *    scores in the online evaluation (accuracy, log loss and AUC stay out-of-sample).
 *    A step whose loss or any gradient is NaN or infinite is rejected: the weights and
 *    Adam's state stay exactly as they were, and `rejectedUpdates` and `onRejectedUpdate`
 *    report it. One such step (a numerical blow-up, a bad kernel) would otherwise turn
 *    every weight into NaN for good.
 *
 * modelVersion counts applied optimiser steps; a batch's result carries the version before it.
 * Calls are serialised: a second `process` waits for the first, so a checkpoint never
 * sees half a batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { RecordBatch } from 'apache-arrow';
import { tokenMatrix } from '../batch/builder.js';
import { sourceRanges, type SourceRange } from '../batch/positions.js';
import { Columns } from '../batch/schema.js';
import { BackendError, CheckpointError, ConfigError, ErrorCodes, TextstreamError } from '../errors.js';
import { currentBackend } from './backend.js';
import { tensorValues } from './fused-lstm.js';
import type { AdamPowers, CheckpointState, TrainedThrough } from './checkpoint.js';
import { OnlineEvaluator, type EvaluationSnapshot, type EvaluatorOptions } from './evaluation.js';
import { buildNetwork, lstmLayerKind, networkLoss, resolveNetworkConfig, type NetworkConfig } from './network.js';
import { setImmediate as nextMacrotask } from 'node:timers/promises';

export interface LearnerOptions {
  network?: NetworkConfig;
  /** Labelled rows per optimiser step (default 32, Keras' batch_size default). */
  trainBatchSize?: number;
  /**
   * Most rows scored in one forward pass (default 1024). Larger passes amortise tfjs'
   * per-op overhead; this only bounds the memory of one pass for very large batches.
   */
  scoreBatchSize?: number;
  /**
   * Global gradient-norm clipping (Keras' `global_clipnorm`): a step whose gradients'
   * joint L2 norm exceeds this is scaled down to it. null: no clipping.
   */
  clipNorm?: number | null;
  evaluation?: EvaluatorOptions;
  /** Told about every rejected training step (log it at warn); see RejectedUpdate. */
  onRejectedUpdate?: (event: RejectedUpdate) => void;
  /**
   * Fault injection only (`textstream run --inject-fault nan-loss:N`, npm run chaos): the
   * N-th training step of this learner computes a NaN loss, so a live worker goes through
   * the guard's real path. Never set otherwise.
   */
  nanLossAtStep?: number | null;
}

/** A training step that was not applied because its loss or a gradient was not finite. */
export interface RejectedUpdate {
  /**
   * 'loss' when the loss itself was NaN or infinite, else 'gradient'. The seed's loss clips
   * scores to [1e-7, 1 − 1e-7], NaN included, so a model that scores NaN shows up here as
   * 'gradient' with a finite loss.
   */
  reason: 'loss' | 'gradient';
  /** The loss the step computed (NaN or ±Infinity when reason is 'loss'). */
  loss: number;
  /** The model version the step would have advanced (it stays). */
  modelVersion: number;
  /** Labelled rows in the rejected step. */
  rows: number;
  /** Rejected steps since this learner was created, this one included. */
  rejectedUpdates: number;
  /** Per source and partition, the offset range of the step's rows. */
  positions: SourceRange[];
  /** One line for the log. */
  message: string;
}

export interface ProcessResult {
  /** P(label = 1) for every row of the batch, from the model right before it trained on the row. */
  scores: Float32Array;
  /** The model version before this batch (its k-th training step's rows were scored by version modelVersion + k). */
  modelVersion: number;
  /** The model version after training on this batch. */
  modelVersionAfter: number;
  labelledRows: number;
  /** Labelled rows in applied steps (rejected steps' rows are not trained on). */
  trainedRows: number;
  trainSteps: number;
  /** Steps rejected for a non-finite loss or gradient, and their rows. */
  rejectedSteps: number;
  rejectedRows: number;
  /** Mean training loss over this batch's applied steps (row-weighted), null when none. */
  loss: number | null;
}

export interface ScoreResult {
  scores: Float32Array;
  modelVersion: number;
}

const DEFAULT_TRAIN_BATCH = 32;
const DEFAULT_SCORE_BATCH = 1024;

export class PrequentialLearner {
  readonly network: NetworkConfig;
  readonly scoreBatchSize: number;
  /** The tfjs backend this learner runs on (for logs and metric labels). */
  readonly backend: string;
  /** The LSTM layer in use ('auto' resolved). */
  readonly lstm: 'fused' | 'stock';
  readonly #model: tf.LayersModel;
  readonly #evaluator: OnlineEvaluator;
  readonly #onRejectedUpdate: ((event: RejectedUpdate) => void) | undefined;
  #version: number;
  #rowsSeen: number;
  #rejectedUpdates = 0;
  readonly #nanLossAtStep: number | null;
  readonly #clipNorm: number | null;
  #stepsAttempted = 0;
  /** Per `source\u0000partition`: the last offset learnt from (see CheckpointState.trainedThrough). */
  readonly #trainedThrough: Map<string, bigint>;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  #trainBatchSize: number;

  private constructor(
    model: tf.LayersModel,
    network: NetworkConfig,
    options: LearnerOptions,
    evaluator: OnlineEvaluator,
    version: number,
    rowsSeen: number,
    trainedThrough: Map<string, bigint> = new Map(),
  ) {
    this.#model = model;
    this.network = network;
    this.#trainBatchSize = options.trainBatchSize ?? DEFAULT_TRAIN_BATCH;
    this.scoreBatchSize = options.scoreBatchSize ?? DEFAULT_SCORE_BATCH;
    this.#evaluator = evaluator;
    this.#onRejectedUpdate = options.onRejectedUpdate;
    this.#nanLossAtStep = options.nanLossAtStep ?? null;
    this.#clipNorm = options.clipNorm ?? null;
    this.#version = version;
    this.#rowsSeen = rowsSeen;
    this.#trainedThrough = trainedThrough;
    this.backend = tf.getBackend();
    this.lstm = lstmLayerKind(network);
  }

  /** A fresh model. Call `selectBackend` first. */
  static create(options: LearnerOptions = {}): PrequentialLearner {
    requireBackend();
    validateOptions(options);
    const network = resolveNetworkConfig(options.network);
    return new PrequentialLearner(buildNetwork(network), network, options, new OnlineEvaluator(options.evaluation), 0, 0);
  }

  /**
   * Resumes from a checkpoint: weights, optimiser state, version, rows seen and (when the
   * checkpoint has it) the running evaluation. A network config in `options` must match
   * the checkpoint's: the tokenizer and embedding are tied to it.
   */
  static async fromCheckpoint(checkpoint: CheckpointState, options: LearnerOptions = {}): Promise<PrequentialLearner> {
    requireBackend();
    validateOptions(options);
    // The LSTM implementation is a choice of this process, not state: both layers hold the
    // same weights, so a checkpoint made with either loads into either.
    const network = resolveNetworkConfig({ ...checkpoint.network, lstm: options.network?.lstm ?? 'auto' }, 'checkpoint.network');
    if (options.network !== undefined) {
      const wanted = resolveNetworkConfig(options.network);
      for (const key of ['vocabSize', 'embeddingDim', 'units', 'maxLen', 'learningRate'] as const) {
        if (wanted[key] !== network[key]) {
          throw new CheckpointError(`checkpoint has network.${key} = ${network[key]} but the configuration asks for ${wanted[key]}`);
        }
      }
    }
    const model = buildNetwork(network);
    try {
      await restoreWeights(model, checkpoint);
    } catch (cause) {
      model.optimizer.dispose();
      model.dispose();
      if (cause instanceof CheckpointError) throw cause;
      throw new CheckpointError(`checkpoint weights could not be restored: ${String(cause)}`, { cause });
    }
    let evaluator: OnlineEvaluator;
    try {
      evaluator = checkpoint.evaluation !== null ? OnlineEvaluator.fromJSON(checkpoint.evaluation) : new OnlineEvaluator(options.evaluation);
    } catch (cause) {
      model.optimizer.dispose();
      model.dispose();
      throw new CheckpointError(`checkpoint evaluation state is invalid: ${String(cause)}`, { cause });
    }
    let trainedThrough: Map<string, bigint>;
    try {
      trainedThrough = trainedThroughFromJSON(checkpoint.trainedThrough ?? {});
    } catch (cause) {
      model.optimizer.dispose();
      model.dispose();
      throw new CheckpointError(`checkpoint trainedThrough is invalid: ${String(cause)}`, { cause });
    }
    return new PrequentialLearner(model, network, options, evaluator, checkpoint.modelVersion, checkpoint.rowsSeen, trainedThrough);
  }

  /** Labelled rows per optimiser step. */
  get trainBatchSize(): number {
    return this.#trainBatchSize;
  }

  /** Takes effect from the next batch trained (averaging trainers resize it on a rebalance: see splitBatch). */
  set trainBatchSize(rows: number) {
    validateOptions({ trainBatchSize: rows });
    this.#trainBatchSize = rows;
  }

  /** Optimiser steps applied so far. */
  get modelVersion(): number {
    return this.#version;
  }

  /** Rows processed so far, labelled or not. */
  get rowsSeen(): number {
    return this.#rowsSeen;
  }

  /**
   * Training steps rejected (not applied) since this learner was created because their
   * loss or a gradient was NaN or infinite. Not checkpointed: a count for this process's
   * metrics (textstream_model_updates_rejected_total).
   */
  get rejectedUpdates(): number {
    return this.#rejectedUpdates;
  }

  /** The underlying tfjs model (read-only use: summaries, parity tests). */
  get model(): tf.LayersModel {
    return this.#model;
  }

  /** Scores the batch, evaluates its labelled rows, then trains on them. */
  process(batch: RecordBatch): Promise<ProcessResult> {
    return this.#serial(() => this.#process(batch));
  }

  /** Scores the batch without evaluating or training (the scorer role). */
  score(batch: RecordBatch): Promise<ScoreResult> {
    return this.#serial(() => {
      const tokens = this.#tokens(batch);
      const scores = this.#score(tokens, batch.numRows);
      this.#rowsSeen += batch.numRows;
      return Promise.resolve({ scores, modelVersion: this.#version });
    });
  }

  /**
   * Trains on the labelled rows without scoring or evaluating them: rows whose output was
   * written before a crash lost what the model learnt from them.
   */
  retrain(batch: RecordBatch): Promise<{ trainedRows: number }> {
    return this.#serial(async () => {
      const tokens = this.#tokens(batch);
      const { rows: labelled, labels } = labelledRows(batch);
      this.#rowsSeen += batch.numRows;
      const { trainedRows } = await this.#train(batch, tokens, labelled, labels);
      this.#noteTrainedThrough(batch);
      return { trainedRows };
    });
  }

  /** The last offset of a source's partition this model has learnt from, or null. */
  trainedThrough(source: string, partition: number): bigint | null {
    return this.#trainedThrough.get(`${source}\u0000${partition}`) ?? null;
  }

  evaluation(): EvaluationSnapshot {
    return this.#evaluator.snapshot();
  }

  /** Everything a checkpoint needs; the tokenizer is the caller's, stored verbatim. */
  checkpointState(tokenizer: unknown): Promise<CheckpointState> {
    return this.#serial(async () => {
      let artifacts: tf.io.ModelArtifacts | undefined;
      // tfjs' Adam.getWeights() (called by save with includeOptimizer) makes an iterations
      // scalar it never disposes: one leaked tensor per checkpoint. The scope frees it; the
      // learner runs one call at a time, so nothing else allocates inside it.
      tf.engine().startScope();
      try {
        // A capturing IOHandler: tfjs hands us the artifacts, checkpoint.ts writes them.
        await this.#model.save(
          {
            save: (a) => {
              artifacts = a;
              return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
            },
          },
          { includeOptimizer: true },
        );
      } finally {
        tf.engine().endScope();
      }
      return {
        artifacts: artifacts!,
        network: this.network,
        modelVersion: this.#version,
        rowsSeen: this.#rowsSeen,
        tokenizer,
        evaluation: this.#evaluator.toJSON(),
        adamPowers: readAdamPowers(this.#model.optimizer),
        trainedThrough: trainedThroughToJSON(this.#trainedThrough),
      };
    });
  }

  /**
   * Replaces every model weight (keyed by the names a checkpoint's model group uses, e.g.
   * 'lstm/kernel') and nothing else: Adam's moments, step count and powers, the model
   * version, rows seen, trainedThrough and the evaluation stay exactly as they are. For
   * federated averaging (averaging.ts' applyAverage). Waits for a batch in progress like
   * every other call, so it never lands between two steps of one batch. Every name and
   * shape is checked before anything is written: a mismatch is a CheckpointError that
   * names the weight, and changes nothing. The values are copied.
   */
  setModelWeights(weights: ReadonlyMap<string, { readonly shape: readonly number[]; readonly values: Float32Array }>): Promise<void> {
    return this.#serial(() => {
      const variables = this.#model.weights;
      const known = new Set(variables.map((v) => v.originalName));
      for (const name of weights.keys()) {
        if (!known.has(name)) throw new CheckpointError(`weight ${name} is not a weight of this model (it has ${[...known].join(', ')})`);
      }
      const writes = variables.map((variable) => {
        const name = variable.originalName;
        const w = weights.get(name);
        if (w === undefined) throw new CheckpointError(`weight ${name} is missing`);
        if (variable.dtype !== 'float32') throw new CheckpointError(`weight ${name} is ${variable.dtype}; only float32 weights can be set`);
        const size = variable.shape.reduce<number>((n, d) => n * (d ?? 0), 1);
        if (w.shape.length !== variable.shape.length || w.shape.some((d, i) => d !== variable.shape[i]) || w.values.length !== size) {
          throw new CheckpointError(
            `weight ${name} has shape [${w.shape.join(', ')}] and ${w.values.length} values; the model's is [${variable.shape.join(', ')}] (${size} values)`,
          );
        }
        return { variable, values: w.values };
      });
      // A copy: on the cpu backend a tensor keeps the very array it was made from, and the
      // variable takes over the tensor's data, so it would alias the caller's array.
      tf.tidy(() => {
        for (const { variable, values } of writes) variable.write(tf.tensor(values.slice(), variable.shape as number[], 'float32'));
      });
      return Promise.resolve();
    });
  }

  /** Frees the model's tensors (weights and optimiser state). Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#model.optimizer?.dispose();
    this.#model.dispose();
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(new TextstreamError(ErrorCodes.MODEL_FAILED, 'learner is disposed'));
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #process(batch: RecordBatch): Promise<ProcessResult> {
    const rows = batch.numRows;
    const tokens = this.#tokens(batch);
    const { rows: labelled, labels } = labelledRows(batch);
    const modelVersion = this.#version;
    // Unlabelled rows are scored by the model as it stands before the batch; each labelled
    // row by the forward pass of the step that trains on it (see #train).
    const scores = labelled.length === rows ? new Float32Array(rows) : this.#scoreUnlabelled(tokens, rows, labelled);
    this.#rowsSeen += rows;
    const { steps, trainedRows, rejectedSteps, lossSum } = await this.#train(batch, tokens, labelled, labels, scores);
    this.#evaluator.observe(scores, labelled, labels);
    this.#noteTrainedThrough(batch);
    return {
      scores,
      modelVersion,
      modelVersionAfter: this.#version,
      labelledRows: labelled.length,
      trainedRows,
      trainSteps: steps,
      rejectedSteps,
      rejectedRows: labelled.length - trainedRows,
      loss: steps > 0 ? lossSum / trainedRows : null,
    };
  }

  /** Scores of the batch's unlabelled rows; labelled rows' entries stay 0 for #train to fill. */
  #scoreUnlabelled(tokens: Int32Array, rows: number, labelled: Int32Array): Float32Array {
    if (labelled.length === 0) return this.#score(tokens, rows);
    const isLabelled = new Uint8Array(rows);
    for (const r of labelled) isLabelled[r] = 1;
    const unlabelled = new Int32Array(rows - labelled.length);
    for (let r = 0, k = 0; r < rows; r++) if (isLabelled[r] === 0) unlabelled[k++] = r;
    const own = this.#score(packRows(tokens, unlabelled, this.network.maxLen), unlabelled.length);
    const scores = new Float32Array(rows);
    unlabelled.forEach((r, k) => (scores[r] = own[k]!));
    return scores;
  }

  /**
   * Mini-batch steps over the labelled rows; a step with a NaN or infinite loss or gradient
   * is not applied. With `scores`, each labelled row's score is written there from the
   * forward pass of the step that trains on it: the model as it stands right before
   * learning from the row (Keras' predict_on_batch then train_on_batch), at no extra cost.
   */
  async #train(
    batch: RecordBatch,
    tokens: Int32Array,
    labelled: Int32Array,
    labels: Float32Array,
    scores?: Float32Array,
  ): Promise<{ steps: number; trainedRows: number; rejectedSteps: number; lossSum: number }> {
    let lossSum = 0;
    let steps = 0;
    let trainedRows = 0;
    let rejectedSteps = 0;
    const maxLen = this.network.maxLen;
    // Only when some rows are unlabelled do the labelled ones need packing together.
    const source = labelled.length === batch.numRows ? tokens : packRows(tokens, labelled, maxLen);
    for (let start = 0; start < labelled.length; start += this.#trainBatchSize) {
      const n = Math.min(this.#trainBatchSize, labelled.length - start);
      const step = this.#trainStep(source.subarray(start * maxLen, (start + n) * maxLen), labels.subarray(start, start + n), n);
      if (scores !== undefined) for (let k = 0; k < n; k++) scores[labelled[start + k]!] = step.scores[k]!;
      if (step.applied) {
        this.#version++;
        steps++;
        trainedRows += n;
        lossSum += step.loss * n;
        this.#evaluator.observeTraining(step.loss, n);
      } else {
        rejectedSteps++;
        this.#rejectedUpdates++;
        this.#onRejectedUpdate?.(this.#rejection(batch, labelled.subarray(start, start + n), step));
      }
      // Let the event loop run between steps (wasm compute never yields on its own), so
      // a /metrics scrape or a shutdown signal waits one step, not the whole batch.
      await nextMacrotask();
    }
    return { steps, trainedRows, rejectedSteps, lossSum };
  }

  #noteTrainedThrough(batch: RecordBatch): void {
    for (const range of sourceRanges(batch)) {
      const key = `${range.source}\u0000${range.partition}`;
      const last = BigInt(range.lastOffset);
      const known = this.#trainedThrough.get(key);
      if (known === undefined || last > known) this.#trainedThrough.set(key, last);
    }
  }

  #tokens(batch: RecordBatch): Int32Array {
    const tokens = tokenMatrix(batch);
    const { maxLen, vocabSize } = this.network;
    if (tokens.length !== batch.numRows * maxLen) {
      throw new TextstreamError(
        ErrorCodes.INPUT_INVALID,
        `batch has ${tokens.length / Math.max(1, batch.numRows)} tokens per row, the model expects maxLen ${maxLen}`,
      );
    }
    // tfjs would fail deep inside Gather (or, on some backends, read out of bounds).
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t < 0 || t >= vocabSize) {
        const row = Math.floor(i / maxLen);
        throw new TextstreamError(
          ErrorCodes.INPUT_INVALID,
          `row ${row} (id ${String(batch.getChild(Columns.ID)?.get(row))}) has token id ${t} outside [0, ${vocabSize}); ` +
            'the tokenizer num_words and model vocabSize must agree',
        );
      }
    }
    return tokens;
  }

  #score(tokens: Int32Array, rows: number): Float32Array {
    const maxLen = this.network.maxLen;
    const scores = new Float32Array(rows);
    for (let start = 0; start < rows; start += this.scoreBatchSize) {
      const n = Math.min(this.scoreBatchSize, rows - start);
      const part = tf.tidy(() => {
        const x = tf.tensor2d(tokens.subarray(start * maxLen, (start + n) * maxLen), [n, maxLen], 'int32');
        return (this.#model.predictOnBatch(x) as tf.Tensor).dataSync();
      });
      scores.set(part, start);
    }
    return scores;
  }

  /**
   * One optimiser step on `n` rows, unless its loss or a gradient is not finite: then
   * nothing changes (weights, Adam's moments, step count and powers) and `applied` is false.
   *
   * It computes what tfjs' trainOnBatch computes (the forward pass in training mode, the
   * mean of the compiled loss, then optimizer.minimize's gradients and update with the
   * variables in the same order), split so the update can be skipped: without clipping
   * (clipNorm) the results are bit-identical to trainOnBatch's. Checking costs one read of the loss (trainOnBatch
   * made it too) and one pass over the gradients' memory (see sumOfSquares); no snapshot.
   * The forward pass's outputs are the rows' scores before the step (the network has no
   * dropout, so training mode computes what predict does).
   */
  #trainStep(tokens: Int32Array, labels: Float32Array, n: number): StepOutcome {
    const model = this.#model;
    const optimizer = model.optimizer;
    // Read each step: the variables behind the layers are what the optimiser updates.
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.tensor2d(tokens, [n, this.network.maxLen], 'int32');
    const y = tf.tensor2d(labels, [n, 1], 'float32');
    let computed: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
    let predictions: tf.Tensor | undefined;
    const poisoned = ++this.#stepsAttempted === this.#nanLossAtStep;
    try {
      computed = optimizer.computeGradients(() => {
        const output = model.call(x, { training: true });
        predictions = tf.keep(Array.isArray(output) ? output[0]! : output);
        const loss = tf.mean<tf.Scalar>(networkLoss(y, predictions));
        return poisoned ? tf.mul<tf.Scalar>(loss, Number.NaN) : loss;
      }, variables);
      const { value, grads } = computed;
      const scores = predictions!.dataSync() as Float32Array;
      const ordered = variables.map((v) => ({ name: v.name, tensor: grads[v.name]! }));
      const loss = value.dataSync()[0]!;
      if (!Number.isFinite(loss)) return { applied: false, loss, reason: 'loss', scores };
      // One pass over the gradients' memory gives both the finiteness check and the norm.
      const norm = Math.sqrt(ordered.reduce((sum, g) => sum + sumOfSquares(g.tensor), 0));
      if (!Number.isFinite(norm)) return { applied: false, loss, reason: 'gradient', scores };
      const clip = this.#clipNorm;
      if (clip !== null && norm > clip) {
        const scaled = tf.tidy(() => ordered.map((g) => ({ name: g.name, tensor: tf.mul(g.tensor, clip / norm) })));
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

  #rejection(batch: RecordBatch, rows: Int32Array, step: Extract<StepOutcome, { applied: false }>): RejectedUpdate {
    const positions = sourceRanges(batch, rows);
    const where = positions.map((p) => `${p.source}/${p.partition}@${p.firstOffset}-${p.lastOffset}`).join(', ');
    return {
      reason: step.reason,
      loss: step.loss,
      modelVersion: this.#version,
      rows: rows.length,
      rejectedUpdates: this.#rejectedUpdates,
      positions,
      message:
        `training step rejected: ${step.reason === 'loss' ? `the loss is ${step.loss}` : `a gradient is NaN or infinite (loss ${step.loss})`} ` +
        `on ${rows.length} rows (${where || 'no source positions'}); the model stays at version ${this.#version} ` +
        `(${this.#rejectedUpdates} rejected so far)`,
    };
  }
}

/** `scores`: the step's rows scored by its forward pass, before the update. */
type StepOutcome =
  | { applied: true; loss: number; scores: Float32Array }
  | { applied: false; loss: number; reason: RejectedUpdate['reason']; scores: Float32Array };

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

/**
 * Loads model and optimiser weights into a network built from the checkpoint's config.
 * (Rather than tf.loadLayersModel on the stored topology: the network is always ours, and
 * tfjs' LSTM deserialisation leaks the tensors network.ts builds inside tidy.)
 */
async function restoreWeights(model: tf.LayersModel, checkpoint: CheckpointState): Promise<void> {
  const { weightData, weightSpecs } = checkpoint.artifacts;
  if (weightData === undefined || weightSpecs === undefined) throw new CheckpointError('checkpoint has no weights');
  const decoded = tf.io.decodeWeights(weightData, weightSpecs);
  try {
    const modelWeights: tf.NamedTensorMap = {};
    const optimizerWeights: Parameters<tf.Optimizer['setWeights']>[0] = [];
    for (const spec of weightSpecs) {
      const tensor = decoded[spec.name]!;
      if (spec.group === 'optimizer') optimizerWeights.push({ name: spec.name, tensor });
      else modelWeights[spec.name] = tensor;
    }
    // strict: every weight of the network must be present with its exact shape.
    model.loadWeights(modelWeights, true);
    await model.optimizer.setWeights(optimizerWeights);
    if (checkpoint.adamPowers !== null) restoreAdamPowers(model.optimizer, checkpoint.adamPowers);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/**
 * tfjs' AdamOptimizer keeps beta1^t and beta2^t in two (TypeScript-private) variables that
 * its getWeights/setWeights leave out; see AdamPowers for why they are saved.
 */
interface AdamInternals {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

function readAdamPowers(optimizer: tf.Optimizer): AdamPowers | null {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamInternals;
  if (!(accBeta1 instanceof tf.Variable) || !(accBeta2 instanceof tf.Variable)) return null;
  return { beta1Power: accBeta1.dataSync()[0]!, beta2Power: accBeta2.dataSync()[0]! };
}

function restoreAdamPowers(optimizer: tf.Optimizer, powers: AdamPowers): void {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamInternals;
  if (!(accBeta1 instanceof tf.Variable) || !(accBeta2 instanceof tf.Variable)) {
    throw new CheckpointError('checkpoint holds Adam state but the restored optimiser is not Adam');
  }
  tf.tidy(() => {
    accBeta1.assign(tf.scalar(powers.beta1Power));
    accBeta2.assign(tf.scalar(powers.beta2Power));
  });
}

function requireBackend(): void {
  if (currentBackend() === null) {
    throw new BackendError('no backend selected: call selectBackend() before creating a learner');
  }
}

/** Validates before anything is built, so a bad option leaks no model. */
function validateOptions(options: LearnerOptions): void {
  for (const key of ['trainBatchSize', 'scoreBatchSize'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new ConfigError(`model.${key}`, `must be a positive integer, got ${value}`);
    }
  }
  const clip = options.clipNorm;
  if (clip !== undefined && clip !== null && !(clip > 0 && Number.isFinite(clip))) {
    throw new ConfigError('model.clipNorm', `must be a positive number or null, got ${clip}`);
  }
}

/** Row indices and labels (as float 0/1, ready for the loss) of the labelled rows. */
export function labelledRows(batch: RecordBatch): { rows: Int32Array; labels: Float32Array } {
  const column = batch.getChild(Columns.LABEL);
  const n = batch.numRows;
  if (column === null) return { rows: new Int32Array(0), labels: new Float32Array(0) };
  if (column.data.length !== 1) throw new TextstreamError(ErrorCodes.INPUT_INVALID, 'batch has no single-chunk label column');
  const data = column.data[0]!;
  const values = data.values as Int8Array;
  const bitmap = data.nullCount > 0 ? data.nullBitmap : undefined;
  const rows = new Int32Array(n);
  const labels = new Float32Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    // Arrow validity bitmaps are indexed from the data's offset; `values` is already sliced.
    if (bitmap !== undefined) {
      const bit = data.offset + i;
      if (((bitmap[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
    }
    const label = values[i]!;
    if (label !== 0 && label !== 1) {
      throw new TextstreamError(ErrorCodes.INPUT_INVALID, `row ${i} has label ${label}; labels must be 0, 1 or null`);
    }
    rows[k] = i;
    labels[k] = label;
    k++;
  }
  return { rows: rows.subarray(0, k), labels: labels.subarray(0, k) };
}

/** Copies the given rows of a rows × maxLen matrix into a new packed matrix. */
function packRows(tokens: Int32Array, rows: Int32Array, maxLen: number): Int32Array {
  const out = new Int32Array(rows.length * maxLen);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    out.set(tokens.subarray(r * maxLen, (r + 1) * maxLen), k * maxLen);
  }
  return out;
}

function trainedThroughToJSON(positions: ReadonlyMap<string, bigint>): TrainedThrough {
  const json: TrainedThrough = {};
  for (const [key, offset] of positions) {
    const [source, partition] = key.split('\u0000') as [string, string];
    (json[source] ??= {})[partition] = offset.toString();
  }
  return json;
}

function trainedThroughFromJSON(json: TrainedThrough): Map<string, bigint> {
  const positions = new Map<string, bigint>();
  for (const [source, partitions] of Object.entries(json)) {
    for (const [partition, offset] of Object.entries(partitions)) {
      if (!/^\d+$/.test(partition) || !/^-?\d+$/.test(offset)) throw new Error(`${source}/${partition}: ${offset} is not an offset`);
      positions.set(`${source}\u0000${partition}`, BigInt(offset));
    }
  }
  return positions;
}
