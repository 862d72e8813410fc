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

export interface ReplaySetting {
  /** The clean.threads setting (0 = main thread). */
  cleanThreads: number;
  /**
   * The pipeline definition (pipelines/spamassassin.yaml) loaded with that setting in its
   * environment; null when this build cannot run it (the reason is `skipped`).
   */
  config: Readonly<PipelineConfig> | null;
  skipped?: string;
}

export interface ReplayBenchOptions {
  settings: readonly ReplaySetting[];
  input: string;
  backend: BackendName;
  rows: number | null;
  reps: number;
  log?: (line: string) => void;
}

/** The pipeline as shipped, writing into `dir`, without metrics server or checkpoints. */
function benchConfig(base: Readonly<PipelineConfig>, opts: ReplayBenchOptions, mode: ReplayMode, dir: string): PipelineConfig {
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

interface Series {
  measures: WorkerMeasure[];
  error: string | null;
  trained: number;
  rowsIn: number;
}

/**
 * rows/s of whole replays (rows in over the replay's own seconds) and the process's CPU
 * share during each, per mode and clean.threads setting. Repetitions alternate the
 * settings, so a change in the machine's other load does not fall on one series only.
 * Each run starts from a fresh model, vocabulary and output folder, as a new replay would.
 */
export async function measureReplays(opts: ReplayBenchOptions): Promise<WorkerRow[]> {
  const modes = [ReplayModes.SCORE, ReplayModes.SCORE_AND_TRAIN];
  const logger = pino({ level: 'warn' });
  const series = new Map<string, Series>();
  const key = (mode: ReplayMode, threads: number): string => `${mode}/${threads}`;
  const root = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-replay-'));
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const mode of modes) {
        for (const setting of opts.settings) {
          if (setting.config === null) continue;
          const s = series.get(key(mode, setting.cleanThreads)) ?? { measures: [], error: null, trained: 0, rowsIn: 0 };
          series.set(key(mode, setting.cleanThreads), s);
          if (s.error !== null) continue;
          opts.log?.(`replay end-to-end, ${mode}, clean.threads ${setting.cleanThreads}, run ${rep + 1}/${opts.reps}`);
          const dir = path.join(root, `${series.size}-${rep}`);
          try {
            const config = benchConfig(setting.config, opts, mode, dir);
            const { result: summary, cpu } = await withCpu(() => replay(config, { limit: opts.rows, logger, signal: new AbortController().signal }));
            s.measures.push({ rate: summary.rowsIn / summary.seconds, cpu });
            s.trained = summary.rowsTrained;
            s.rowsIn = summary.rowsIn;
          } catch (err) {
            s.error = reasonOf(err);
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return modes.flatMap((mode) =>
    opts.settings.map((setting) => {
      const workload = workloadOf(mode);
      const s = series.get(key(mode, setting.cleanThreads));
      if (setting.config === null || s === undefined) return skippedWorkerRow(workload, setting.cleanThreads, 'rows/s', setting.skipped ?? 'not run');
      if (s.error !== null) return skippedWorkerRow(workload, setting.cleanThreads, 'rows/s', s.error);
      const { config } = setting;
      const note = `pipelines/${config.name}.yaml, batch ${config.batch.maxRows}, vocabulary fitted on the first ${Math.min(config.tokenizer.bootstrapRows, s.rowsIn)} rows; trained ${s.trained} rows`;
      return measuredWorkerRow(workload, setting.cleanThreads, 'rows/s', s.measures, { note });
    }),
  );
}
