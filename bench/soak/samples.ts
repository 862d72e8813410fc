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

/** RSS and heap may grow this much after warm-up (see `summarize`). */
export const MAX_GROWTH = 0.1;
/** Growth compares the first and the last this much of the samples after warm-up. */
export const GROWTH_WINDOW_FRACTION = 1 / 3;

export interface SeriesSummary {
  /** The first sample that has a value. */
  start: number | null;
  /** The first sample taken once the warm-up was committed. */
  warmup: number | null;
  /** The last sample (every message committed). */
  end: number | null;
  max: number | null;
  /**
   * The last third of the samples after warm-up against the first, − 1: their lowest
   * values for heap used, their means for the rest; null without samples.
   */
  growth: number | null;
}

export interface SoakSummary {
  series: Record<Series, SeriesSummary>;
  /** When the warm-up was committed (seconds since the worker started); null: never. */
  warmupSeconds: number | null;
  /** Samples in each of the two windows compared (a third of those after warm-up, at least one). */
  windowSamples: number;
  /** Why the memory verdict is FAIL; empty: PASS. */
  memoryFailures: string[];
}

/**
 * Why thirds, and the heap's lowest values: heap used climbs 2–3× between major
 * collections, so a window's mean depends on where the collections fell. With the
 * one-minute windows (7 samples) this used to compare, a 1 000 000-message run measured
 * +15.7 % while its post-collection lows fell 10 %; a 2 000 000-message run measured
 * +2.8 %. The lowest heap after a collection is the live set, which a leak raises. RSS
 * keeps pages the allocator holds, with a smaller swing: its mean over a third of the run
 * (both runs: +7.3 %, −4.3 %) is steady enough.
 */
export function summarize(samples: readonly Sample[], warmupMessages: number): SoakSummary {
  const warm = samples.find((s) => s.committed >= warmupMessages);
  const warmupSeconds = warm?.seconds ?? null;
  const measured = warm === undefined ? [] : samples.filter((s) => s.seconds >= warm.seconds);
  const windowSamples = measured.length === 0 ? 0 : Math.max(1, Math.floor(measured.length * GROWTH_WINDOW_FRACTION));
  const afterWarmup = measured.slice(0, windowSamples);
  const last = measured.slice(measured.length - windowSamples);
  const series = Object.fromEntries(
    Series.map((name) => {
      const values = samples.map((s) => s[name]).filter((v): v is number => v !== null);
      const level = name === 'heapUsedBytes' ? lowest : mean;
      const before = level(afterWarmup.map((s) => s[name]));
      const after = level(last.map((s) => s[name]));
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
    windowSamples,
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

function lowest(values: readonly (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : Math.min(...present);
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
