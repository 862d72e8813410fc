/**
 * One configuration of the averaging bench: N trainers learning prequentially on their
 * share of one stream, in one process, meeting every `averageEvery` trained rows for a
 * federated average (src/model/averaging.ts), as Kafka workers meeting on the snapshot
 * topic would, minus the transport.
 *
 * - Trainer of a record: its partition mod N (a consumer group's round-robin assignment
 *   of partitions 0…P−1 to N members).
 * - Batch sizes: with `splitBatch`, each trainer's share of one trainer's record batch and
 *   optimiser step, by its share of the partitions (src/runtime/split-batch.ts), as the
 *   product's averaging trainers take them; without, one trainer's whole sizes each.
 * - Each trainer batches its own records (the pipeline's BatchBuilder, `batch.maxRows`)
 *   and runs a batch (score, then train) the moment it fills, so batches of all trainers
 *   run interleaved in stream order; at the end of the stream the part-filled batches run
 *   in the order of their last record. Age-based flushing (`batch.maxAgeMs`) is left out:
 *   it depends on wall time, and replay of this corpus never triggers it (its source
 *   batches of 512 rows fill batches of 256 exactly).
 * - Every score counts once, in one evaluator over all records, before the trainer that
 *   made it trains on the record; with one trainer that is exactly the learner's own
 *   evaluation, and replay's.
 * - An average: once the trainers together have trained `averageEvery` rows since the
 *   last one, each trainer's model weights are read (modelWeightsOf), averaged weighted by
 *   the rows it trained since the last average (federatedAverage), and written back to
 *   every trainer (applyAverage); Adam's state stays each trainer's own. With one trainer
 *   there is nothing to average.
 * - With a server learning rate η ≠ 1 or server momentum β > 0 the average is
 *   federatedUpdate's instead: base + η·v, v = β·v_prev + Δ, Δ the trainers' mean update
 *   since the base, the base being the model of the last average (at first the shared
 *   initial model), which every trainer started the round from.
 */
import type { RecordBatch } from 'apache-arrow';
import type { Logger } from 'pino';
import { BatchBuilder } from '../../src/batch/builder.js';
import type { PipelineConfig } from '../../src/config/schema.js';
import type { TokenizedMessage } from '../../src/message.js';
import { applyAverage, federatedAverage, federatedUpdate, modelWeightsOf, type ModelWeights } from '../../src/model/averaging.js';
import { OnlineEvaluator, type EvaluationSnapshot } from '../../src/model/evaluation.js';
import { labelledRows } from '../../src/model/labelled-rows.js';
import type { PrequentialLearner } from '../../src/model/learner.js';
import { makeModelParts, NO_CHECKPOINTS } from '../../src/runtime/components.js';
import { splitBatch, type BatchSizes } from '../../src/runtime/split-batch.js';

/** Rows of the stream per point of an AveragingRun's learning curve. */
export const CURVE_ROWS = 1024;

export interface AveragingRunOptions {
  config: Readonly<PipelineConfig>;
  messages: readonly TokenizedMessage[];
  /** Partitions of the simulated topic: record i is on partition i mod `partitions`. */
  partitions: number;
  trainers: number;
  /** Each trainer takes its share of one trainer's batch sizes (splitBatch); false: the whole sizes each. Ignored with one trainer. */
  splitBatch: boolean;
  /** Trained rows (all trainers together) between two averages; ignored with one trainer. */
  averageEvery: number;
  /** η of federatedUpdate; 1: plain FedAvg. Ignored with one trainer. */
  serverLearningRate: number;
  /** β of federatedUpdate; 0: none. Ignored with one trainer. */
  serverMomentum: number;
  logger: Logger;
}

export interface AveragingRun {
  trainers: number;
  /** null with one trainer. */
  averageEvery: number | null;
  /** null with one trainer. */
  serverLearningRate: number | null;
  serverMomentum: number | null;
  /** null with one trainer. */
  splitBatch: boolean | null;
  /** Record batch and optimiser step sizes, per trainer. */
  batchSizes: BatchSizes[];
  averages: number;
  rows: number;
  /** Over every labelled row, each scored before its trainer trained on it. */
  evaluation: EvaluationSnapshot;
  /** The same over the second half of the stream (rows ⌊n/2⌋ on), once the models have warmed up. */
  secondHalf: EvaluationSnapshot;
  /** The same per window of CURVE_ROWS rows of the stream (rows 0…1023, 1024…2047, …): the learning curve. */
  curve: EvaluationSnapshot[];
  /** Batches per trainer. */
  batches: number[];
  /** Optimiser steps applied, and rejected (NaN guard), over all trainers. */
  trainSteps: number;
  rejectedSteps: number;
  /** The whole model loop: batch build, score, train, averaging. */
  seconds: number;
  /** Of which reading, averaging and writing back weights. */
  averagingSeconds: number;
  lstm: 'fused' | 'stock';
}

interface Trainer {
  learner: PrequentialLearner;
  builder: BatchBuilder;
  /** Stream index of every row buffered in `builder`, in the same order. */
  pending: number[];
  rowsSinceAverage: number;
  batches: number;
}

export async function runAveraging(opts: AveragingRunOptions): Promise<AveragingRun> {
  const { config, messages } = opts;
  const n = opts.trainers;
  const trainers: Trainer[] = [];
  const whole = { maxRows: config.batch.maxRows, trainBatchSize: config.model.trainBatchSize };
  const batchSizes = Array.from({ length: n }, (_, k) => {
    const owned = Array.from({ length: opts.partitions }, (_, p) => p).filter((p) => p % n === k).length;
    return n > 1 && opts.splitBatch ? splitBatch(whole, owned, opts.partitions) : whole;
  });
  try {
    for (let k = 0; k < n; k++) {
      // The product's model construction (network from the config, seed, train batch,
      // model.initialModel); its vocabulary is not used (the stream is tokenized already).
      const sizes = batchSizes[k]!;
      const parts = await makeModelParts(
        { ...config, model: { ...config.model, trainBatchSize: sizes.trainBatchSize } },
        opts.logger,
        NO_CHECKPOINTS,
      );
      trainers.push({
        learner: parts.learner,
        builder: new BatchBuilder({ maxLen: config.tokenizer.maxLen, maxRows: sizes.maxRows, maxAgeMs: config.batch.maxAgeMs }),
        pending: [],
        rowsSinceAverage: 0,
        batches: 0,
      });
    }
    // FedAvg needs one starting point. The shared model.seed gives it already; copying
    // trainer 0's weights makes it so whatever the seed (null draws a fresh one per model).
    const initial = modelWeightsOf(trainers[0]!.learner);
    for (const t of trainers.slice(1)) await applyAverage(t.learner, initial);
    // What every trainer started the current round from, and the server's momentum.
    let base: ModelWeights = initial;
    let velocity: ModelWeights | null = null;
    const plain = opts.serverLearningRate === 1 && opts.serverMomentum === 0;

    const overall = new OnlineEvaluator();
    const secondHalf = new OnlineEvaluator();
    const half = Math.floor(messages.length / 2);
    const curve = Array.from({ length: Math.ceil(messages.length / CURVE_ROWS) }, () => new OnlineEvaluator());
    let averages = 0;
    let averagingMs = 0;
    let trainSteps = 0;
    let sinceAverage = 0;
    const started = performance.now();

    const average = async (): Promise<void> => {
      const at = performance.now();
      const inputs = trainers.map((t) => ({ weights: modelWeightsOf(t.learner), rows: t.rowsSinceAverage }));
      let averaged: ModelWeights;
      if (plain) {
        averaged = federatedAverage(inputs);
      } else {
        const update = federatedUpdate(base, inputs, { serverLearningRate: opts.serverLearningRate, serverMomentum: opts.serverMomentum, velocity });
        averaged = update.weights;
        velocity = update.velocity;
      }
      base = averaged;
      for (const t of trainers) {
        await applyAverage(t.learner, averaged);
        t.rowsSinceAverage = 0;
      }
      sinceAverage = 0;
      averages++;
      averagingMs += performance.now() - at;
    };

    const run = async (t: Trainer, batch: RecordBatch, indices: readonly number[]): Promise<void> => {
      const result = await t.learner.process(batch);
      t.batches++;
      trainSteps += result.trainSteps;
      const { rows, labels } = labelledRows(batch);
      overall.observe(result.scores, rows, labels);
      // The labelled rows whose place in the stream `keep` accepts.
      const observeWhere = (evaluator: OnlineEvaluator, keep: (streamIndex: number) => boolean): void => {
        const kept: number[] = [];
        const keptLabels: number[] = [];
        rows.forEach((r, k) => {
          if (!keep(indices[r]!)) return;
          kept.push(r);
          keptLabels.push(labels[k]!);
        });
        if (kept.length > 0) evaluator.observe(result.scores, kept, keptLabels);
      };
      observeWhere(secondHalf, (i) => i >= half);
      curve.forEach((evaluator, w) => observeWhere(evaluator, (i) => Math.floor(i / CURVE_ROWS) === w));
      t.rowsSinceAverage += result.trainedRows;
      sinceAverage += result.trainedRows;
      if (n > 1 && sinceAverage >= opts.averageEvery) await average();
    };

    for (const [index, message] of messages.entries()) {
      const t = trainers[message.position.partition % n]!;
      t.pending.push(index);
      // A constant clock: batches close on size only (see the file comment).
      const full = t.builder.push(message, 0);
      if (full) {
        const indices = t.pending;
        t.pending = [];
        await run(t, full, indices);
      }
    }
    const rest = trainers.filter((t) => t.pending.length > 0).sort((a, b) => a.pending.at(-1)! - b.pending.at(-1)!);
    for (const t of rest) {
      const indices = t.pending;
      t.pending = [];
      await run(t, t.builder.flush()!, indices);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      trainers: n,
      averageEvery: n > 1 ? opts.averageEvery : null,
      serverLearningRate: n > 1 ? opts.serverLearningRate : null,
      serverMomentum: n > 1 ? opts.serverMomentum : null,
      splitBatch: n > 1 ? opts.splitBatch : null,
      batchSizes,
      averages,
      rows: messages.length,
      evaluation: overall.snapshot(),
      secondHalf: secondHalf.snapshot(),
      curve: curve.map((e) => e.snapshot()),
      batches: trainers.map((t) => t.batches),
      trainSteps,
      rejectedSteps: trainers.reduce((sum, t) => sum + t.learner.rejectedUpdates, 0),
      seconds,
      averagingSeconds: averagingMs / 1000,
      lstm: trainers[0]!.learner.lstm,
    };
  } finally {
    for (const t of trainers) t.learner.dispose();
  }
}
