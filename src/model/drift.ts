/**
 * Concept-drift detection over the prequential 0/1 error stream with ADWIN2 (Bifet and
 * Gavaldà 2007): O(log W) memory and time per update. The bound, its correction, the
 * defaults and what they detect, measured: docs/operations.md, "Drift detection".
 */
import { InputError } from '../errors.js';

export interface AdwinOptions {
  /** Confidence δ: smaller means fewer false alarms and slower detection (default 0.002). */
  delta?: number;
  /** Buckets of each size kept before two are merged (the paper's M; default 5). */
  maxBuckets?: number;
  /** Look for a cut every this many updates (default 32). */
  clock?: number;
  /** Fewest rows on either side of a cut (default 5). */
  minSubWindow?: number;
}

interface Bucket {
  total: number;
  /** Sum of squared deviations from the bucket's mean. */
  variance: number;
}

export class Adwin {
  readonly #delta: number;
  readonly #maxBuckets: number;
  readonly #clock: number;
  readonly #minSub: number;
  /** levels[i]: buckets of 2^i rows, oldest first; higher levels are older. */
  #levels: Bucket[][] = [];
  #width = 0;
  #total = 0;
  #variance = 0;
  #ticks = 0;
  #detections = 0;
  #lastChange: 'increase' | 'decrease' | null = null;

  constructor(options: AdwinOptions = {}) {
    this.#delta = options.delta ?? 0.002;
    this.#maxBuckets = options.maxBuckets ?? 5;
    this.#clock = options.clock ?? 32;
    this.#minSub = options.minSubWindow ?? 5;
    if (!(this.#delta > 0 && this.#delta < 1)) throw new InputError('delta must be in (0, 1)');
    if (!Number.isInteger(this.#maxBuckets) || this.#maxBuckets < 2) throw new InputError('maxBuckets must be an integer >= 2');
    if (!Number.isInteger(this.#clock) || this.#clock < 1) throw new InputError('clock must be a positive integer');
    if (!Number.isInteger(this.#minSub) || this.#minSub < 1) throw new InputError('minSubWindow must be a positive integer');
  }

  /** Rows in the current window. */
  get width(): number {
    return this.#width;
  }

  /** The window's mean (the error-rate estimate), null while the window is empty. */
  get estimate(): number | null {
    return this.#width > 0 ? this.#total / this.#width : null;
  }

  /** Changes detected so far (either direction). */
  get detections(): number {
    return this.#detections;
  }

  /**
   * Direction of the most recent change: 'increase' when the window's mean rose (for an
   * error stream: the model got worse, a drift worth an alarm), 'decrease' when it fell
   * (e.g. a fresh model learning). Null before the first change.
   */
  get lastChange(): 'increase' | 'decrease' | null {
    return this.#lastChange;
  }

  /** Adds one value (for an error stream: 1 = wrong, 0 = right); true when a change (either way) was detected. */
  update(value: number): boolean {
    if (this.#width > 0) {
      const mean = this.#total / this.#width;
      this.#variance += (this.#width * (value - mean) ** 2) / (this.#width + 1);
    }
    this.#width++;
    this.#total += value;
    const level0 = (this.#levels[0] ??= []);
    level0.push({ total: value, variance: 0 });
    this.#compress();
    if (++this.#ticks % this.#clock !== 0 || this.#width < 2 * this.#minSub) return false;
    const before = this.#total / this.#width;
    const changed = this.#cut();
    if (changed) {
      this.#detections++;
      // The cut drops the oldest rows, so the mean rises exactly when they were lower.
      this.#lastChange = this.#width > 0 && this.#total / this.#width > before ? 'increase' : 'decrease';
    }
    return changed;
  }

  /** Merges the two oldest buckets of a level into one of the next while a level is over-full. */
  #compress(): void {
    for (let i = 0; i < this.#levels.length; i++) {
      const level = this.#levels[i]!;
      if (level.length <= this.#maxBuckets) break;
      const a = level.shift()!;
      const b = level.shift()!;
      const n = 2 ** i;
      const diff = a.total / n - b.total / n;
      const merged = { total: a.total + b.total, variance: a.variance + b.variance + (n * n * diff * diff) / (2 * n) };
      (this.#levels[i + 1] ??= []).push(merged);
    }
  }

  /** Drops the oldest buckets while some split of the window has significantly different means. */
  #cut(): boolean {
    let changed = false;
    for (;;) {
      if (!this.#hasCut()) return changed;
      changed = true;
      this.#dropOldest();
    }
  }

  #hasCut(): boolean {
    const n = this.#width;
    const sigma2 = this.#variance / n;
    const lnTerm = Math.log((2 * Math.log(n)) / this.#delta);
    let n0 = 0;
    let t0 = 0;
    // Oldest to newest: the highest level first, each level oldest first.
    for (let i = this.#levels.length - 1; i >= 0; i--) {
      const size = 2 ** i;
      for (const bucket of this.#levels[i]!) {
        n0 += size;
        t0 += bucket.total;
        const n1 = n - n0;
        if (n1 < this.#minSub) return false;
        if (n0 < this.#minSub) continue;
        const mInv = 1 / (n0 - this.#minSub + 1) + 1 / (n1 - this.#minSub + 1);
        const eps = Math.sqrt(2 * mInv * sigma2 * lnTerm) + (2 / 3) * mInv * lnTerm;
        if (Math.abs(t0 / n0 - (this.#total - t0) / n1) > eps) return true;
      }
    }
    return false;
  }

  #dropOldest(): void {
    const top = this.#levels.length - 1;
    const bucket = this.#levels[top]!.shift()!;
    if (this.#levels[top]!.length === 0) this.#levels.pop();
    const size = 2 ** top;
    const rest = this.#width - size;
    if (rest === 0) {
      this.#levels = [];
      this.#width = 0;
      this.#total = 0;
      this.#variance = 0;
      return;
    }
    const restMean = (this.#total - bucket.total) / rest;
    const diff = bucket.total / size - restMean;
    this.#variance = Math.max(0, this.#variance - bucket.variance - (size * rest * diff * diff) / (size + rest));
    this.#width = rest;
    this.#total -= bucket.total;
  }
}
