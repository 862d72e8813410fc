import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize, type Sample } from '../../bench/soak/samples.js';

const MIB = 2 ** 20;

/**
 * A worker sampled every 10 s for 15 minutes, warm after the first 100 000 messages: heap
 * used climbing 15 MiB per sample from 80 MiB until a major collection, which comes after
 * 4 to 12 samples (a seeded draw), as in the soak runs; plus `leakMiBPerSecond` that is
 * never collected.
 */
function run(leakMiBPerSecond: number, seed = 3): Sample[] {
  let state = seed;
  const draw = (): number => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  let untilCollection = 0;
  let garbage = 0;
  return Array.from({ length: 90 }, (_, i) => {
    const seconds = 10 * (i + 1);
    if (untilCollection-- <= 0) {
      garbage = 0;
      untilCollection = 4 + Math.floor(draw() * 9);
    } else garbage += 15 * MIB;
    const leak = leakMiBPerSecond * seconds * MIB;
    return {
      seconds,
      committed: seconds * 2000,
      rowsWritten: seconds * 2000,
      rssBytes: 350 * MIB + garbage + leak,
      heapUsedBytes: 80 * MIB + garbage + leak,
      liveTensors: 20,
    };
  });
}

test('should pass a flat sawtooth that one-minute windows would have failed', () => {
  const samples = run(0);
  const summary = summarize(samples, 100_000);
  assert.equal(summary.windowSamples, 28, 'a third of the 86 samples from the end of warm-up (50 s) on');
  assert.equal(summary.series.heapUsedBytes.growth, 0, 'the lows after a collection stay at 80 MiB');
  assert.ok(Math.abs(summary.series.rssBytes.growth!) < 0.05, `RSS growth ${summary.series.rssBytes.growth}`);
  assert.deepEqual(summary.memoryFailures, []);
  // What the old measure saw: the mean of the last 7 samples over the first 7 after warm-up.
  const warm = samples.filter((s) => s.committed >= 100_000);
  const mean = (xs: Sample[]): number => xs.reduce((a, s) => a + s.heapUsedBytes!, 0) / xs.length;
  assert.ok(Math.abs(mean(warm.slice(-7)) / mean(warm.slice(0, 7)) - 1) > 0.1, 'the fixture is noisy enough to fool one-minute windows');
});

test('should fail a worker that keeps what it allocates', () => {
  const summary = summarize(run(0.1), 100_000);
  assert.ok(summary.series.heapUsedBytes.growth! > 0.5, `heap growth ${summary.series.heapUsedBytes.growth}`);
  assert.ok(summary.series.rssBytes.growth! > 0.1, `RSS growth ${summary.series.rssBytes.growth}`);
  assert.match(summary.memoryFailures.join('\n'), /heapUsedBytes grew/);
  assert.match(summary.memoryFailures.join('\n'), /rssBytes grew/);
});
