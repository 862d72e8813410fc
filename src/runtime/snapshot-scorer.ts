/**
 * The scorer role's model: the latest snapshot on `snapshots.topic`, swapped for each
 * newer one between batches. A scorer never trains; every row it writes carries the
 * version of the snapshot that scored it.
 */
import type { Logger } from 'pino';
import type { RecordBatch } from 'apache-arrow';
import { retokenize } from '../batch/retokenize.js';
import type { PipelineConfig } from '../config/schema.js';
import { SourceError } from '../errors.js';
import type { Kafka } from '../kafka/types.js';
import { selectBackend } from '../model/backend.js';
import { PrequentialLearner } from '../model/learner.js';
import { pipelineNetwork } from '../model/network.js';
import type { ModelSnapshot } from '../model/snapshot-codec.js';
import { SnapshotWatcher } from '../snapshots/reader.js';
import type { TokenizerJSON } from '../text/tokenizer-json.js';
import { Tokenizer } from '../text/tokenizer.js';
import { makeTokenizer, type ModelParts } from './components.js';
import { openSnapshotTopic } from './snapshot-publisher.js';
import type { BatchModel, Vocabulary } from './pipeline.js';

interface Loaded {
  learner: PrequentialLearner;
  tokenizer: Tokenizer;
  /** Null for the declared untrained model (`snapshots.scorerStart: untrained`). */
  snapshot: ModelSnapshot | null;
}

export class SnapshotScorer implements BatchModel {
  readonly #config: Readonly<PipelineConfig>;
  readonly #logger: Logger;
  readonly #watcher: SnapshotWatcher;
  #current: Loaded;
  /** The newest snapshot not swapped in yet. */
  #next: ModelSnapshot | null = null;
  #arrived: (() => void) | null = null;
  #swaps = 0;
  /**
   * Set by a swap to another vocabulary: rows tokenized before it (the batch being scored,
   * perhaps some buffered after it) are tokenized again until a batch comes that needs none.
   */
  #retokenizing = false;

  private constructor(config: Readonly<PipelineConfig>, logger: Logger, watcher: SnapshotWatcher, current: Loaded) {
    this.#config = config;
    this.#logger = logger;
    this.#watcher = watcher;
    this.#current = current;
  }

  /**
   * Follows `snapshots.topic` and loads its newest snapshot; with none there, waits for
   * one until `signal` aborts (a TextstreamError then), or starts untrained, as
   * `snapshots.scorerStart` says.
   */
  static async start(kafka: Kafka, config: Readonly<PipelineConfig>, logger: Logger, signal: AbortSignal): Promise<{ scorer: SnapshotScorer; parts: ModelParts }> {
    const topic = config.snapshots.topic!;
    const backend = await selectBackend(config.model.backend);
    logger.info({ backend: backend.name, reason: backend.reason }, `model backend: ${backend.name}`);
    await openSnapshotTopic(kafka, topic, logger);
    let scorer: SnapshotScorer | null = null;
    const early: ModelSnapshot[] = [];
    const watcher = await SnapshotWatcher.start(kafka, topic, {
      onSnapshot: (snapshot) => (scorer ? scorer.#offer(snapshot) : early.push(snapshot)),
      onIgnored: (ignored) => logger.warn(ignored, ignored.message),
      onError: (error) => logger.error({ err: error.message }, 'the snapshot topic reader stopped; scoring goes on with the current model'),
    });
    try {
      const newest = newestOf(watcher.initial.snapshots);
      const current = newest ? await load(config, newest) : await untrained(config);
      scorer = new SnapshotScorer(config, logger, watcher, current);
      for (const snapshot of early) scorer.#offer(snapshot);
      if (newest) scorer.#logLoaded('loaded the latest model snapshot');
      else if (config.snapshots.scorerStart === 'untrained') {
        logger.warn({ topic }, 'no model snapshot on the topic yet: scoring with the untrained model (version 0) until one arrives');
      } else {
        logger.info({ topic }, 'no model snapshot on the topic yet: waiting for a trainer to publish one');
        await scorer.#waitForFirst(signal);
      }
      return { scorer, parts: scorerParts(scorer, backend) };
    } catch (err) {
      await watcher.close();
      if (scorer) scorer.#current.learner.dispose();
      throw err;
    }
  }

  get learner(): PrequentialLearner {
    return this.#current.learner;
  }

  get tokenizer(): Tokenizer {
    return this.#current.tokenizer;
  }

  /** Snapshots swapped in since the start (the first one loaded not counted). */
  get swaps(): number {
    return this.#swaps;
  }

  /** The current model's vocabulary (fitted on the bootstrap window only by an untrained start without tokenizer.path). */
  readonly vocabulary: Vocabulary = ((scorer: SnapshotScorer): Vocabulary => ({
    get frozen(): boolean {
      return scorer.tokenizer.frozen;
    },
    fitAndFreeze: (texts) => {
      scorer.tokenizer.fitOnTexts(texts).freeze();
    },
    encode: (text) => scorer.tokenizer.encode(text),
  }))(this);

  async process(batch: RecordBatch): Promise<{ scores: Float32Array; modelVersion: number; trainedRows: number }> {
    await this.#swapIfNewer();
    if (this.#retokenizing) {
      const tokenizer = this.#current.tokenizer;
      const rewritten = retokenize(batch, (text, out) => tokenizer.encode(text, out));
      this.#retokenizing = rewritten > 0;
      if (rewritten > 0) this.#logger.info({ rows: rewritten }, 'tokenized rows again with the new snapshot’s vocabulary');
    }
    const { scores, modelVersion } = await this.#current.learner.score(batch);
    return { scores, modelVersion, trainedRows: 0 };
  }

  async close(): Promise<void> {
    await this.#watcher.close();
    this.#current.learner.dispose();
  }

  #offer(snapshot: ModelSnapshot): void {
    const against = this.#next ?? this.#current.snapshot;
    if (against !== null && snapshot.publishedAtMs <= against.publishedAtMs) return;
    this.#next = snapshot;
    this.#arrived?.();
  }

  async #waitForFirst(signal: AbortSignal): Promise<void> {
    while (this.#next === null) {
      if (signal.aborted) throw new SourceError(`stopped before a model snapshot arrived on ${this.#config.snapshots.topic}`);
      await new Promise<void>((resolve) => {
        this.#arrived = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.#arrived = null;
    }
    await this.#swapIfNewer('loaded the first model snapshot');
  }

  /** Between batches: the newest snapshot that arrived replaces the model (and its vocabulary). */
  async #swapIfNewer(first: string | null = null): Promise<void> {
    const next = this.#next;
    if (next === null) return;
    this.#next = null;
    const loaded = await load(this.#config, next);
    const previous = this.#current;
    this.#current = loaded;
    previous.learner.dispose();
    if (first === null) this.#swaps++;
    // (A waiting scorer's first snapshot comes before any row is tokenized.)
    if (first === null && JSON.stringify(previous.tokenizer.toJSON()) !== JSON.stringify(loaded.tokenizer.toJSON())) {
      this.#retokenizing = true;
      // Expected after an untrained start without tokenizer.path; otherwise the trainers differ.
      this.#logger[previous.snapshot === null ? 'info' : 'warn'](
        { producer: next.producer },
        'the new snapshot has another vocabulary: rows tokenized before the swap are tokenized again (give every trainer one tokenizer.path)',
      );
    }
    this.#logLoaded(first ?? 'swapped to a newer model snapshot');
  }

  #logLoaded(what: string): void {
    const s = this.#current.snapshot!;
    this.#logger.info({ producer: s.producer, modelVersion: s.modelVersion, rowsSeen: s.rowsSeen, publishedAt: new Date(s.publishedAtMs).toISOString() }, what);
  }

}

/** The model side of the pipeline, seen through the scorer's current snapshot (metrics read it at scrape time). */
function scorerParts(scorer: SnapshotScorer, backend: ModelParts['backend']): ModelParts {
  return {
    backend,
    get tokenizer() {
      return scorer.tokenizer;
    },
    get learner() {
      return scorer.learner;
    },
    vocabulary: scorer.vocabulary,
    // A scorer's model lives on the snapshot topic; nothing of its own to keep.
    checkpoint: () => Promise.resolve(null),
    lastCheckpointAtMs: null,
  };
}

function newestOf(snapshots: readonly ModelSnapshot[]): ModelSnapshot | null {
  return snapshots.reduce<ModelSnapshot | null>((a, b) => (a === null || b.publishedAtMs > a.publishedAtMs ? b : a), null);
}

async function load(config: Readonly<PipelineConfig>, snapshot: ModelSnapshot): Promise<Loaded> {
  const learner = await PrequentialLearner.fromCheckpoint(snapshot, { network: pipelineNetwork(config) });
  return { learner, tokenizer: Tokenizer.fromJSON(snapshot.tokenizer as TokenizerJSON), snapshot };
}

async function untrained(config: Readonly<PipelineConfig>): Promise<Loaded> {
  return { learner: PrequentialLearner.create({ network: pipelineNetwork(config) }), tokenizer: await makeTokenizer(config), snapshot: null };
}
