import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { BatchBuilder } from '../batch/builder.js';
import type { PipelineConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { PipelineMetrics, type ModelState } from '../metrics/definitions.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { selectBackend, type BackendInfo } from '../model/backend.js';
import { fusedLstmUnavailableReason, setFusedLstmThreads } from '../model/fused-lstm.js';
import { pipelineNetwork, resolveNetworkConfig } from '../model/network.js';
import { applyInitialWeights, loadInitialWeights } from '../model/initial-model.js';
import { saveCheckpoint } from '../model/checkpoint.js';
import { loadLatestCheckpoint } from '../model/checkpoint-recovery.js';
import { loadCheckpointAt } from '../model/checkpoint-roots.js';
import { Adwin } from '../model/drift.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import { PrequentialLearner, type LearnerOptions, type RejectedUpdate } from '../model/learner.js';
import { cleanEmail, cleanText } from '../text/clean.js';
import type { TokenizerJSON } from '../text/tokenizer-json.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { CleanPoolSettings } from './clean-stage.js';
import type { DriftEvent, PipelineParts, PipelineProgress, Vocabulary } from './pipeline.js';

/** Whether to start from the latest checkpoint: never, only if there is one, or required. */
export type ResumeMode = 'never' | 'if-present' | 'required';

/** The checkpoints of a run: their root (see run-state.ts; null: none) and whether to start from the latest. */
export interface CheckpointUse {
  root: string | null;
  resume: ResumeMode;
  /** Start from this checkpoint instead of the root's latest (another input's; see loadCheckpointAt). */
  from?: string | null;
}

/** For runs that neither load nor save a checkpoint (benchmarks, tests, scorers). */
export const NO_CHECKPOINTS: CheckpointUse = { root: null, resume: 'never' };

export interface ModelParts {
  backend: BackendInfo;
  tokenizer: Tokenizer;
  learner: PrequentialLearner;
  vocabulary: Vocabulary;
  /**
   * Writes a checkpoint to the run's checkpoint root and returns its directory; null,
   * saving nothing, when there is no root or no row reached the model since it was loaded
   * or last saved (a `--limit 0` run, or one whose every row was a dead letter, must not
   * replace the checkpoint a real run left).
   */
  checkpoint(): Promise<string | null>;
  /** When this process last saved a checkpoint (ms since the epoch); null before the first. */
  readonly lastCheckpointAtMs: number | null;
}

/**
 * The model side of a pipeline, shared by replay and the Kafka worker: backend, tokenizer
 * (fitted later, loaded from `tokenizer.path`, or from a checkpoint) and the learner.
 */
export async function makeModelParts(
  config: Readonly<PipelineConfig>,
  logger: Logger,
  checkpoints: CheckpointUse,
  faults: Pick<LearnerOptions, 'nanLossAtStep'> = {},
): Promise<ModelParts> {
  const backend = await selectBackend(config.model.backend);
  setFusedLstmThreads(config.model.lstmThreads);
  logger.info({ backend: backend.name, reason: backend.reason }, `model backend: ${backend.name}`);

  const checkpoint = await loadCheckpointFor(checkpoints, logger);
  const tokenizer = checkpoint ? Tokenizer.fromJSON(checkpoint.tokenizer as TokenizerJSON) : await makeTokenizer(config);
  const learnerOptions = {
    network: pipelineNetwork(config),
    trainBatchSize: config.model.trainBatchSize,
    clipNorm: config.model.clipNorm,
    // A NaN or infinite step is not applied; the model keeps its last good weights.
    onRejectedUpdate: (event: RejectedUpdate) => logger.warn(event, event.message),
    ...faults,
  };
  // Read (and validated against the network) before the learner exists, so a bad file leaks no model.
  const initial =
    checkpoint === null && config.model.initialModel !== null
      ? await loadInitialWeights(config.model.initialModel, resolveNetworkConfig(learnerOptions.network))
      : null;
  const learner = checkpoint
    ? await PrequentialLearner.fromCheckpoint(checkpoint, learnerOptions)
    : PrequentialLearner.create(learnerOptions);
  if (initial !== null) {
    applyInitialWeights(learner.model, initial);
    logger.info({ initialModel: initial.source }, `model initialised from model.initialModel ${initial.source}`);
  } else if (checkpoint && config.model.initialModel !== null) {
    logger.info({ initialModel: config.model.initialModel }, 'model.initialModel not used: resuming from the checkpoint instead');
  }
  if (config.model.lstm === 'auto' && learner.lstm === 'stock') {
    logger.warn({ lstm: learner.lstm, reason: fusedLstmUnavailableReason() }, 'LSTM layer: stock (≈ 10× slower to train): the fused LSTM is not available');
  } else {
    logger.info({ lstm: learner.lstm }, `LSTM layer: ${learner.lstm}`);
  }
  if (checkpoint) logger.info({ modelVersion: learner.modelVersion, rowsSeen: learner.rowsSeen }, 'resumed from checkpoint');

  let lastCheckpointAtMs: number | null = null;
  let rowsSeenAtLastSave = learner.rowsSeen;
  return {
    backend,
    tokenizer,
    learner,
    vocabulary: {
      get frozen() {
        return tokenizer.frozen;
      },
      fitAndFreeze(texts) {
        tokenizer.fitOnTexts(texts).freeze();
        logger.info({ documents: texts.length, words: tokenizer.wordIndex.size }, 'vocabulary fitted and frozen');
      },
      encode: (text) => tokenizer.encode(text),
    },
    async checkpoint() {
      const root = checkpoints.root;
      if (root === null) return null;
      // An unfitted vocabulary, or no row since the last save, means there is nothing new to keep.
      if (!tokenizer.frozen || learner.rowsSeen === rowsSeenAtLastSave) {
        logger.info({ dir: root }, 'no checkpoint saved: no row reached the model since the last one');
        return null;
      }
      const saved = await saveCheckpoint(root, await learner.checkpointState(tokenizer.toJSON()));
      lastCheckpointAtMs = Date.now();
      rowsSeenAtLastSave = learner.rowsSeen;
      logger.info({ dir: saved.dir, bytes: saved.bytes, modelVersion: learner.modelVersion }, 'checkpoint saved');
      return saved.dir;
    },
    get lastCheckpointAtMs() {
      return lastCheckpointAtMs;
    },
  };
}

export interface MetricsParts {
  registry: Registry;
  metrics: PipelineMetrics;
  /** ADWIN over the prequential error; its estimate is exported as textstream_drift_error_rate. */
  drift: Adwin;
  /** Logs a detected drift (warn) with the source positions where it happened. */
  onDrift: (event: DriftEvent) => void;
  server: MetricsServer | null;
}

/** A registry of our own (never the global one), its metrics, and the /metrics server if enabled. */
export async function makeMetricsParts(config: Readonly<PipelineConfig>, model: ModelParts, logger: Logger): Promise<MetricsParts> {
  const registry = new Registry();
  registry.setDefaultLabels({ pipeline: config.name });
  const metrics = new PipelineMetrics(registry, () => modelState(model));
  const drift = new Adwin();
  metrics.readDriftErrorRateFrom(() => drift.estimate);
  const onDrift = (event: DriftEvent): void => {
    logger.warn(event, `drift detected in the prequential error at ${event.at.source}/${event.at.partition}@${event.at.offset}`);
  };
  let server: MetricsServer | null = null;
  if (config.metrics.enabled) {
    server = await startMetricsServer(registry, config.metrics.host, config.metrics.port);
    logger.info({ url: server.url }, `metrics on ${server.url}`);
  }
  return { registry, metrics, drift, onDrift, server };
}

function modelState(model: ModelParts): ModelState {
  const { backend, learner } = model;
  const e = learner.evaluation();
  const savedAt = model.lastCheckpointAtMs;
  return {
    backend: backend.name,
    lstm: learner.lstm,
    version: learner.modelVersion,
    accuracy: e.accuracy,
    auc: e.auc,
    logLoss: e.logLoss,
    trainLoss: e.lastTrainLoss,
    liveTensors: tf.memory().numTensors,
    meanScore: e.recentMeanScore,
    positiveRate: e.recentPositiveRate,
    checkpointAgeSeconds: savedAt === null ? null : Math.max(0, (Date.now() - savedAt) / 1000),
    updatesRejected: learner.rejectedUpdates,
  };
}

/** The tokenizer a pipeline starts with: `tokenizer.path` when set, else an unfitted one (fitted on the bootstrap window). */
export async function makeTokenizer(config: Readonly<PipelineConfig>): Promise<Tokenizer> {
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
  let tokenizer: Tokenizer;
  try {
    tokenizer = isKeras ? Tokenizer.fromKerasJSON(text, { maxLen: config.tokenizer.maxLen }) : Tokenizer.fromJSON(text);
  } catch (cause) {
    throw new ConfigError('tokenizer.path', `${config.tokenizer.path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
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

async function loadCheckpointFor({ root, resume, from }: CheckpointUse, logger: Logger) {
  if (from != null) return loadCheckpointAt(from, '--resume-from');
  if (resume === 'never') return null;
  if (root === null) {
    if (resume === 'required') throw new ConfigError('model.checkpoints', 'is false: there is no checkpoint to resume from');
    return null;
  }
  // A checkpoint damaged on disk is moved aside (never read as valid), and the one before it is used.
  const checkpoint = await loadLatestCheckpoint(root, {
    onDamaged: 'quarantine',
    onQuarantine: (event) => logger.warn(event, event.message),
  });
  if (!checkpoint && resume === 'required') {
    throw new ConfigError('--resume', `no checkpoint in ${root} to resume from (a run of this input without --resume saves one)`);
  }
  return checkpoint;
}

/** The parts of a pipeline that replay and the Kafka worker share: everything but source and sinks. */
export type StageParts = Pick<
  PipelineParts,
  'clean' | 'cleanPool' | 'vocabulary' | 'bootstrapRows' | 'builder' | 'model' | 'metrics' | 'drift' | 'onDrift' | 'maxMessageBytes' | 'labels' | 'afterBatch'
>;

/**
 * Stage settings from the config, plus an after-batch hook that reports progress and
 * writes a checkpoint every `model.checkpointEveryRows` scored rows.
 */
export function makeStageParts(
  config: Readonly<PipelineConfig>,
  model: ModelParts,
  metricsParts: MetricsParts,
  onProgress?: (progress: PipelineProgress, evaluation: EvaluationSnapshot) => void,
): StageParts {
  let lastCheckpointRows = 0;
  return {
    clean: config.clean.email ? cleanEmail : cleanText,
    cleanPool: cleanPoolSettings(config),
    vocabulary: model.vocabulary,
    bootstrapRows: config.tokenizer.bootstrapRows,
    builder: makeBatchBuilder(config),
    model: model.learner,
    metrics: metricsParts.metrics,
    drift: metricsParts.drift,
    onDrift: metricsParts.onDrift,
    maxMessageBytes: config.decode.maxMessageBytes,
    labels: config.decode.labels,
    afterBatch: async (progress) => {
      onProgress?.(progress, model.learner.evaluation());
      const every = config.model.checkpointEveryRows;
      if (every > 0 && progress.rowsScored - lastCheckpointRows >= every) {
        lastCheckpointRows = progress.rowsScored;
        await model.checkpoint();
      }
    },
  };
}

/** The cleaning pool from `clean.*`; null (clean on the main thread) for 0 threads, or when the main thread has the only core. */
export function cleanPoolSettings(config: Readonly<PipelineConfig>): CleanPoolSettings | null {
  // The main thread keeps a core for tokenizing, the model and the sink.
  const threads = config.clean.threads ?? Math.max(0, os.availableParallelism() - 1);
  if (threads === 0) return null;
  return { threads, kind: config.clean.email ? 'email' : 'text', maxBatchesInFlight: config.clean.maxBatchesInFlight };
}

/**
 * The batch stage of a pipeline; `maxRows` other than batch.maxRows for an averaging
 * trainer's share (see splitBatch), which gets a new builder at each rebalance.
 */
export function makeBatchBuilder(config: Readonly<PipelineConfig>, maxRows = config.batch.maxRows): BatchBuilder {
  return new BatchBuilder({ maxLen: config.tokenizer.maxLen, maxRows, maxAgeMs: config.batch.maxAgeMs });
}

/** Creates the output folder up front, so a bad `sink.dir` fails before any work, naming the setting. */
export async function ensureSinkDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new ConfigError('sink.dir', `cannot create ${dir}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
