import { Counter, Gauge, Histogram, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/** Stages a message passes through, in data-flow order; the `stage` label's closed set. */
export const Stages = ['source', 'decode', 'clean', 'tokenize', 'batch', 'model', 'sink'] as const;
export type Stage = (typeof Stages)[number];

/** What the model gauges read at scrape time (filled in by the learner's evaluation). */
export interface ModelState {
  backend: string;
  version: number;
  accuracy: number | null;
  auc: number | null;
  logLoss: number | null;
  trainLoss: number | null;
}

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

  constructor(registry: Registry, readModel: () => ModelState | null) {
    const registers = [registry];
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
    new Gauge({
      name: 'textstream_model_backend_info',
      help: 'The tfjs backend running the model (value is always 1).',
      labelNames: ['backend'],
      registers,
      collect() {
        this.reset();
        const state = readModel();
        if (state) this.labels(state.backend).set(1);
      },
    });
  }

  /** Records one stage's work on one batch. */
  observeStage(stage: Stage, input: number, output: number, seconds: number): void {
    this.stageInput.labels(stage).inc(input);
    this.stageOutput.labels(stage).inc(output);
    this.stageDuration.labels(stage).observe(seconds);
  }
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
    const base = await super.get();
    const value = this.#read();
    return { ...base, values: value === null || !Number.isFinite(value) ? [] : [{ value, labels: {} }] };
  }
}
