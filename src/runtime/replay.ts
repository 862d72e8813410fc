import { access, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { BatchBuilder } from '../batch/builder.js';
import type { PipelineConfig } from '../config/schema.js';
import { buildSpamAssassinDataset } from '../datasets/spamassassin.js';
import { ConfigError } from '../errors.js';
import { PipelineMetrics, type ModelState } from '../metrics/definitions.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { selectBackend, type BackendInfo } from '../model/backend.js';
import { loadLatestCheckpoint, saveCheckpoint } from '../model/checkpoint.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import { PrequentialLearner } from '../model/learner.js';
import { DeadLetterFileSink } from '../sinks/dead-letter-file.js';
import { ParquetSink, partitionDirectory } from '../sinks/parquet.js';
import { ParquetSource } from '../sources/parquet.js';
import { cleanEmail, cleanText } from '../text/clean.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { TokenizerJSON } from '../text/tokenizer-json.js';
import { runPipeline, type PipelineProgress, type RunSummary, type Vocabulary } from './pipeline.js';

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
  const input = opts.input ?? config.source.path;
  await ensureInput(config, input, opts.input != null, logger);

  const backend = await selectBackend(config.model.backend);
  logger.info({ backend: backend.name, reason: backend.reason }, `model backend: ${backend.name}`);

  const checkpoint = opts.resume ? await loadCheckpointOrFail(config) : null;
  const tokenizer = checkpoint
    ? Tokenizer.fromJSON(checkpoint.tokenizer as TokenizerJSON)
    : await makeTokenizer(config);
  const network = {
    vocabSize: config.tokenizer.numWords,
    embeddingDim: config.model.embeddingDim,
    units: config.model.units,
    maxLen: config.tokenizer.maxLen,
    learningRate: config.model.learningRate,
    seed: config.model.seed,
  };
  const learnerOptions = { network, trainBatchSize: config.model.trainBatchSize };
  const learner = checkpoint
    ? await PrequentialLearner.fromCheckpoint(checkpoint, learnerOptions)
    : PrequentialLearner.create(learnerOptions);
  if (checkpoint) logger.info({ modelVersion: learner.modelVersion }, 'resumed from checkpoint');

  const registry = new Registry();
  registry.setDefaultLabels({ pipeline: config.name });
  const metrics = new PipelineMetrics(registry, () => modelState(backend, learner));
  let server: MetricsServer | null = null;
  const source = await ParquetSource.open({
    path: input,
    columns: config.source.columns,
    batchRows: config.source.batchRows,
  });
  const layout = { dir: config.sink.dir, pipeline: config.name, prefix: REPLAY_PATH_PREFIX };
  // A replay regenerates its whole output; files left by an earlier run of the same input
  // (possibly with other offset ranges) would otherwise sit beside the new ones.
  await rm(path.dirname(partitionDirectory(layout, source.name, 0)), { recursive: true, force: true });
  const deadLetterPath = config.deadLetter.path ?? path.join(config.sink.dir, config.name, 'dead-letters.jsonl');
  await rm(deadLetterPath, { force: true });
  const sink = new ParquetSink({ ...layout, rotateRows: config.sink.rotateRows, compression: config.sink.compression, includeText: config.sink.includeText });
  const deadLetters = new DeadLetterFileSink({ path: deadLetterPath });

  const saveModel = async (): Promise<void> => {
    if (config.model.checkpointDir === null) return;
    const saved = await saveCheckpoint(config.model.checkpointDir, await learner.checkpointState(tokenizer.toJSON()));
    logger.info({ dir: saved.dir, bytes: saved.bytes, modelVersion: learner.modelVersion }, 'checkpoint saved');
  };
  let lastCheckpointRows = 0;
  try {
    if (config.metrics.enabled) {
      server = await startMetricsServer(registry, config.metrics.host, config.metrics.port);
      logger.info({ url: server.url }, `metrics on ${server.url}`);
    }
    const limit = opts.limit ?? null;
    opts.onStart?.({ total: limit === null ? source.size : Math.min(limit, source.size), backend, metricsUrl: server?.url ?? null });
    const summary = await runPipeline({
      source,
      sink,
      deadLetters,
      clean: config.clean.email ? cleanEmail : cleanText,
      vocabulary: asVocabulary(tokenizer, logger),
      bootstrapRows: config.tokenizer.bootstrapRows,
      builder: new BatchBuilder({ maxLen: config.tokenizer.maxLen, maxRows: config.batch.maxRows, maxAgeMs: config.batch.maxAgeMs }),
      model: learner,
      metrics,
      maxMessageBytes: config.decode.maxMessageBytes,
      limit,
      signal: opts.signal,
      afterBatch: async (progress) => {
        opts.onProgress?.(progress, learner.evaluation());
        const every = config.model.checkpointEveryRows;
        if (every > 0 && progress.rowsScored - lastCheckpointRows >= every) {
          lastCheckpointRows = progress.rowsScored;
          await saveModel();
        }
      },
    });
    await deadLetters.close();
    await saveModel();
    return {
      ...summary,
      // The version after training on the last batch (the summary's is the one that scored it).
      modelVersion: learner.modelVersion,
      backend,
      evaluation: learner.evaluation(),
      input,
      deadLetterPath,
      checkpointDir: config.model.checkpointDir,
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
async function ensureInput(config: Readonly<PipelineConfig>, input: string, fromCommandLine: boolean, logger: Logger): Promise<void> {
  if (await exists(input)) return;
  if (config.source.dataset === 'spamassassin' && !fromCommandLine) {
    logger.info({ path: input }, 'building the SpamAssassin dataset (first run only)');
    const built = await buildSpamAssassinDataset({ out: input, seed: config.source.datasetSeed });
    logger.info({ path: input, rows: built.rows, spam: built.spam, ham: built.ham }, 'dataset ready');
    return;
  }
  throw new ConfigError(fromCommandLine ? '--input' : 'source.path', `file not found: ${input}`);
}

async function makeTokenizer(config: Readonly<PipelineConfig>): Promise<Tokenizer> {
  const settings = { numWords: config.tokenizer.numWords, maxLen: config.tokenizer.maxLen, oovToken: config.tokenizer.oovToken };
  if (config.tokenizer.path === null) return new Tokenizer(settings);
  let text: string;
  try {
    text = await readFile(config.tokenizer.path, 'utf8');
  } catch (cause) {
    throw new ConfigError('tokenizer.path', `cannot read ${config.tokenizer.path}`, { cause });
  }
  // Keras' tokenizer.to_json() wraps its settings in {"class_name": "Tokenizer", "config": …}.
  const isKeras = text.includes('"class_name"') && text.includes('"Tokenizer"');
  const tokenizer = isKeras
    ? Tokenizer.fromKerasJSON(text, { maxLen: config.tokenizer.maxLen })
    : Tokenizer.fromJSON(text);
  const numWords = tokenizer.config.numWords;
  if (numWords === null || numWords > config.tokenizer.numWords) {
    throw new ConfigError(
      'tokenizer.path',
      `the tokenizer emits ids up to ${numWords ?? 'its whole vocabulary'}, but the model's embedding has ` +
        `tokenizer.numWords = ${config.tokenizer.numWords} rows; refit it with num_words ≤ ${config.tokenizer.numWords}`,
    );
  }
  if (!tokenizer.frozen) tokenizer.freeze();
  return tokenizer;
}

async function loadCheckpointOrFail(config: Readonly<PipelineConfig>): Promise<NonNullable<Awaited<ReturnType<typeof loadLatestCheckpoint>>>> {
  if (config.model.checkpointDir === null) throw new ConfigError('model.checkpointDir', 'must be set to resume from a checkpoint');
  const checkpoint = await loadLatestCheckpoint(config.model.checkpointDir);
  if (!checkpoint) throw new ConfigError('model.checkpointDir', `no checkpoint in ${config.model.checkpointDir} to resume from`);
  return checkpoint;
}

function asVocabulary(tokenizer: Tokenizer, logger: Logger): Vocabulary {
  return {
    get frozen() {
      return tokenizer.frozen;
    },
    fitAndFreeze(texts) {
      tokenizer.fitOnTexts(texts).freeze();
      logger.info({ documents: texts.length, words: tokenizer.wordIndex.size }, 'vocabulary fitted and frozen');
    },
    encode: (text) => tokenizer.encode(text),
  };
}

function modelState(backend: BackendInfo, learner: PrequentialLearner): ModelState {
  const e = learner.evaluation();
  return {
    backend: backend.name,
    version: learner.modelVersion,
    accuracy: e.accuracy,
    auc: e.auc,
    logLoss: e.logLoss,
    trainLoss: e.lastTrainLoss,
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
