/**
 * The soak run's samples and what they add up to: start, end of warm-up, end and maximum
 * of each memory series, its growth after warm-up, and the verdict.
 */
import type { Reading } from './scrape.js';

export interface Sample extends Reading {
  /** Seconds since the worker started. */
  seconds: number;
  /** Messages the worker's group has committed. */
  committed: number;
}

/** The series a soak run judges. */
export const Series = ['rssBytes', 'heapUsedBytes', 'liveTensors'] as const;
export type Series = (typeof Series)[number];

/** RSS and heap may grow this much after warm-up (mean of the last minute over the first). */
export const MAX_GROWTH = 0.1;
/** The windows compared for growth, in seconds. */
export const GROWTH_WINDOW_SECONDS = 60;

export interface SeriesSummary {
  /** The first sample that has a value. */
  start: number | null;
  /** The first sample taken once the warm-up was committed. */
  warmup: number | null;
  /** The last sample (every message committed). */
  end: number | null;
  max: number | null;
  /**
   * Mean of the samples in the last minute / mean of the samples in the first minute
   * after warm-up − 1; null without samples in either.
   */
  growth: number | null;
}

export interface SoakSummary {
  series: Record<Series, SeriesSummary>;
  /** When the warm-up was committed (seconds since the worker started); null: never. */
  warmupSeconds: number | null;
  /** Samples in the first minute after warm-up and in the last minute. */
  windowSamples: { afterWarmup: number; last: number };
  /** The two windows share samples: the run after warm-up was shorter than two minutes. */
  windowsOverlap: boolean;
  /** Why the memory verdict is FAIL; empty: PASS. */
  memoryFailures: string[];
}

export function summarize(samples: readonly Sample[], warmupMessages: number): SoakSummary {
  const warm = samples.find((s) => s.committed >= warmupMessages);
  const warmupSeconds = warm?.seconds ?? null;
  const endSeconds = samples.at(-1)?.seconds ?? 0;
  const afterWarmup = warm === undefined ? [] : samples.filter((s) => s.seconds >= warm.seconds && s.seconds < warm.seconds + GROWTH_WINDOW_SECONDS);
  const last = warm === undefined ? [] : samples.filter((s) => s.seconds >= warm.seconds && s.seconds > endSeconds - GROWTH_WINDOW_SECONDS);
  const series = Object.fromEntries(
    Series.map((name) => {
      const values = samples.map((s) => s[name]).filter((v): v is number => v !== null);
      const before = mean(afterWarmup.map((s) => s[name]));
      const after = mean(last.map((s) => s[name]));
      const summary: SeriesSummary = {
        start: values[0] ?? null,
        warmup: warm?.[name] ?? null,
        end: samples.at(-1)?.[name] ?? null,
        max: values.length === 0 ? null : Math.max(...values),
        growth: before === null || after === null || before === 0 ? null : after / before - 1,
      };
      return [name, summary];
    }),
  ) as Record<Series, SeriesSummary>;
  return {
    series,
    warmupSeconds,
    windowSamples: { afterWarmup: afterWarmup.length, last: last.length },
    windowsOverlap: afterWarmup.some((s) => last.includes(s)),
    memoryFailures: memoryFailures(series),
  };
}

function memoryFailures(series: Record<Series, SeriesSummary>): string[] {
  const failures: string[] = [];
  for (const name of ['rssBytes', 'heapUsedBytes'] as const) {
    const growth = series[name].growth;
    if (growth === null) failures.push(`${name}: no samples to measure growth after warm-up`);
    else if (growth >= MAX_GROWTH) failures.push(`${name} grew ${(growth * 100).toFixed(1)} % after warm-up (limit ${MAX_GROWTH * 100} %)`);
  }
  const tensors = series.liveTensors;
  if (tensors.warmup === null || tensors.end === null) failures.push('liveTensors: no value at the end of warm-up or at the end');
  else if (tensors.end !== tensors.warmup) failures.push(`liveTensors went from ${tensors.warmup} at the end of warm-up to ${tensors.end} at the end`);
  return failures;
}

function mean(values: readonly (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

export const CSV_HEADER = 'seconds,committed,rows_written,rss_bytes,heap_used_bytes,live_tensors\n';

export function csvLine(s: Sample): string {
  const cell = (v: number | null): string => (v === null ? '' : String(v));
  return `${s.seconds.toFixed(1)},${s.committed},${cell(s.rowsWritten)},${cell(s.rssBytes)},${cell(s.heapUsedBytes)},${cell(s.liveTensors)}\n`;
}
