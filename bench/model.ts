/**
 * The model stages through the learner the pipeline uses (PrequentialLearner), on the
 * corpus' own token sequences: scored samples/s at batch 32 and 256, trained samples/s at
 * the pipeline's train batch (32). Going through the learner, not a bare tfjs model,
 * means whatever LSTM implementation the learner runs is what gets measured.
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

export const ModelRows = {
  score: (batch: number, lstm: string) => `score batch ${batch} [${lstm}]`,
  train: (batch: number, lstm: string) => `train batch ${batch} [${lstm}]`,
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
  const names = [...SCORE_BATCHES.map((b) => ModelRows.score(b, variant.label)), ModelRows.train(trainBatch, variant.label)];
  let learner: PrequentialLearner;
  try {
    learner = PrequentialLearner.create({ network: variant.network, trainBatchSize: trainBatch });
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
    const trainRuns = await measureTrain(learner, cyclicBatches(messages, trainBatch, maxLen), opts);
    rows.push(
      measuredRow(ModelRows.train(trainBatch, variant.label), 'samples/s', trainRuns, 'one optimiser step per batch: learner.process − learner.score'),
    );
    return { rows, lstm: learner.lstm };
  } catch (err) {
    const reason = reasonOf(err);
    return { rows: names.map((n) => skippedRow(n, 'samples/s', reason)), lstm: 'not run' };
  } finally {
    learner.dispose();
  }
}

/**
 * Trained samples/s. The learner has no train-only call: `process` scores a batch, then
 * trains on it (prequential). So each fully labelled batch is scored alone and then
 * processed, and the training time is the difference of the two sums, measured on the
 * same batches in the same window (a later window would see different machine load).
 */
async function measureTrain(learner: PrequentialLearner, batches: readonly RecordBatch[], opts: ModelOptions): Promise<number[]> {
  let i = 0;
  // Warm-up: the first step allocates Adam's slots and compiles the backward kernels.
  for (let w = 0; w < 2; w++) await learner.process(batches[i++ % batches.length]!);
  const rates: number[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    const start = performance.now();
    let scoreMs = 0;
    let processMs = 0;
    let trained = 0;
    do {
      const batch = batches[i++ % batches.length]!;
      const t0 = performance.now();
      await learner.score(batch);
      const t1 = performance.now();
      trained += (await learner.process(batch)).trainedRows;
      processMs += performance.now() - t1;
      scoreMs += t1 - t0;
    } while (performance.now() - start < opts.seconds * 1000);
    rates.push(trained / ((processMs - scoreMs) / 1000));
  }
  return rates;
}
