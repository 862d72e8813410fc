/**
 * The shape of a bench result: what `--json` prints and what the table is rendered from.
 * Every figure keeps its per-repetition runs next to the median, so a reader can see the
 * spread that a single number hides.
 */
import { median } from './stats.js';

export interface Row {
  /** Stable name: the table prints it and test/bench/bench.test.ts looks rows up by it. */
  name: string;
  unit: string;
  /** Median of `runs`; null when the row was skipped. */
  value: number | null;
  runs: number[];
  /** Why there is no figure (a flag, a broker that would not start, a missing package). */
  skipped?: string;
  note?: string;
}

export function measuredRow(name: string, unit: string, runs: readonly number[], note?: string): Row {
  const usable = runs.filter((r) => Number.isFinite(r) && r > 0);
  if (usable.length === 0) return skippedRow(name, unit, `no usable measurement (runs: ${runs.join(', ')})`);
  return { name, unit, value: median(usable), runs: [...runs], ...(note === undefined ? {} : { note }) };
}

export function skippedRow(name: string, unit: string, reason: string, note?: string): Row {
  return { name, unit, value: null, runs: [], skipped: reason, ...(note === undefined ? {} : { note }) };
}

/** The first line of an error, for a "skipped: <reason>" cell. */
export function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';
}

/** ours / Keras for one measure; both names refer to rows of the result. */
export interface Ratio {
  name: string;
  ours: string;
  keras: string;
  /** null when either side has no figure. */
  value: number | null;
}

/** One model figure against the machine's compute limit. */
export interface LimitRow {
  name: string;
  samplesPerSec: number;
  flopsPerSample: number;
  /** samplesPerSec × flopsPerSample / peak FLOP/s. */
  fraction: number;
}

export function ratioOf(name: string, ours: Row | undefined, keras: Row | undefined): Ratio {
  const value = ours?.value != null && keras?.value != null ? ours.value / keras.value : null;
  return { name, ours: ours?.name ?? '?', keras: keras?.name ?? '?', value };
}
