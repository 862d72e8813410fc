/**
 * Averaging trainers (`snapshots.average`) split one trainer's batches between them, by
 * the share of the topic's partitions each reads: a trainer with k of P partitions closes
 * record batches at ⌈batch.maxRows·k/P⌉ rows and takes optimiser steps of
 * ⌈model.trainBatchSize·k/P⌉ rows.
 *
 * Why: each trainer then takes as many optimiser steps per row of the whole stream as one
 * trainer reading every partition would, and their average moves the model about as far
 * per row as that one trainer's steps (the global batch stays one trainer's, as in
 * synchronous data-parallel training). With whole batches each, N trainers take 1/N of the
 * steps per row, and averaging N steps that point the same way gives one step: on the
 * bundled corpus two such trainers learnt about 7 points of accuracy worse than one
 * (`npm run bench:averaging`).
 */
import { InputError } from '../errors.js';

export interface BatchSizes {
  /** Rows per record batch (batch.maxRows). */
  maxRows: number;
  /** Rows per optimiser step (model.trainBatchSize). */
  trainBatchSize: number;
}

export function splitBatch(whole: Readonly<BatchSizes>, assignedPartitions: number, topicPartitions: number): BatchSizes {
  if (!Number.isInteger(topicPartitions) || topicPartitions <= 0) throw new InputError(`topicPartitions must be a positive integer, got ${topicPartitions}`);
  if (!Number.isInteger(assignedPartitions) || assignedPartitions < 0 || assignedPartitions > topicPartitions) {
    throw new InputError(`assignedPartitions must be an integer in 0…${topicPartitions}, got ${assignedPartitions}`);
  }
  // No partitions: nothing arrives, and the whole sizes are as good as any.
  if (assignedPartitions === 0) return { ...whole };
  const share = (n: number): number => Math.max(1, Math.ceil((n * assignedPartitions) / topicPartitions));
  return { maxRows: share(whole.maxRows), trainBatchSize: share(whole.trainBatchSize) };
}
