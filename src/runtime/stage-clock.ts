import type { PipelineMetrics, Stage } from '../metrics/definitions.js';

export interface StageTotals {
  input: number;
  output: number;
  seconds: number;
}

/**
 * Times each stage's work per batch: feeds the Prometheus histogram and keeps totals
 * for the end-of-run summary (rows/s per stage = output rows / seconds in that stage).
 */
export class StageClock {
  readonly totals = new Map<Stage, StageTotals>();
  readonly #metrics: PipelineMetrics;

  constructor(metrics: PipelineMetrics) {
    this.#metrics = metrics;
  }

  async time<T>(stage: Stage, input: number, work: () => Promise<T> | T, outputOf: (result: T) => number): Promise<T> {
    const start = process.hrtime.bigint();
    const result = await work();
    this.record(stage, input, outputOf(result), Number(process.hrtime.bigint() - start) / 1e9);
    return result;
  }

  record(stage: Stage, input: number, output: number, seconds: number): void {
    const totals = this.totals.get(stage) ?? { input: 0, output: 0, seconds: 0 };
    totals.input += input;
    totals.output += output;
    totals.seconds += seconds;
    this.totals.set(stage, totals);
    this.#metrics.observeStage(stage, input, output, seconds);
  }
}
