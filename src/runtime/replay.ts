import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ParquetSourceConfig, PipelineConfig } from '../config/schema.js';
import { buildSpamAssassinDataset } from '../datasets/spamassassin.js';
import { ConfigError } from '../errors.js';
import type { MetricsServer } from '../metrics/server.js';
import type { BackendInfo } from '../model/backend.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import { DEAD_LETTER_FILE, DeadLetterFileSink } from '../sinks/dead-letter-file.js';
import { ParquetSink, partitionDirectory } from '../sinks/parquet.js';
import { ParquetSource } from '../sources/parquet.js';
import { ensureSinkDir, makeMetricsParts, makeModelParts, makeStageParts } from './components.js';
import { runPipeline, type PipelineProgress, type RunSummary } from './pipeline.js';

export interface ReplayOptions {
  /** Replay this file instead of `source.path`. */
  input?: string | null;
  /** Stop after this many records. */
  limit?: number | null;
  /** Start from the latest checkpoint in `model.checkpointDir` (weights, optimizer, vocabulary). */
  resume?: boolean;
  logger: Logger;
  signal: AbortSignal;
  /** Called once the source is open and the model is ready, before the first record. */
  onStart?: (info: { total: number | null; backend: BackendInfo; metricsUrl: string | null }) => void;
  onProgress?: (progress: PipelineProgress, evaluation: EvaluationSnapshot) => void;
}

export interface ReplaySummary extends RunSummary {
  backend: BackendInfo;
  lstm: 'fused' | 'stock';
  evaluation: EvaluationSnapshot;
  input: string;
  deadLetterPath: string;
  checkpointDir: string | null;
}

/** Output files of a replay are named with this key: `<dir>/<name>/file=<input>/…`. */
export const REPLAY_PATH_PREFIX = 'file';

/**
 * Replays a Parquet dataset through the full pipeline. Shutdown runs in reverse data-flow
 * order: the pipeline drains (flushes the batcher, finishes Parquet files), then dead
 * letters are closed, the model is checkpointed, and the metrics server stops last.
 */
export async function replay(config: Readonly<PipelineConfig>, opts: ReplayOptions): Promise<ReplaySummary> {
  const { logger } = opts;
  const sourceConfig = config.source;
  if (sourceConfig.type !== 'parquet') {
    throw new ConfigError('source.type', `replay reads a parquet source, this pipeline has "${sourceConfig.type}" (use \`textstream run\`)`);
  }
  if (config.snapshots.topic !== null) logger.warn({ topic: config.snapshots.topic }, 'snapshots.topic is for Kafka workers (textstream run); replay publishes no snapshots');
  const input = opts.input ?? sourceConfig.path;
  await ensureInput(sourceConfig, input, opts.input != null, logger);

  await ensureSinkDir(config.sink.dir);
  const model = await makeModelParts(config, logger, opts.resume ? 'required' : 'never');
  const { backend, learner } = model;
  let server: MetricsServer | null = null;
  const source = await ParquetSource.open({
    path: input,
    columns: sourceConfig.columns,
    batchRows: sourceConfig.batchRows,
  });
  const layout = { dir: config.sink.dir, pipeline: config.name, prefix: REPLAY_PATH_PREFIX };
  // A replay regenerates its whole output; files left by an earlier run of the same input
  // (possibly with other offset ranges) would otherwise sit beside the new ones.
  await rm(path.dirname(partitionDirectory(layout, source.name, 0)), { recursive: true, force: true });
  const deadLetterPath = config.deadLetter.path ?? path.join(config.sink.dir, config.name, DEAD_LETTER_FILE);
  await rm(deadLetterPath, { force: true });
  // A failing disk is retried (see ParquetSink) until the run is interrupted.
  const sink = new ParquetSink({ ...layout, rotateRows: config.sink.rotateRows, compression: config.sink.compression, includeText: config.sink.includeText, signal: opts.signal });
  const deadLetters = new DeadLetterFileSink({ path: deadLetterPath });

  try {
    const metricsParts = await makeMetricsParts(config, model, logger);
    server = metricsParts.server;
    const limit = opts.limit ?? null;
    opts.onStart?.({ total: limit === null ? source.size : Math.min(limit, source.size), backend, metricsUrl: server?.url ?? null });
    const summary = await runPipeline({
      ...makeStageParts(config, model, metricsParts, opts.onProgress),
      source,
      sink,
      deadLetters,
      limit,
      signal: opts.signal,
    });
    await deadLetters.close();
    const saved = await model.checkpoint();
    return {
      ...summary,
      // The version after training on the last batch (the summary's is the one that scored it).
      modelVersion: learner.modelVersion,
      backend,
      lstm: learner.lstm,
      evaluation: learner.evaluation(),
      input,
      deadLetterPath,
      // Only when this run saved one: the summary must not point at an older run's model.
      checkpointDir: saved === null ? null : config.model.checkpointDir,
    };
  } finally {
    await source.close();
    await deadLetters.close();
    await sink.close();
    await server?.close();
    learner.dispose();
  }
}

/** The bundled dataset is built on first use; any other missing input is an error. */
async function ensureInput(source: ParquetSourceConfig, input: string, fromCommandLine: boolean, logger: Logger): Promise<void> {
  if (await exists(input)) return;
  if (source.dataset === 'spamassassin' && !fromCommandLine) {
    logger.info({ path: input }, 'building the SpamAssassin dataset (first run only)');
    const built = await buildSpamAssassinDataset({ out: input, seed: source.datasetSeed });
    logger.info({ path: input, rows: built.rows, spam: built.spam, ham: built.ham }, 'dataset ready');
    return;
  }
  throw new ConfigError(fromCommandLine ? '--input' : 'source.path', `file not found: ${input}`);
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
