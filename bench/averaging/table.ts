/** The averaging bench's result and its markdown rendering. */
import type { BackendInfo } from '../../src/model/backend.js';
import type { ReplayCheck } from './replay-check.js';
import { CURVE_ROWS, type AveragingRun } from './simulate.js';

export interface AveragingBenchResult {
  pipeline: string;
  input: string;
  /** Messages in the stream (after cleaning). */
  rows: number;
  dropped: number;
  bootstrapRows: number;
  partitions: number;
  batchRows: number;
  trainBatchSize: number;
  learningRate: number;
  seed: number;
  backend: BackendInfo;
  lstm: 'fused' | 'stock';
  /** Read, clean, fit the vocabulary, tokenize: once, shared by every run. */
  prepareSeconds: number;
  /** `textstream replay` of the same pipeline; a string says why it did not run. */
  replay: ReplayCheck | string;
  /** The one-trainer run first, then the others in the order asked for. */
  runs: AveragingRun[];
}

const percent = (x: number | null): string => (x === null ? '—' : `${(100 * x).toFixed(2)} %`);
const points = (x: number | null, base: number | null): string => {
  if (x === null || base === null) return '—';
  const d = 100 * (x - base);
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(2)}`;
};
const fixed = (x: number | null, digits: number): string => (x === null ? '—' : x.toFixed(digits));
const count = (x: number): string => x.toLocaleString('en-US');

/** Rows in one batch of every trainer together. */
const roundRows = (run: AveragingRun): number => run.batchSizes.reduce((sum, b) => sum + b.maxRows, 0);
/** Averages closer together than one batch per trainer: see the † note. */
const handsOff = (run: AveragingRun): boolean => run.averageEvery !== null && run.averageEvery < roundRows(run);
/** "128 / 16": a trainer's record batch and optimiser step (the first trainer's when they differ, marked ≈). */
const sizes = (run: AveragingRun): string => {
  const [first] = run.batchSizes;
  const same = run.batchSizes.every((b) => b.maxRows === first!.maxRows && b.trainBatchSize === first!.trainBatchSize);
  return `${same ? '' : '≈ '}${first!.maxRows} / ${first!.trainBatchSize}`;
};
const batching = (run: AveragingRun): string => (run.splitBatch === null ? 'whole' : run.splitBatch ? 'split' : 'whole');

export function renderAveragingTable(r: AveragingBenchResult): string {
  const base = r.runs[0]!;
  const lines = [
    `# Federated averaging: 1 vs N trainers on the corpus (prequential, same order)`,
    '',
    `${r.pipeline}: ${count(r.rows)} messages from ${r.input} (${count(r.dropped)} dropped by decode or cleaning), ` +
      `vocabulary fitted on the first ${count(r.bootstrapRows)}; one trainer's record batch ${r.batchRows} rows, ` +
      `optimiser step ${r.trainBatchSize} rows, Adam learning rate ${r.learningRate}, seed ${r.seed}; ` +
      `backend ${r.backend.name}${r.backend.simd === true ? ' (SIMD)' : ''}, ${r.lstm} LSTM. ` +
      `Record i → partition i mod ${r.partitions} → trainer (partition mod N). ` +
      `Preparation (read, clean, tokenize; not in the wall times) ${r.prepareSeconds.toFixed(1)} s.`,
    '',
    '| trainers | batches | batch / step rows per trainer | average every (rows) | server lr η | server momentum β | averages | accuracy | Δ vs 1 trainer (points) | 2nd-half accuracy | Δ 2nd half (points) | AUC | log loss | wall time (s) | averaging (s) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.runs.map((run) => {
      const e = run.evaluation;
      const cells = [
        run.trainers,
        run.trainers === 1 ? '—' : batching(run),
        sizes(run),
        run.averageEvery === null ? '—' : `${count(run.averageEvery)}${handsOff(run) ? ' †' : ''}`,
        run.serverLearningRate === null ? '—' : String(run.serverLearningRate),
        run.serverMomentum === null ? '—' : String(run.serverMomentum),
        run.averages,
        percent(e.accuracy),
        run === base ? '—' : points(e.accuracy, base.evaluation.accuracy),
        percent(run.secondHalf.accuracy),
        run === base ? '—' : points(run.secondHalf.accuracy, base.secondHalf.accuracy),
        fixed(e.auc, 4),
        fixed(e.logLoss, 4),
        run.seconds.toFixed(1),
        run.averages === 0 ? '—' : run.averagingSeconds.toFixed(2),
      ];
      return `| ${cells.join(' | ')} |`;
    }),
    '',
  ];
  const windows = base.curve.length;
  const setting = (run: AveragingRun): string =>
    run.trainers === 1
      ? '1'
      : `${run.trainers}, ${batching(run)}, every ${count(run.averageEvery!)}, η ${run.serverLearningRate}, β ${run.serverMomentum}`;
  lines.push(
    `Learning curve: accuracy per ${count(CURVE_ROWS)} rows of the stream.`,
    '',
    `| trainers, batches, average every, η, β | ${Array.from({ length: windows }, (_, w) => `rows ${count(w * CURVE_ROWS)}–${count(Math.min(r.rows, (w + 1) * CURVE_ROWS) - 1)}`).join(' | ')} |`,
    `|---|${'---:|'.repeat(windows)}`,
    ...r.runs.map((run) => `| ${setting(run)} | ${run.curve.map((e) => percent(e.accuracy)).join(' | ')} |`),
    '',
  );
  if (typeof r.replay === 'string') {
    lines.push(`Replay check skipped: ${r.replay}`);
  } else {
    const e = r.replay.evaluation;
    lines.push(
      `Replay check (\`textstream replay ${r.pipeline}\`, in process): accuracy ${percent(e.accuracy)}, AUC ${fixed(e.auc, 4)}, ` +
        `log loss ${fixed(e.logLoss, 4)} on ${count(e.count)} labelled rows, model version ${r.replay.modelVersion}, ` +
        `${r.replay.seconds.toFixed(1)} s end to end; the one-trainer row differs by ${points(base.evaluation.accuracy, e.accuracy)} points.`,
    );
  }
  const handOff = r.runs.find(handsOff);
  if (handOff !== undefined) {
    lines.push(
      '',
      `† Shorter than one batch of every trainer (${count(roundRows(handOff))} rows with ${handOff.trainers} trainers, ${batching(handOff)} batches): an average can come ` +
        'after only some trainers trained, and the others then start their next batch from those weights. Trainers take turns ' +
        'here, so that is a hand-off of one model from trainer to trainer (sequential training, one Adam state per trainer), ' +
        'which workers training side by side cannot do: read such a row as a bound, not as the cost of averaging.',
    );
  }
  const rejected = r.runs.reduce((sum, run) => sum + run.rejectedSteps, 0);
  lines.push(
    '',
    'Batches: split, each trainer takes its share of one trainer\'s record batch and optimiser step, by its share of the partitions, ' +
      'as the product\'s averaging trainers do (src/runtime/split-batch.ts); whole, each takes one trainer\'s sizes, which makes N trainers ' +
      'take 1/N of the optimiser steps per row of the stream. ' +
      'Accuracy, AUC and log loss: over every labelled message, each scored by the trainer that owns it before that trainer trained on it. ' +
      '2nd half: the same over the second half of the stream only. Wall time: batch, score, train and average in one process, ' +
      'trainers taking turns: the compute of all trainers together (N workers side by side would share it), no transport; ' +
      'averaging: reading, averaging and writing back the weights, in process (over Kafka each trainer also sends and reads snapshots). ' +
      'Server lr η and momentum β: each average sets the model to base + η·v, v = β·v_prev + Δ, Δ the trainers\' row-weighted ' +
      'mean update since the base (the last average); η 1, β 0 is plain FedAvg (federatedUpdate in src/model/averaging.ts).' +
      (rejected > 0 ? ` Training steps rejected (NaN guard): ${rejected}.` : ''),
    '',
  );
  return lines.join('\n');
}
