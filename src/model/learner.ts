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
import { PIPELINE_DEFAULTS } from '../config/schema.js';
import { BackendError, CheckpointError, ConfigError, InputError, ModelError } from '../errors.js';
import { currentBackend } from './backend.js';
import type { CheckpointState } from './checkpoint.js';
import { OnlineEvaluator, type EvaluationSnapshot, type EvaluatorOptions } from './evaluation.js';
import { NanLossInjection } from './fault-injection.js';
import { labelledRows, packRows } from './labelled-rows.js';
import { replaceModelWeights } from './model-weights.js';
import { buildNetwork, lstmLayerKind, resolveNetworkConfig, type NetworkConfig } from './network.js';
import { captureArtifacts, readAdamPowers, restoreWeights } from './optimizer-state.js';
import { guardedTrainStep, type StepOutcome } from './training-step.js';
import { TrainedThroughOffsets } from './trained-through.js';
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
   * the guard's real path (see fault-injection.ts). Never set otherwise.
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

/** Per call: an averaging trainer's step size follows its share of the partitions (see splitBatch). */
export interface StepOptions {
  /** Labelled rows per optimiser step for this batch; default the learner's trainBatchSize. */
  trainBatchSize?: number;
}

export interface ScoreResult {
  scores: Float32Array;
  modelVersion: number;
}

/** The pipeline's model.trainBatchSize (32, Keras' batch_size default), declared once in the schema. */
const DEFAULT_TRAIN_BATCH = PIPELINE_DEFAULTS.model.trainBatchSize;
/** Not a setting: it only bounds the memory of one forward pass. */
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
  readonly #faults: NanLossInjection;
  readonly #clipNorm: number | null;
  readonly #trainedThrough: TrainedThroughOffsets;
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
    trainedThrough: TrainedThroughOffsets = new TrainedThroughOffsets(),
  ) {
    this.#model = model;
    this.network = network;
    this.#trainBatchSize = options.trainBatchSize ?? DEFAULT_TRAIN_BATCH;
    this.scoreBatchSize = options.scoreBatchSize ?? DEFAULT_SCORE_BATCH;
    this.#evaluator = evaluator;
    this.#onRejectedUpdate = options.onRejectedUpdate;
    this.#faults = new NanLossInjection(options.nanLossAtStep ?? null);
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
      throw new CheckpointError(`checkpoint evaluation state is invalid: ${(cause as Error).message}`, { cause });
    }
    let trainedThrough: TrainedThroughOffsets;
    try {
      trainedThrough = TrainedThroughOffsets.fromJSON(checkpoint.trainedThrough ?? {});
    } catch (cause) {
      model.optimizer.dispose();
      model.dispose();
      throw new CheckpointError(`checkpoint trainedThrough is invalid: ${(cause as Error).message}`, { cause });
    }
    return new PrequentialLearner(model, network, options, evaluator, checkpoint.modelVersion, checkpoint.rowsSeen, trainedThrough);
  }

  /** Labelled rows per optimiser step, unless a call says otherwise (see StepOptions). */
  get trainBatchSize(): number {
    return this.#trainBatchSize;
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
  process(batch: RecordBatch, options: StepOptions = {}): Promise<ProcessResult> {
    const stepRows = this.#stepRows(options);
    return this.#serial(() => this.#process(batch, stepRows));
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
  retrain(batch: RecordBatch, options: StepOptions = {}): Promise<{ trainedRows: number }> {
    const stepRows = this.#stepRows(options);
    return this.#serial(async () => {
      const tokens = this.#tokens(batch);
      const { rows: labelled, labels } = labelledRows(batch);
      this.#rowsSeen += batch.numRows;
      const { trainedRows } = await this.#train(batch, tokens, labelled, labels, stepRows);
      this.#trainedThrough.note(batch);
      return { trainedRows };
    });
  }

  /** The last offset of a source's partition this model has learnt from, or null. */
  trainedThrough(source: string, partition: number): bigint | null {
    return this.#trainedThrough.get(source, partition);
  }

  evaluation(): EvaluationSnapshot {
    return this.#evaluator.snapshot();
  }

  /** Everything a checkpoint needs; the tokenizer is the caller's, stored verbatim. */
  checkpointState(tokenizer: unknown): Promise<CheckpointState> {
    return this.#serial(async () => {
      const artifacts = await captureArtifacts(this.#model);
      return {
        artifacts,
        network: this.network,
        modelVersion: this.#version,
        rowsSeen: this.#rowsSeen,
        tokenizer,
        evaluation: this.#evaluator.toJSON(),
        adamPowers: readAdamPowers(this.#model.optimizer),
        trainedThrough: this.#trainedThrough.toJSON(),
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
      replaceModelWeights(this.#model, weights);
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
    if (this.#disposed) return Promise.reject(new ModelError('learner is disposed'));
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #stepRows(options: StepOptions): number {
    if (options.trainBatchSize === undefined) return this.#trainBatchSize;
    validateOptions({ trainBatchSize: options.trainBatchSize });
    return options.trainBatchSize;
  }

  async #process(batch: RecordBatch, stepRows: number): Promise<ProcessResult> {
    const rows = batch.numRows;
    const tokens = this.#tokens(batch);
    const { rows: labelled, labels } = labelledRows(batch);
    const modelVersion = this.#version;
    // Unlabelled rows are scored by the model as it stands before the batch; each labelled
    // row by the forward pass of the step that trains on it (see #train).
    const scores = labelled.length === rows ? new Float32Array(rows) : this.#scoreUnlabelled(tokens, rows, labelled);
    this.#rowsSeen += rows;
    const { steps, trainedRows, rejectedSteps, lossSum } = await this.#train(batch, tokens, labelled, labels, stepRows, scores);
    this.#evaluator.observe(scores, labelled, labels);
    this.#trainedThrough.note(batch);
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
    stepRows: number,
    scores?: Float32Array,
  ): Promise<{ steps: number; trainedRows: number; rejectedSteps: number; lossSum: number }> {
    let lossSum = 0;
    let steps = 0;
    let trainedRows = 0;
    let rejectedSteps = 0;
    const maxLen = this.network.maxLen;
    // Only when some rows are unlabelled do the labelled ones need packing together.
    const source = labelled.length === batch.numRows ? tokens : packRows(tokens, labelled, maxLen);
    for (let start = 0; start < labelled.length; start += stepRows) {
      const n = Math.min(stepRows, labelled.length - start);
      const step = guardedTrainStep(this.#model, source.subarray(start * maxLen, (start + n) * maxLen), labels.subarray(start, start + n), n, {
        maxLen,
        clipNorm: this.#clipNorm,
        poisoned: this.#faults.nextStepPoisoned(),
      });
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

  #tokens(batch: RecordBatch): Int32Array {
    const tokens = tokenMatrix(batch);
    const { maxLen, vocabSize } = this.network;
    if (tokens.length !== batch.numRows * maxLen) {
      throw new InputError(
        `batch has ${tokens.length / Math.max(1, batch.numRows)} tokens per row, the model expects maxLen ${maxLen}`,
      );
    }
    // tfjs would fail deep inside Gather (or, on some backends, read out of bounds).
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t < 0 || t >= vocabSize) {
        const row = Math.floor(i / maxLen);
        throw new InputError(
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
