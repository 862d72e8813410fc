/**
 * Timing and summary helpers shared by every bench measurement. A figure is always the
 * median of several timed repetitions: on a shared 2-core machine one slow window (a
 * neighbour's burst, a GC) moves a median much less than a mean.
 */
import { withCpu, type CpuWindow } from './cpu.js';

/** Median of a non-empty list (mean of the two middle values for an even length). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface RateOptions {
  /** Timed repetitions; one rate each. */
  reps: number;
  /** Minimum length of one repetition: `step` is called until this much time has passed (at least once). */
  seconds: number;
  /**
   * Untimed calls first: the first call compiles kernels, allocates optimiser state and
   * warms the JIT, none of which a long-running pipeline pays per batch.
   */
  warmup: number;
}

/**
 * Calls `step` (which returns how many rows it handled) repeatedly and returns one
 * rows-per-second figure per repetition.
 */
export async function measureRate(step: () => Promise<number> | number, opts: RateOptions): Promise<number[]> {
  return (await measureRateAndCpu(step, opts)).map((r) => r.rate);
}

/** As measureRate, with this process's CPU share of all cores during each repetition (bench/cpu.ts). */
export async function measureRateAndCpu(step: () => Promise<number> | number, opts: RateOptions): Promise<{ rate: number; cpu: CpuWindow }[]> {
  for (let i = 0; i < opts.warmup; i++) await step();
  const out: { rate: number; cpu: CpuWindow }[] = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    let rows = 0;
    const { cpu } = await withCpu(async () => {
      const start = performance.now();
      do rows += await step();
      while (performance.now() - start < opts.seconds * 1000);
    });
    out.push({ rate: rows / cpu.wallSeconds, cpu });
  }
  return out;
}

/** A number as the table prints it: whole numbers from 100 up, else three significant digits. */
export function formatFigure(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return Math.round(value).toString();
  return Number(value.toPrecision(3)).toString();
}
