import path from 'node:path';
import type { Logger } from 'pino';
import type { PipelineConfig } from '../config/schema.js';
import { ConfigError, SourceError } from '../errors.js';
import type { MetricsServer } from '../metrics/server.js';
import type { BackendInfo } from '../model/backend.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import { KafkaDeadLetterSink } from '../sinks/dead-letter-kafka.js';
import { DiscardDeadLetterSink, DiscardSink } from '../sinks/discard.js';
import { ParquetSink } from '../sinks/parquet.js';
import { recoverPartitionOutput } from '../sinks/parquet-recovery.js';
import type { DurableFile } from '../sinks/sink.js';
import { listTopicsOnFirstContact, makeKafkaClient } from '../kafka/client.js';
import { kafkaMessageToRecord } from '../sources/kafka-message.js';
import { KafkaSource } from '../sources/kafka.js';
import { ensureSinkDir, makeBatchBuilder, makeMetricsParts, makeModelParts, makeStageParts } from './components.js';
import { SnapshotPublisher } from './snapshot-publisher.js';
import { SnapshotScorer } from './snapshot-scorer.js';
import { splitBatch } from './split-batch.js';
import { runPipeline, type PipelineProgress, type RunSummary } from './pipeline.js';
import { adoptLegacyCheckpoint, checkpointRoot } from './run-state.js';

/**
 * What a worker does with the topic: `all` scores, writes and trains (one model per
 * worker); `train` only trains and publishes snapshots; `score` only scores and writes,
 * with the latest snapshot. See docs/scaling.md.
 */
export const WorkerRoles = ['all', 'train', 'score'] as const;
export type WorkerRole = (typeof WorkerRoles)[number];

export interface WorkerOptions {
  logger: Logger;
  /** Default 'all'. */
  role?: WorkerRole;
  /** Aborting it drains the worker: stop fetching, flush, finish files, commit, checkpoint. */
  signal: AbortSignal;
  /** See PipelineParts.afterPublish: fault injection between publishing files and committing. */
  afterPublish?: (files: readonly DurableFile[]) => void;
  /** See LearnerOptions.nanLossAtStep: fault injection of one NaN training step. */
  nanLossAtStep?: number | null;
  /** Drain and return once no message has arrived for this long (ms); null: run until `signal`. */
  exitWhenIdleMs?: number | null;
  onStart?: (info: { backend: BackendInfo; metricsUrl: string | null }) => void;
  onProgress?: (progress: PipelineProgress, evaluation: EvaluationSnapshot) => void;
}

export interface WorkerSummary extends RunSummary {
  backend: BackendInfo;
  lstm: 'fused' | 'stock';
  evaluation: EvaluationSnapshot;
  role: WorkerRole;
  topic: string;
  groupId: string;
  /** Null for a trainer: the scorers dead-letter the topic's bad records. */
  deadLetterTopic: string | null;
  checkpointDir: string | null;
  /** Model snapshots this worker published (trainers) or swapped in (scorers). */
  snapshots: number;
}

/** A trainer's consumer group: its own, so that it reads every message the scorers read. */
export function trainerGroupId(groupId: string): string {
  return `${groupId}-trainers`;
}

/**
 * A consumer-group worker: the replay pipeline's stages with a Kafka source, a Kafka
 * dead-letter topic, and offsets committed only for records that are durable (see
 * CommitTracker). It resumes its model from the latest checkpoint when there is one.
 * Runs until `signal` aborts, then drains in data-flow order and returns.
 */
export async function runWorker(config: Readonly<PipelineConfig>, opts: WorkerOptions): Promise<WorkerSummary> {
  const { logger } = opts;
  const sourceConfig = config.source;
  if (sourceConfig.type !== 'kafka') {
    throw new ConfigError('source.type', `run reads a kafka source, this pipeline has "${sourceConfig.type}" (use \`textstream replay\`)`);
  }
  // Before anything is built or created on the cluster: a wrong address or topic name
  // fails in seconds, naming it.
  const topics = await listTopicsOnFirstContact({
    brokers: sourceConfig.brokers,
    clientId: sourceConfig.clientId,
    sasl: sourceConfig.sasl,
    tls: sourceConfig.tls,
    logger,
    setting: 'source.brokers',
  });
  if (!topics.includes(sourceConfig.topic)) {
    throw new SourceError(`topic "${sourceConfig.topic}" does not exist on ${sourceConfig.brokers.join(',')} (source.topic); create it first`);
  }
  const role = opts.role ?? 'all';
  if (role !== 'all' && config.snapshots.topic === null) {
    throw new ConfigError('snapshots.topic', `--role ${role} needs a snapshot topic: trainers publish their model there, scorers load it from there`);
  }
  if (config.snapshots.average && config.tokenizer.path === null) {
    // Each trainer would otherwise fit its own vocabulary on its own partitions, and
    // averaging embeddings of different vocabularies means nothing.
    throw new ConfigError('tokenizer.path', 'snapshots.average needs one vocabulary for every trainer: fit it once (textstream tokenizer fit) and set tokenizer.path');
  }
  const groupId = role === 'train' ? trainerGroupId(sourceConfig.groupId) : sourceConfig.groupId;
  if (role !== 'train') await ensureSinkDir(config.sink.dir);
  const kafka = makeKafkaClient({ brokers: sourceConfig.brokers, clientId: sourceConfig.clientId, sasl: sourceConfig.sasl, tls: sourceConfig.tls, logger });
  const scoring = role === 'score' ? await SnapshotScorer.start(kafka, config, logger, opts.signal) : null;
  // A scorer loads snapshots, not checkpoints, and saves none.
  const root = role === 'score' ? null : checkpointRoot(config, sourceConfig.topic);
  if (root !== null) await adoptLegacyCheckpoint(config, root, sourceConfig.topic, logger);
  const model = scoring?.parts ?? (await makeModelParts(config, logger, { root, resume: 'if-present' }, { nanLossAtStep: opts.nanLossAtStep ?? null }));
  const metricsParts = await makeMetricsParts(config, model, logger);
  const { metrics, server: metricsServer } = metricsParts;
  const server: MetricsServer | null = metricsServer;
  const layout = { dir: config.sink.dir, pipeline: config.name };
  const sink = role === 'train' ? new DiscardSink() : new ParquetSink({
    ...layout,
    rotateRows: config.sink.rotateRows,
    compression: config.sink.compression,
    includeText: config.sink.includeText,
    // A failing disk is retried with backoff (nothing is committed meanwhile) until the
    // shutdown signal; then the drain stops waiting for it: the uncommitted rows are read again.
    signal: opts.signal,
    onRetry: ({ attempt, delayMs, error, code, file, partition, rows }) => {
      metrics.sinkWriteFailures.labels(code).inc();
      logger.warn({ code, err: error.message, file, partition, rows, attempt, delayMs }, 'writing Parquet failed; retrying, nothing is committed meanwhile');
    },
  });
  const deadLetterTopic = role === 'train' ? null : (config.deadLetter.topic ?? `${sourceConfig.topic}.dlq`);
  const deadLetters = deadLetterTopic === null ? new DiscardDeadLetterSink() : new KafkaDeadLetterSink({
    kafka,
    topic: deadLetterTopic,
    createLike: {
      topic: sourceConfig.topic,
      onCreated: (maxMessageBytes) => logger.info({ deadLetterTopic, maxMessageBytes }, 'created the dead-letter topic (it did not exist)'),
    },
  });
  let source: KafkaSource | null = null;
  let snapshots: SnapshotPublisher | null = null;
  const messageOptions = { format: sourceConfig.format, fields: sourceConfig.fields, maxMessageBytes: config.decode.maxMessageBytes };
  try {
    if (deadLetters instanceof KafkaDeadLetterSink) await deadLetters.connect();
    if (role !== 'score') snapshots = await SnapshotPublisher.start(kafka, config, model, logger);
    const stages = makeStageParts(config, model, metricsParts, opts.onProgress);
    // An averaging trainer's batch stage is rebuilt with its share at every rebalance (the
    // rows it buffered belong to the old assignment and are dropped with it: see runPipeline).
    let builder = stages.builder;
    let trainBatchSize = config.model.trainBatchSize;
    const averaging = role !== 'score' && config.snapshots.average;
    source = await KafkaSource.start({
      kafka,
      topic: sourceConfig.topic,
      groupId,
      fromBeginning: sourceConfig.fromBeginning,
      sessionTimeoutMs: sourceConfig.sessionTimeoutMs,
      maxBufferedMessages: sourceConfig.maxBufferedMessages,
      toRecord: (message, partition) => kafkaMessageToRecord(message, sourceConfig.topic, partition, messageOptions),
      outputOnDisk: async (partition) => {
        // A trainer's progress is its committed offsets; it has no files.
        if (role === 'train') return { lastOffset: null, lostAfterLast: false };
        // This worker owns the partition now: temp files there are leftovers of a crash, and
        // a final file that is not a whole Parquet file must not mark where the output ends.
        const recovery = await recoverPartitionOutput(layout, sourceConfig.topic, partition, { legacyKey: 'topic' });
        if (recovery.migrated.length > 0) {
          logger.warn({ partition, moved: recovery.migrated.length, to: path.dirname(recovery.migrated[0]!) }, 'moved the output files of the old topic=/partition= layout into place');
        }
        if (recovery.removedTempFiles.length > 0) {
          logger.warn({ partition, removed: recovery.removedTempFiles.length, files: recovery.removedTempFiles }, 'removed unfinished temporary files left by an earlier worker');
        }
        if (recovery.tempFilesLeft.length > 0) {
          logger.warn({ partition, files: recovery.tempFilesLeft }, 'could not remove unfinished temporary files (never read as output; the next start tries again)');
        }
        for (const q of recovery.quarantined) {
          const offsets = String(q.lastOffset - q.firstOffset + 1n);
          logger.warn(
            { partition, file: q.path, movedTo: q.movedTo, reason: q.reason, firstOffset: String(q.firstOffset), lastOffset: String(q.lastOffset), offsets, bytes: q.bytes },
            `quarantined an invalid Parquet file; its ${offsets} offsets are read again from the topic`,
          );
        }
        return { lastOffset: recovery.lastOffset, lostAfterLast: recovery.quarantined.length > 0 };
      },
      // What the checkpoint's model had not learnt yet when the worker stopped is learnt again.
      modelTrainedThrough: (partition) => model.learner.trainedThrough(sourceConfig.topic, partition),
      // A scorer learns nothing, so it has nothing to learn again.
      maxRetrainMessages: role === 'score' ? 0 : config.model.retrainLimitRows,
      logger,
      onBackpressure: () => metrics.backpressurePauses.inc(),
      onRebalance: () => metrics.rebalances.inc(),
      ...(averaging
        ? {
            onAssigned: (assigned: readonly number[], topicPartitions: number) => {
              const sizes = splitBatch({ maxRows: config.batch.maxRows, trainBatchSize: config.model.trainBatchSize }, assigned.length, topicPartitions);
              builder = makeBatchBuilder(config, sizes.maxRows);
              trainBatchSize = sizes.trainBatchSize;
              logger.info(
                { partitions: assigned, topicPartitions, ...sizes },
                `averaging trainer with ${assigned.length} of ${topicPartitions} partitions: batches of ${sizes.maxRows} rows, optimiser steps of ${sizes.trainBatchSize}`,
              );
            },
          }
        : {}),
    });
    const started = source;
    metrics.readLagFrom(() => started.lag());
    opts.signal.addEventListener('abort', () => started.stopFetching(), { once: true });
    opts.onStart?.({ backend: model.backend, metricsUrl: server?.url ?? null });
    logger.info({ role, topic: sourceConfig.topic, groupId, deadLetterTopic }, 'worker started');

    const publisher = snapshots;
    const summary = await runPipeline({
      ...stages,
      get builder() {
        return builder;
      },
      // A trainer's step size for each batch is its current share's (set at each rebalance).
      model: scoring?.scorer ?? {
        process: (batch) => model.learner.process(batch, { trainBatchSize }),
        retrain: (batch) => model.learner.retrain(batch, { trainBatchSize }),
      },
      ...(publisher
        ? {
            afterBatch: async (progress: PipelineProgress) => {
              await stages.afterBatch?.(progress);
              await publisher.maybePublish();
            },
          }
        : {}),
      source,
      sink,
      deadLetters,
      limit: null,
      bootstrapMaxWaitMs: config.tokenizer.bootstrapMaxWaitMs,
      idleExitMs: opts.exitWhenIdleMs ?? null,
      ...(opts.afterPublish ? { afterPublish: opts.afterPublish } : {}),
      flushIntervalMs: sourceConfig.commitIntervalMs,
      signal: opts.signal,
    });
    await model.checkpoint();
    await snapshots?.publishIfNew();
    return {
      ...summary,
      // A trainer's "files" are only what it has trained through.
      files: role === 'train' ? [] : summary.files,
      modelVersion: model.learner.modelVersion,
      backend: model.backend,
      lstm: model.learner.lstm,
      evaluation: model.learner.evaluation(),
      role,
      topic: sourceConfig.topic,
      groupId,
      deadLetterTopic,
      checkpointDir: root,
      snapshots: scoring?.scorer.swaps ?? snapshots?.published ?? 0,
    };
  } finally {
    // Reverse data-flow order; each close is safe after a failure.
    await source?.close();
    await snapshots?.close();
    await deadLetters.close();
    await sink.close();
    await server?.close();
    if (scoring) await scoring.scorer.close();
    else model.learner.dispose();
  }
}

