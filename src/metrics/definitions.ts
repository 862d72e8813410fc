import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import { DeadLetterReasons } from '../message.js';

/** Stages a message passes through, in data-flow order; the `stage` label's closed set. */
export const Stages = ['source', 'decode', 'clean', 'tokenize', 'batch', 'model', 'sink'] as const;
export type Stage = (typeof Stages)[number];

/** How much work the clean stage holds: source batches in flight, and texts not cleaned yet. */
export interface CleanQueueDepth {
  batches: number;
  texts: number;
}

/** What the model gauges read at scrape time (filled in by the learner's evaluation). */
export interface ModelState {
  backend: string;
  /** The LSTM layer in use: 'fused' or 'stock'. */
  lstm: string;
  version: number;
  accuracy: number | null;
  auc: number | null;
  logLoss: number | null;
  trainLoss: number | null;
  /** tf.memory().numTensors: flat over a long run unless something leaks. */
  liveTensors?: number | null;
  /** Calibration over the recent window: mean pre-training score vs fraction of label 1. */
  meanScore?: number | null;
  positiveRate?: number | null;
  /** Seconds since the last successful checkpoint save; null before the first. */
  checkpointAgeSeconds?: number | null;
  /** Training steps rejected for a NaN or infinite loss or gradient (the learner's rejectedUpdates). */
  updatesRejected?: number | null;
}

/** Consumer lag of one assigned partition, as the Kafka source computes it at scrape time. */
export interface PartitionLag {
  topic: string;
  partition: number;
  /** High watermark − the next offset this worker will hand to the pipeline. */
  messages: number;
  /** Now − timestamp of the newest record handed over (0 when caught up); null if unknown. */
  seconds: number | null;
}

/** Histogram buckets for end-to-end latency: 0.1 s … 10 min. */
export const END_TO_END_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600];

/** Prefix of prom-client's process metrics (CPU, RSS, heap, event-loop lag, GC, handles). */
export const PROCESS_METRICS_PREFIX = 'textstream_';

/**
 * Every metric the pipeline exports, registered on the registry the caller passes in
 * (never the global one). Counters and histograms are updated per batch, not per row,
 * on hot paths; point-in-time model gauges are read in `collect()` at scrape time.
 */
export class PipelineMetrics {
  readonly stageInput: Counter<'stage'>;
  readonly stageOutput: Counter<'stage'>;
  readonly stageDuration: Histogram<'stage'>;
  readonly deadLetters: Counter<'reason'>;
  readonly batchRows: Histogram;
  readonly samplesScored: Counter;
  readonly samplesTrained: Counter;
  readonly outputRows: Counter;
  readonly outputBytes: Counter;
  readonly outputFiles: Counter;
  readonly offsetsCommitted: Counter;
  readonly rebalances: Counter;
  readonly backpressurePauses: Counter;
  readonly sinkWriteFailures: Counter<'code'>;
  readonly endToEndLatency: Histogram;
  readonly driftDetected: Counter;
  #readLag: () => readonly PartitionLag[] = () => [];
  #readDriftErrorRate: () => number | null = () => null;
  #readCleanQueue: () => CleanQueueDepth | null = () => null;

  /**
   * `processMetrics: false` leaves out prom-client's process metrics (for registries that
   * already carry them from elsewhere); they are registered at most once per registry.
   */
  constructor(registry: Registry, readModel: () => ModelState | null, options: { processMetrics?: boolean } = {}) {
    const registers = [registry];
    const lagReader = (): readonly PartitionLag[] => this.#readLag();
    this.stageInput = new Counter({
      name: 'textstream_stage_input_messages_total',
      help: 'Messages that entered each pipeline stage.',
      labelNames: ['stage'],
      registers,
    });
    this.stageOutput = new Counter({
      name: 'textstream_stage_output_messages_total',
      help: 'Messages that each pipeline stage passed on (the rest became dead letters).',
      labelNames: ['stage'],
      registers,
    });
    this.stageDuration = new Histogram({
      name: 'textstream_stage_duration_seconds',
      help: 'Time each stage spent on one batch.',
      labelNames: ['stage'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'textstream_dead_letters_total',
      help: 'Messages routed to the dead-letter sink, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.batchRows = new Histogram({
      name: 'textstream_batch_rows',
      help: 'Rows per Arrow batch handed to the model.',
      buckets: [1, 8, 32, 64, 128, 256, 512, 1024, 4096],
      registers,
    });
    this.samplesScored = new Counter({
      name: 'textstream_model_samples_scored_total',
      help: 'Messages scored by the model.',
      registers,
    });
    this.samplesTrained = new Counter({
      name: 'textstream_model_samples_trained_total',
      help: 'Labelled messages the model trained on.',
      registers,
    });
    this.outputRows = new Counter({
      name: 'textstream_output_rows_total',
      help: 'Rows in durable output files.',
      registers,
    });
    this.outputBytes = new Counter({
      name: 'textstream_output_bytes_total',
      help: 'Bytes of durable output files.',
      registers,
    });
    this.outputFiles = new Counter({
      name: 'textstream_output_files_total',
      help: 'Output files made durable (written, flushed, renamed).',
      registers,
    });
    this.offsetsCommitted = new Counter({
      name: 'textstream_offsets_committed_total',
      help: 'Offset commits to the source (after the rows they cover were durable).',
      registers,
    });
    this.rebalances = new Counter({
      name: 'textstream_kafka_rebalances_total',
      help: 'Consumer-group rebalances this worker went through (in-flight rows were dropped and re-read).',
      registers,
    });
    this.backpressurePauses = new Counter({
      name: 'textstream_kafka_backpressure_pauses_total',
      help: 'Times fetching was paused because the pipeline was behind.',
      registers,
    });
    this.sinkWriteFailures = new Counter({
      name: 'textstream_sink_write_failures_total',
      help: 'Failed Parquet write attempts that are retried (nothing is committed meanwhile), by error code.',
      labelNames: ['code'],
      registers,
    });
    this.endToEndLatency = new Histogram({
      name: 'textstream_end_to_end_latency_seconds',
      help: 'From a record\'s source timestamp (Kafka) to the moment its output file became durable.',
      buckets: END_TO_END_BUCKETS,
      registers,
    });
    this.driftDetected = new Counter({
      name: 'textstream_drift_detected_total',
      help: 'Rises of the prequential error rate detected by ADWIN (concept drift).',
      registers,
    });
    new StateGauge('textstream_drift_error_rate', 'The drift detector\'s current error-rate estimate (mean 0/1 error over its adaptive window).', registry, () =>
      this.#readDriftErrorRate(),
    );
    new Gauge({
      name: 'textstream_kafka_consumer_lag_messages',
      help: 'Per assigned partition: high watermark minus the next offset this worker will take.',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const lag of lagReader()) this.labels(lag.topic, String(lag.partition)).set(lag.messages);
      },
    });
    new Gauge({
      name: 'textstream_kafka_consumer_lag_seconds',
      help: 'Per assigned partition: now minus the timestamp of the newest record handed to the pipeline (0 when caught up).',
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const lag of lagReader()) if (lag.seconds !== null) this.labels(lag.topic, String(lag.partition)).set(lag.seconds);
      },
    });
    new StateGauge('textstream_clean_batches_in_flight', 'Source batches handed to the clean stage and not yet taken on to tokenize (bounded by clean.maxBatchesInFlight).', registry, () =>
      this.#readCleanQueue()?.batches ?? null,
    );
    new StateGauge('textstream_clean_pool_queued_texts', 'Texts waiting in, or being cleaned by, the cleaning pool\'s threads (0 with clean.threads 0).', registry, () =>
      this.#readCleanQueue()?.texts ?? null,
    );
    const modelGauge = (name: string, help: string, pick: (s: ModelState) => number | null): void => {
      new StateGauge(name, help, registry, () => {
        const state = readModel();
        return state ? pick(state) : null;
      });
    };
    modelGauge('textstream_model_version', 'Training steps applied to the live model.', (s) => s.version);
    modelGauge('textstream_model_prequential_accuracy', 'Accuracy of scores made before training on them.', (s) => s.accuracy);
    modelGauge('textstream_model_prequential_auc', 'ROC AUC of scores made before training on them.', (s) => s.auc);
    modelGauge('textstream_model_prequential_log_loss', 'Log loss of scores made before training on them.', (s) => s.logLoss);
    modelGauge('textstream_model_train_loss', 'Training loss of the most recent training step.', (s) => s.trainLoss);
    modelGauge('textstream_model_live_tensors', 'Tensors alive in the tfjs engine (tf.memory().numTensors).', (s) => s.liveTensors ?? null);
    modelGauge(
      'textstream_model_mean_score',
      'Mean pre-training score of recent labelled rows (fading window); compare with textstream_model_positive_rate.',
      (s) => s.meanScore ?? null,
    );
    modelGauge('textstream_model_positive_rate', 'Fraction of label 1 among recent labelled rows (same fading window).', (s) => s.positiveRate ?? null);
    modelGauge(
      'textstream_model_checkpoint_age_seconds',
      'Seconds since the last successful checkpoint save (absent before the first).',
      (s) => s.checkpointAgeSeconds ?? null,
    );
    new StateCounter(
      'textstream_model_updates_rejected_total',
      'Training steps rejected (weights and optimiser state left unchanged) because their loss or a gradient was NaN or infinite.',
      registry,
      () => readModel()?.updatesRejected ?? null,
    );
    new Gauge({
      name: 'textstream_model_backend_info',
      help: 'The tfjs backend and the LSTM layer (fused or stock) running the model (value is always 1).',
      labelNames: ['backend', 'lstm'],
      registers,
      collect() {
        this.reset();
        const state = readModel();
        if (state) this.labels(state.backend, state.lstm).set(1);
      },
    });
    // Zeros a dashboard can rely on: a series that exists before its first event.
    for (const stage of Stages) {
      this.stageInput.labels(stage).inc(0);
      this.stageOutput.labels(stage).inc(0);
      this.stageDuration.zero({ stage });
    }
    for (const reason of Object.values(DeadLetterReasons)) this.deadLetters.labels(reason).inc(0);
    if (options.processMetrics !== false) registerProcessMetrics(registry);
  }

  /** Where the consumer-lag gauges read from (the Kafka source); none until set. */
  readLagFrom(read: () => readonly PartitionLag[]): void {
    this.#readLag = read;
  }

  /** Where the drift error-rate gauge reads from (the detector's estimate). */
  readDriftErrorRateFrom(read: () => number | null): void {
    this.#readDriftErrorRate = read;
  }

  /** Where the clean stage's queue-depth gauges read from (the running pipeline). */
  readCleanQueueFrom(read: () => CleanQueueDepth | null): void {
    this.#readCleanQueue = read;
  }

  /** Records one stage's work on one batch. */
  observeStage(stage: Stage, input: number, output: number, seconds: number): void {
    this.stageInput.labels(stage).inc(input);
    this.stageOutput.labels(stage).inc(output);
    this.stageDuration.labels(stage).observe(seconds);
  }
}

/**
 * prom-client's default process metrics (CPU, RSS, heap, event-loop lag, GC, handles) on
 * `registry`, prefixed `textstream_`. Idempotent per registry: registering them twice
 * would throw (a metric name can exist once per registry).
 */
export function registerProcessMetrics(registry: Registry): void {
  if (registry.getSingleMetric(`${PROCESS_METRICS_PREFIX}process_cpu_seconds_total`) !== undefined) return;
  collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  // prom-client also exports the sums of nodejs_active_{handles,requests,resources} as
  // gauges named *_total, a suffix Prometheus reserves for counters (promtool check
  // metrics fails on them). The per-type gauges without the suffix stay.
  for (const kind of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`${PROCESS_METRICS_PREFIX}nodejs_active_${kind}_total`);
}

/** A metric's scrape with `value` as its one sample, or none while there is no finite value. */
function readAtScrape(
  base: MetricObjectWithValues<MetricValue<string>>,
  value: number | null,
): MetricObjectWithValues<MetricValue<string>> {
  return { ...base, values: value === null || !Number.isFinite(value) ? [] : [{ value, labels: {} }] };
}

/**
 * A label-less gauge read at scrape time that exports no sample while it has no value
 * (prom-client's Gauge would export 0, which a dashboard cannot tell from a real 0).
 */
class StateGauge extends Gauge {
  readonly #read: () => number | null;

  constructor(name: string, help: string, registry: Registry, read: () => number | null) {
    super({ name, help, registers: [registry] });
    this.#read = read;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    return readAtScrape(await super.get(), this.#read());
  }
}

/**
 * A label-less counter whose value is a count kept elsewhere (the learner's), read at
 * scrape time like StateGauge instead of incremented here, so the two can never disagree.
 * No sample while there is no model to read.
 */
class StateCounter extends Counter {
  readonly #read: () => number | null;

  constructor(name: string, help: string, registry: Registry, read: () => number | null) {
    super({ name, help, registers: [registry] });
    this.#read = read;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    return readAtScrape(await super.get(), this.#read());
  }
}
