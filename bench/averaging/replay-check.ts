/**
 * The reference the one-trainer row must reproduce: `textstream replay` of the same
 * pipeline, run in this process (the real replay(): source, decode, clean, bootstrap,
 * tokenize, batch, learner, Parquet sink), writing into a temporary folder, without
 * metrics server or checkpoint.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PipelineConfig } from '../../src/config/schema.js';
import type { EvaluationSnapshot } from '../../src/model/evaluation.js';
import { replay } from '../../src/runtime/replay.js';

export interface ReplayCheck {
  rowsIn: number;
  rowsTrained: number;
  deadLetters: number;
  modelVersion: number;
  evaluation: EvaluationSnapshot;
  /** Replay's own wall time, end to end (cleaning included). */
  seconds: number;
}

export async function replayCheck(config: Readonly<PipelineConfig>, input: string, rows: number | null, logger: Logger): Promise<ReplayCheck> {
  if (config.source.type !== 'parquet') throw new Error(`replay reads a parquet source; ${config.name} has ${config.source.type}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-averaging-'));
  try {
    const summary = await replay(
      {
        ...config,
        source: { ...config.source, path: input },
        model: { ...config.model, checkpoints: false },
        sink: { ...config.sink, dir: path.join(dir, 'out') },
        deadLetter: { ...config.deadLetter, path: path.join(dir, 'dead-letters.jsonl') },
        metrics: { ...config.metrics, enabled: false },
      },
      { limit: rows, logger, signal: new AbortController().signal },
    );
    return {
      rowsIn: summary.rowsIn,
      rowsTrained: summary.rowsTrained,
      deadLetters: summary.deadLetters,
      modelVersion: summary.modelVersion,
      evaluation: summary.evaluation,
      seconds: summary.seconds,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
