import { open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ParquetSourceConfig, PipelineConfig } from '../config/schema.js';
import { buildSpamAssassinDataset } from '../datasets/spamassassin.js';
import { ConfigError } from '../errors.js';
import type { MetricsServer } from '../metrics/server.js';
import type { BackendInfo } from '../model/backend.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import type { PrequentialLearner } from '../model/learner.js';
import { DeadLetterFileSink, dropDeadLettersOf, lastDeadLetterOffset, LEGACY_DEAD_LETTER_FILE, splitDeadLetters } from '../sinks/dead-letter-file.js';
import { ParquetSink } from '../sinks/parquet.js';
import { legacyPartitionDirectory, partitionDirectory, type ParquetLayout } from '../sinks/parquet-layout.js';
import { recoverPartitionOutput } from '../sinks/parquet-recovery.js';
import { ParquetSource } from '../sources/parquet.js';
import { ensureSinkDir, makeMetricsParts, makeModelParts, makeStageParts } from './components.js';
import { runPipeline, type PipelineProgress, type RunSummary } from './pipeline.js';
import { adoptLegacyCheckpoint, checkpointRoot, deadLetterPath as deadLetterPathOf } from './run-state.js';

export interface ReplayOptions {
  /** Replay this file instead of `source.path`. */
  input?: string | null;
  /** Stop after this many records. */
  limit?: number | null;
  /** Start from the input's latest checkpoint (weights, optimizer, vocabulary; see run-state.ts). */
  resume?: boolean;
  /** Start from this checkpoint instead: another input's, to go on learning on this one. */
  resumeFrom?: string | null;
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
  /** True when this run built the input from `source.dataset` because `source.path` did not exist. */
  datasetBuilt: boolean;
  /** `--resume` of an input the checkpoint had learnt part of: the first row this run read; null: from the start. */
  resumedAtRow: number | null;
  deadLetterPath: string;
  checkpointDir: string | null;
}

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
  const datasetBuilt = await ensureInput(sourceConfig, input, opts.input != null, logger);

  await ensureSinkDir(config.sink.dir);
  // The source's name in positions and paths (ParquetSource's default).
  const name = path.basename(input);
  const layout = { dir: config.sink.dir, pipeline: config.name };
  const deadLetterPath = deadLetterPathOf(config, name);
  const root = checkpointRoot(config, name);
  await moveLegacyState(config, layout, name, root, logger);
  const resumeFrom = opts.resumeFrom ?? null;
  // `from`, when given, is loaded instead of the root's latest (see makeModelParts).
  const model = await makeModelParts(config, logger, { root, resume: opts.resume ? 'required' : 'never', from: resumeFrom });
  const { backend, learner } = model;
  let server: MetricsServer | null = null;
  const resume = opts.resume || resumeFrom !== null ? await resumePoint(learner, layout, name, deadLetterPath) : null;
  if (resume === null) {
    // A replay regenerates its input's whole output; files left by an earlier run of the
    // same input (possibly with other offset ranges) would otherwise sit beside the new
    // ones. Other inputs' files and letters stay.
    await rm(path.dirname(partitionDirectory(layout, name, 0)), { recursive: true, force: true });
    await rm(path.dirname(legacyPartitionDirectory(layout, 'file', name, 0)), { recursive: true, force: true });
    await dropDeadLettersOf(deadLetterPath, name);
  } else {
    logger.info(resume, `resuming ${name} at row ${resume.fromRow}, the first the checkpoint has not learnt`);
  }
  const source = await ParquetSource.open({
    path: input,
    name,
    columns: sourceConfig.columns,
    batchRows: sourceConfig.batchRows,
    ...(resume === null ? {} : { resume }),
  });
  // A failing disk is retried (see ParquetSink) until the run is interrupted.
  const sink = new ParquetSink({ ...layout, rotateRows: config.sink.rotateRows, compression: config.sink.compression, includeText: config.sink.includeText, signal: opts.signal });
  const deadLetters = new DeadLetterFileSink({ path: deadLetterPath });

  try {
    const metricsParts = await makeMetricsParts(config, model, logger);
    server = metricsParts.server;
    const limit = opts.limit ?? null;
    opts.onStart?.({ total: limit === null ? source.remaining : Math.min(limit, source.remaining), backend, metricsUrl: server?.url ?? null });
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
      datasetBuilt,
      resumedAtRow: resume?.fromRow ?? null,
      deadLetterPath,
      // Only when this run saved one: the summary must not point at an older run's model.
      checkpointDir: saved === null ? null : root,
    };
  } finally {
    await source.close();
    await deadLetters.close();
    await sink.close();
    await server?.close();
    learner.dispose();
  }
}

/**
 * Where `--resume` continues in its input: at the first row the checkpoint has not learnt,
 * keeping the output and dead letters written before. Rows written after the checkpoint
 * (a crash between publishing files and saving it) are read to be learnt again, never
 * written twice: new rows start after the last valid file on disk (recovered first, as a
 * Kafka worker does on assignment) and after the input's last dead letter. Null when the
 * checkpoint learnt nothing of this input: the run starts over.
 */
async function resumePoint(
  learner: PrequentialLearner,
  layout: ParquetLayout,
  name: string,
  deadLetterPath: string,
): Promise<{ fromRow: number; newFromRow: number } | null> {
  const learnt = learner.trainedThrough(name, 0);
  if (learnt === null) return null;
  const onDisk = (await recoverPartitionOutput(layout, name, 0, { legacyKey: 'file' })).lastOffset;
  // Dead letters never reach the model: rows after the last one learnt may be letters already.
  const lettered = await lastDeadLetterOffset(deadLetterPath, name, 0);
  const lastDone = [onDisk, lettered].reduce<bigint>((max, o) => (o !== null && o > max ? o : max), learnt);
  return { fromRow: Number(learnt) + 1, newFromRow: Number(lastDone) + 1 };
}

/**
 * Moves what an earlier version left in the output folder, where it kept the folder from
 * opening as a dataset, to where this version keeps it: the shared dead-letter file's
 * letters to one file per input, and a checkpoint of this input to its own root.
 */
async function moveLegacyState(config: Readonly<PipelineConfig>, layout: ParquetLayout, input: string, root: string | null, logger: Logger): Promise<void> {
  const legacyLetters = path.join(layout.dir, layout.pipeline, LEGACY_DEAD_LETTER_FILE);
  if (config.deadLetter.path === null && (await stat(legacyLetters).catch(() => null)) !== null) {
    const files = await splitDeadLetters(legacyLetters, (source) => deadLetterPathOf(config, source ?? 'unreadable'));
    logger.warn({ from: legacyLetters, to: files }, `moved the letters of ${LEGACY_DEAD_LETTER_FILE} to one file per input`);
  }
  if (root !== null) await adoptLegacyCheckpoint(config, root, input, logger);
}

/**
 * The bundled dataset is built on first use; any other missing input, a folder or a file
 * that is not Parquet is a usage error naming where the path came from.
 */
async function ensureInput(source: ParquetSourceConfig, input: string, fromCommandLine: boolean, logger: Logger): Promise<boolean> {
  const field = fromCommandLine ? '--input' : 'source.path';
  const info = await stat(input).catch(() => null);
  if (info === null) {
    if (source.dataset === 'spamassassin' && !fromCommandLine) {
      // A warning, and a line in the summary: a mistyped path in a copy of the example
      // pipeline would otherwise replay the corpus in place of the user's data, unnoticed.
      logger.warn({ path: input }, `source.path ${input} does not exist: building the bundled SpamAssassin corpus there (source.dataset)`);
      const built = await buildSpamAssassinDataset({ out: input, seed: source.datasetSeed });
      logger.info({ path: input, rows: built.rows, spam: built.spam, ham: built.ham }, 'dataset ready');
      return true;
    }
    throw new ConfigError(field, `file not found: ${input}`);
  }
  if (!info.isFile()) throw new ConfigError(field, `${input} is a ${info.isDirectory() ? 'directory' : 'special file'}, not a Parquet file`);
  if (!(await startsWithParquetMagic(input))) throw new ConfigError(field, `${input} is not a Parquet file (it does not start with PAR1)`);
  return false;
}

async function startsWithParquetMagic(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.toString('latin1') === 'PAR1';
  } finally {
    await handle.close();
  }
}
