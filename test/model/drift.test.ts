import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adwin } from '../../src/model/drift.js';
import { InputError } from '../../src/errors.js';
import { mulberry32 } from '../../src/random.js';

function bernoulli(seed: number): (p: number) => number {
  const random = mulberry32(seed);
  return (p) => (random() < p ? 1 : 0);
}

test('should raise no alarm on a stationary error stream (20 000 rows at p = 0.1)', () => {
  // A fixed seed: with δ = 0.002 about 1 in 100 such streams raises one false alarm
  // (measured over seeds 1–100), which is the rate ADWIN's δ allows for, not a bug.
  const next = bernoulli(1);
  const adwin = new Adwin();
  let alarms = 0;
  for (let i = 0; i < 20_000; i++) if (adwin.update(next(0.1))) alarms++;
  assert.equal(alarms, 0);
  assert.equal(adwin.width, 20_000, 'nothing was cut off');
  assert.ok(Math.abs(adwin.estimate! - 0.1) < 0.01, `estimate ${adwin.estimate}`);
});

test('should detect a jump from p = 0.1 to 0.4 within a bounded delay and then track the new rate', () => {
  for (const seed of [7, 8, 9]) {
    const next = bernoulli(seed);
    const adwin = new Adwin();
    for (let i = 0; i < 5_000; i++) assert.equal(adwin.update(next(0.1)), false, `false alarm at ${i} (seed ${seed})`);
    let delay = -1;
    for (let i = 0; i < 5_000; i++) {
      if (adwin.update(next(0.4)) && delay < 0) delay = i;
    }
    assert.ok(delay >= 0 && delay < 300, `detected after ${delay} rows (seed ${seed})`);
    assert.ok(adwin.detections >= 1);
    assert.equal(adwin.lastChange, 'increase');
    // The stale p = 0.1 part is cut off: the window now holds (mostly) the new regime.
    assert.ok(adwin.width < 5_000 + 300, `width ${adwin.width}`);
    assert.ok(Math.abs(adwin.estimate! - 0.4) < 0.03, `estimate ${adwin.estimate} (seed ${seed})`);
  }
});

test('should keep the window mean equal to the mean of the values it holds', () => {
  const next = bernoulli(42);
  const adwin = new Adwin();
  let sum = 0;
  for (let i = 0; i < 1_000; i++) {
    const x = next(0.3);
    sum += x;
    adwin.update(x);
  }
  assert.equal(adwin.width, 1_000);
  assert.ok(Math.abs(adwin.estimate! - sum / 1_000) < 1e-12);
  assert.equal(new Adwin().estimate, null);
});

test('should reject invalid options', () => {
  assert.throws(() => new Adwin({ delta: 0 }), InputError);
  assert.throws(() => new Adwin({ maxBuckets: 1 }), InputError);
  assert.throws(() => new Adwin({ clock: 0 }), InputError);
});

test('should weigh at most maxBuckets · (log2 W + 1) splits every 32nd update (work counted, not timed)', (t) => {
  const next = bernoulli(5);
  const values = Array.from({ length: 200_000 }, () => next(0.2));
  const adwin = new Adwin();
  // Each split the cut test weighs takes one square root (its ε_cut), so counting
  // Math.sqrt counts the work; a scan of the whole window would weigh ≈ W splits. The
  // speed this buys is a benchmark's to measure, not a unit test's.
  const sqrt = t.mock.method(Math, 'sqrt');
  for (const v of values) adwin.update(v);
  const splits = sqrt.mock.callCount();
  sqrt.mock.restore();
  assert.equal(adwin.detections, 0, 'a stationary stream: no cut, so no scan repeats');
  assert.equal(adwin.width, values.length);
  const scans = values.length / 32;
  // The exponential histogram keeps at most maxBuckets (5) buckets of each size 2^i ≤ W.
  const bucketsHeld = 5 * (Math.floor(Math.log2(values.length)) + 1);
  assert.ok(splits > 0, 'the cut test ran');
  assert.ok(splits <= scans * bucketsHeld, `${splits} splits weighed in ${scans} scans`);
});

test('should tell a falling error rate (a model learning) from a rising one', () => {
  const next = bernoulli(11);
  const adwin = new Adwin();
  let changes = 0;
  for (let i = 0; i < 3_000; i++) if (adwin.update(next(0.4))) changes++;
  for (let i = 0; i < 3_000; i++) if (adwin.update(next(0.1))) changes++;
  assert.ok(changes >= 1);
  assert.equal(adwin.lastChange, 'decrease');
});
