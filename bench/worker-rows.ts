/**
 * The whole-worker table: each workload (clean alone, replay end to end, one Kafka worker
 * of role `all`, one Kafka scorer) per `clean.threads` setting, with the CPU share of the
 * measured process next to its throughput, and for Kafka the start-up kept out of the
 * figure and the exactly-once check of every run.
 */
import type { CpuWindow } from './cpu.js';
import { median } from './stats.js';

export const Workloads = {
  CLEAN: 'clean',
  REPLAY_SCORE: 'replay, score only',
  REPLAY_SCORE_AND_TRAIN: 'replay, score + train',
  KAFKA_ALL: 'Kafka worker, role all',
  KAFKA_SCORE: 'Kafka scorer, role score',
} as const;
export type Workload = (typeof Workloads)[keyof typeof Workloads];

export interface WorkerRow {
  workload: Workload;
  /** 0: cleaning on the main thread. */
  cleanThreads: number;
  unit: string;
  /** Median of `runs`; null when skipped. */
  value: number | null;
  runs: number[];
  /** Median share of all cores the measured process used while `value` was measured, 0–1. */
  cpu: number | null;
  cpuRuns: number[];
  /**
   * Median rows per CPU-second of the measured process (rate / (share × cores)): on a
   * shared machine, where other work takes cores away, this moves much less than the rate.
   */
  perCpuSecond: number | null;
  /** Median busy share of the whole machine in the same windows (other processes included), 0–1. */
  machine: number | null;
  /** Kafka: median seconds from spawning the worker to its first record (outside `value`). */
  startupSeconds: number | null;
  /** Kafka: "yes (3 of 3 runs)", or what was wrong; null for in-process workloads. */
  exactlyOnce: string | null;
  skipped?: string;
  note?: string;
}

export interface WorkerMeasure {
  rate: number;
  /** Null when the CPU time could not be read. */
  cpu: CpuWindow | null;
}

const medianOrNull = (values: readonly number[]): number | null => (values.length === 0 ? null : median(values));

export function measuredWorkerRow(
  workload: Workload,
  cleanThreads: number,
  unit: string,
  measures: readonly WorkerMeasure[],
  extra: { startupSeconds?: number | null; exactlyOnce?: string | null; note?: string } = {},
): WorkerRow {
  const runs = measures.map((m) => m.rate);
  const usable = runs.filter((r) => Number.isFinite(r) && r > 0);
  if (usable.length === 0) return skippedWorkerRow(workload, cleanThreads, unit, `no usable measurement (runs: ${runs.join(', ')})`);
  const cpuRuns = measures.flatMap((m) => (m.cpu === null ? [] : [m.cpu.share]));
  const machineRuns = measures.flatMap((m) => (m.cpu?.machineShare == null ? [] : [m.cpu.machineShare]));
  return {
    workload,
    cleanThreads,
    unit,
    value: median(usable),
    runs,
    cpu: medianOrNull(cpuRuns),
    cpuRuns,
    machine: medianOrNull(machineRuns),
    perCpuSecond: medianOrNull(measures.flatMap((m) => (m.cpu === null || m.cpu.share <= 0 ? [] : [m.rate / (m.cpu.share * m.cpu.cores)]))),
    startupSeconds: extra.startupSeconds ?? null,
    exactlyOnce: extra.exactlyOnce ?? null,
    ...(extra.note === undefined ? {} : { note: extra.note }),
  };
}

export function skippedWorkerRow(workload: Workload, cleanThreads: number, unit: string, reason: string): WorkerRow {
  return { workload, cleanThreads, unit, value: null, runs: [], cpu: null, cpuRuns: [], machine: null, perCpuSecond: null, startupSeconds: null, exactlyOnce: null, skipped: reason };
}
