/**
 * Data-parallel trainers (`--role train`, `snapshots.average: true`) average their model
 * with the other trainers' latest snapshots before each publish: federated averaging
 * weighted by the rows each trained since the previous average. Rounds are not
 * synchronised: each trainer averages with what the others last published.
 */
import type { Logger } from 'pino';
import type { Kafka } from '../kafka/types.js';
import { applyAverage, federatedAverage, modelWeightsOf, type AverageInput } from '../model/averaging.js';
import type { PrequentialLearner } from '../model/learner.js';
import { SnapshotWatcher } from '../snapshots/reader.js';

export class PeerAverager {
  readonly #watcher: SnapshotWatcher;
  readonly #self: string;
  readonly #logger: Logger;
  /** Rows trained, per trainer (this one included), when its model last went into an average. */
  readonly #rowsAtLastAverage = new Map<string, number>();

  private constructor(watcher: SnapshotWatcher, self: string, logger: Logger) {
    this.#watcher = watcher;
    this.#self = self;
    this.#logger = logger;
  }

  static async start(kafka: Kafka, topic: string, self: string, logger: Logger): Promise<PeerAverager> {
    const watcher = await SnapshotWatcher.start(kafka, topic, {
      // Read when averaging (latest()); nothing to do on arrival.
      onSnapshot: () => undefined,
      onIgnored: (ignored) => logger.warn(ignored, ignored.message),
      onError: (error) => logger.error({ err: error.message }, 'the snapshot topic reader stopped; training goes on without averaging'),
    });
    const averager = new PeerAverager(watcher, self, logger);
    // Peers' models as they are now were learnt before this trainer's rows: they count from here.
    for (const s of watcher.initial.snapshots) averager.#rowsAtLastAverage.set(s.producer, s.metrics?.trainedRows ?? 0);
    return averager;
  }

  /**
   * Replaces the learner's weights (not its optimizer state) by the rows-weighted average
   * of its own and every peer's latest model; does nothing when no peer trained since the
   * last average.
   */
  async averageInto(learner: PrequentialLearner): Promise<void> {
    const ownRows = learner.evaluation().trainedRows;
    const peers = this.#watcher
      .latest()
      .filter((s) => s.producer !== this.#self && s.metrics !== null)
      .map((s) => ({ snapshot: s, rows: s.metrics!.trainedRows - (this.#rowsAtLastAverage.get(s.producer) ?? 0) }))
      .filter((p) => p.rows > 0);
    if (peers.length === 0) return;
    const inputs: AverageInput[] = [
      { weights: modelWeightsOf(learner), rows: Math.max(0, ownRows - (this.#rowsAtLastAverage.get(this.#self) ?? 0)) },
      ...peers.map((p) => ({ weights: modelWeightsOf(p.snapshot), rows: p.rows })),
    ];
    await applyAverage(learner, federatedAverage(inputs));
    this.#rowsAtLastAverage.set(this.#self, ownRows);
    for (const p of peers) this.#rowsAtLastAverage.set(p.snapshot.producer, p.snapshot.metrics!.trainedRows);
    this.#logger.info(
      { peers: peers.map((p) => ({ producer: p.snapshot.producer, modelVersion: p.snapshot.modelVersion, rows: p.rows })), ownRows: inputs[0]!.rows },
      `averaged the model with ${peers.length} other trainer(s)`,
    );
  }

  close(): Promise<void> {
    return this.#watcher.close();
  }
}
