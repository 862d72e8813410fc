/**
 * Publishes a worker's model to the snapshot topic (see src/snapshots/topic.ts) at
 * the cadence of `snapshots.everyRows` / `snapshots.everySeconds`, and once more when the
 * worker stops, so that scorers and other trainers can load what it has learnt.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { PipelineConfig } from '../config/schema.js';
import type { Kafka, Producer } from '../kafka/types.js';
import { makeSnapshot } from '../model/snapshot-codec.js';
import { ensureSnapshotTopicOn, makeSnapshotProducer, publishSnapshot, type SnapshotTopic } from '../snapshots/topic.js';
import type { ModelParts } from './components.js';
import { PeerAverager } from './peer-averaging.js';

export class SnapshotPublisher {
  readonly topic: string;
  readonly producerId: string;
  readonly #producer: Producer;
  readonly #maxMessageBytes: number;
  readonly #model: ModelParts;
  readonly #logger: Logger;
  readonly #everyRows: number;
  readonly #everyMs: number;
  readonly #averager: PeerAverager | null;
  #publishedAtRows: number;
  #publishedAtMs = Date.now();
  #published = 0;

  private constructor(init: {
    topic: string;
    producerId: string;
    producer: Producer;
    maxMessageBytes: number;
    model: ModelParts;
    logger: Logger;
    everyRows: number;
    everyMs: number;
    averager: PeerAverager | null;
  }) {
    this.topic = init.topic;
    this.producerId = init.producerId;
    this.#producer = init.producer;
    this.#maxMessageBytes = init.maxMessageBytes;
    this.#model = init.model;
    this.#logger = init.logger;
    this.#everyRows = init.everyRows;
    this.#everyMs = init.everyMs;
    this.#averager = init.averager;
    // A model resumed from a checkpoint has nothing new to publish yet.
    this.#publishedAtRows = this.#trainedRows();
  }

  /** Null when the pipeline publishes no snapshots (`snapshots.topic` is null). */
  static async start(kafka: Kafka, config: Readonly<PipelineConfig>, model: ModelParts, logger: Logger): Promise<SnapshotPublisher | null> {
    const { topic, everyRows, everySeconds } = config.snapshots;
    if (topic === null) return null;
    const { maxMessageBytes } = await openSnapshotTopic(kafka, topic, logger);
    const producer = makeSnapshotProducer(kafka);
    await producer.connect();
    const producerId = config.snapshots.producerId ?? `${config.name}@${os.hostname()}`;
    const averager = config.snapshots.average ? await PeerAverager.start(kafka, topic, producerId, logger) : null;
    return new SnapshotPublisher({ topic, producerId, producer, maxMessageBytes, model, logger, everyRows, everyMs: everySeconds * 1000, averager });
  }

  /** Snapshots published by this process. */
  get published(): number {
    return this.#published;
  }

  /** After a batch: publishes when enough rows were trained, or enough time passed with some. */
  async maybePublish(): Promise<void> {
    const fresh = this.#trainedRows() - this.#publishedAtRows;
    if (fresh <= 0) return;
    if (fresh >= this.#everyRows || Date.now() - this.#publishedAtMs >= this.#everyMs) await this.publish();
  }

  /** When the worker stops: publishes what was trained since the last snapshot, if anything. */
  async publishIfNew(): Promise<void> {
    if (this.#trainedRows() > this.#publishedAtRows) await this.publish();
  }

  /** Publishes the model as it is now (when the vocabulary is fitted: before, nothing was learnt). */
  async publish(): Promise<void> {
    const { learner, tokenizer } = this.#model;
    if (!tokenizer.frozen) return;
    await this.#averager?.averageInto(learner);
    const trainedRows = this.#trainedRows();
    const snapshot = makeSnapshot(await learner.checkpointState(tokenizer.toJSON()), { producer: this.producerId });
    const published = await publishSnapshot(this.#producer, this.topic, snapshot, { maxMessageBytes: this.#maxMessageBytes });
    this.#publishedAtRows = trainedRows;
    this.#publishedAtMs = Date.now();
    this.#published++;
    this.#logger.info(
      { topic: this.topic, producer: this.producerId, modelVersion: published.modelVersion, bytes: published.payloadBytes, chunks: published.chunks },
      'model snapshot published',
    );
  }

  async close(): Promise<void> {
    await this.#averager?.close();
    await this.#producer.disconnect();
  }

  #trainedRows(): number {
    return this.#model.learner.evaluation().trainedRows;
  }
}

/** Creates the snapshot topic when missing (trainers and scorers may start in any order). */
export async function openSnapshotTopic(kafka: Kafka, topic: string, logger: Logger): Promise<SnapshotTopic> {
  const ensured = await ensureSnapshotTopicOn(kafka, topic);
  if (ensured.created) logger.info({ topic, maxMessageBytes: ensured.maxMessageBytes }, 'created the snapshot topic (compacted)');
  return ensured;
}
