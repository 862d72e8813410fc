/**
 * The model stages through the learner the pipeline uses (PrequentialLearner), on the
 * corpus' own token sequences: scored samples/s at batch 32 and 256, trained samples/s at
 * the pipeline's train batch (32), and `learner.process` on labelled record batches of 256
 * (each 32-row step scored, then trained: what a replay's model stage does). Going
 * through the learner, not a bare tfjs model, means whatever LSTM implementation the
 * learner runs is what gets measured.
 */
import type { RecordBatch } from 'apache-arrow';
import { BatchBuilder } from '../src/batch/builder.js';
import type { PipelineConfig } from '../src/config/schema.js';
import type { TokenizedMessage } from '../src/message.js';
import { PrequentialLearner } from '../src/model/learner.js';
import type { LstmVariant } from './lstm.js';
import { measuredRow, reasonOf, skippedRow, type Row } from './result.js';
import { measureRate } from './stats.js';

/** Score batch sizes reported for ours and for Keras' predict. */
export const SCORE_BATCHES = [32, 256] as const;
/** Rows per `learner.process` call measured: the pipeline's default record batch. */
export const PROCESS_BATCH = 256;

export const ModelRows = {
  score: (batch: number, lstm: string) => `score batch ${batch} [${lstm}]`,
  train: (batch: number, lstm: string) => `train batch ${batch} [${lstm}]`,
  process: (batch: number, step: number, lstm: string) => `process batch ${batch}, steps of ${step} [${lstm}]`,
} as const;

export interface ModelOptions {
  reps: number;
  seconds: number;
}

/**
 * Batches of exactly `size` rows, cycling through the corpus: every batch is full even
 * when `--rows` is smaller than the batch, and each row is used about equally often.
 */
export function cyclicBatches(messages: readonly TokenizedMessage[], size: number, maxLen: number): RecordBatch[] {
  const count = Math.max(1, Math.ceil(messages.length / size));
  const builder = new BatchBuilder({ maxLen, maxRows: size, maxAgeMs: Number.MAX_SAFE_INTEGER });
  const batches: RecordBatch[] = [];
  for (let k = 0; batches.length < count; k++) {
    const b = builder.push(messages[k % messages.length]!);
    if (b !== null) batches.push(b);
  }
  return batches;
}

export async function measureModel(
  variant: LstmVariant,
  messages: readonly TokenizedMessage[],
  config: Readonly<PipelineConfig>,
  opts: ModelOptions,
): Promise<{ rows: Row[]; lstm: string }> {
  const trainBatch = config.model.trainBatchSize;
  const names = [
    ...SCORE_BATCHES.map((b) => ModelRows.score(b, variant.label)),
    ModelRows.train(trainBatch, variant.label),
    ModelRows.process(PROCESS_BATCH, trainBatch, variant.label),
  ];
  let learner: PrequentialLearner;
  try {
    learner = PrequentialLearner.create({ network: variant.network, trainBatchSize: trainBatch, clipNorm: config.model.clipNorm });
  } catch (err) {
    const reason = reasonOf(err);
    return { rows: names.map((n) => skippedRow(n, 'samples/s', reason)), lstm: 'not run' };
  }
  try {
    const maxLen = learner.network.maxLen;
    const rows: Row[] = [];
    for (const size of SCORE_BATCHES) {
      const batches = cyclicBatches(messages, size, maxLen);
      let i = 0;
      const runs = await measureRate(
        async () => (await learner.score(batches[i++ % batches.length]!)).scores.length,
        { reps: opts.reps, seconds: opts.seconds, warmup: 2 },
      );
      rows.push(measuredRow(ModelRows.score(size, variant.label), 'samples/s', runs, 'learner.score (forward pass)'));
    }
    // A labelled batch of one step: process is then exactly one training step, whose
    // forward pass also gives the rows' scores.
    rows.push(
      measuredRow(
        ModelRows.train(trainBatch, variant.label),
        'samples/s',
        await measureProcess(learner, cyclicBatches(messages, trainBatch, maxLen), opts),
        'learner.process of one step (its forward pass is the score)',
      ),
    );
    rows.push(
      measuredRow(
        ModelRows.process(PROCESS_BATCH, trainBatch, variant.label),
        'samples/s',
        await measureProcess(learner, cyclicBatches(messages, PROCESS_BATCH, maxLen), opts),
        'learner.process: each step scored, then trained (score-then-train)',
      ),
    );
    return { rows, lstm: learner.lstm };
  } catch (err) {
    const reason = reasonOf(err);
    return { rows: names.map((n) => skippedRow(n, 'samples/s', reason)), lstm: 'not run' };
  } finally {
    learner.dispose();
  }
}

/** Rows per second through `learner.process` on fully labelled batches (score, then train). */
async function measureProcess(learner: PrequentialLearner, batches: readonly RecordBatch[], opts: ModelOptions): Promise<number[]> {
  let i = 0;
  // Warm-up: the first step allocates Adam's slots and compiles the backward kernels.
  return measureRate(async () => (await learner.process(batches[i++ % batches.length]!)).trainedRows, {
    reps: opts.reps,
    seconds: opts.seconds,
    warmup: 2,
  });
}
