/**
 * The whole pipeline end to end, in process: `replay()` of the corpus file with the
 * shipped pipeline definition (decode → clean → tokenize with a bootstrap-fitted
 * vocabulary → batch → model → Parquet), once scoring only and once scoring and training.
 *
 * Score only is the same pipeline with no label column mapped (`source.columns.label:
 * null`): every row is unlabelled, so the learner scores and never trains, as a scorer
 * role would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { PipelineConfig } from '../src/config/schema.js';
import type { BackendName } from '../src/model/backend.js';
import { replay } from '../src/runtime/replay.js';
import { withCpu } from './cpu.js';
import { reasonOf } from './result.js';
import { measuredWorkerRow, skippedWorkerRow, Workloads, type WorkerMeasure, type WorkerRow } from './worker-rows.js';

export const ReplayModes = { SCORE: 'score only', SCORE_AND_TRAIN: 'score + train' } as const;
export type ReplayMode = (typeof ReplayModes)[keyof typeof ReplayModes];

const workloadOf = (mode: ReplayMode) => (mode === ReplayModes.SCORE ? Workloads.REPLAY_SCORE : Workloads.REPLAY_SCORE_AND_TRAIN);

export interface ReplayBenchOptions {
  /**
   * The pipeline definition (pipelines/spamassassin.yaml, loaded with the clean.threads
   * setting in its environment); paths and side effects are overridden.
   */
  config: Readonly<PipelineConfig>;
  /** The clean.threads setting `config` was loaded with (0 = main thread), for the row. */
  cleanThreads: number;
  input: string;
  backend: BackendName;
  rows: number | null;
  reps: number;
}

/** The pipeline as shipped, writing into `dir`, without metrics server or checkpoints. */
function benchConfig(opts: ReplayBenchOptions, mode: ReplayMode, dir: string): PipelineConfig {
  const base = opts.config;
  if (base.source.type !== 'parquet') throw new Error(`the bench replays a parquet source, ${base.name} has ${base.source.type}`);
  const label = mode === ReplayModes.SCORE ? null : base.source.columns.label;
  return {
    ...base,
    source: { ...base.source, path: opts.input, columns: { ...base.source.columns, label } },
    model: { ...base.model, backend: opts.backend, checkpoints: false },
    sink: { ...base.sink, dir: path.join(dir, 'out') },
    deadLetter: { ...base.deadLetter, path: path.join(dir, 'dead-letters.jsonl') },
    metrics: { ...base.metrics, enabled: false },
  };
}

/** rows/s of whole replays (rows in over the replay's own seconds) and the process's CPU share during each. */
export async function measureReplay(opts: ReplayBenchOptions, mode: ReplayMode): Promise<WorkerRow> {
  const workload = workloadOf(mode);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-replay-'));
  const logger = pino({ level: 'warn' });
  try {
    const config = benchConfig(opts, mode, dir);
    const measures: WorkerMeasure[] = [];
    let trained = 0;
    let rowsIn = 0;
    for (let rep = 0; rep < opts.reps; rep++) {
      // Each run starts from a fresh model and vocabulary, as a new replay would.
      const { result: summary, cpu } = await withCpu(() => replay(config, { limit: opts.rows, logger, signal: new AbortController().signal }));
      measures.push({ rate: summary.rowsIn / summary.seconds, cpu });
      trained = summary.rowsTrained;
      rowsIn = summary.rowsIn;
    }
    const note = `pipelines/${config.name}.yaml, batch ${config.batch.maxRows}, vocabulary fitted on the first ${Math.min(config.tokenizer.bootstrapRows, rowsIn)} rows; trained ${trained} rows`;
    return measuredWorkerRow(workload, opts.cleanThreads, 'rows/s', measures, { note });
  } catch (err) {
    return skippedWorkerRow(workload, opts.cleanThreads, 'rows/s', reasonOf(err));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
