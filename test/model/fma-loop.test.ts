/**
 * The addon's FMA loop, which the bench measures the machine's peak with: per ISA it can
 * run here, the FLOP count it reports is the work the loop really did (its accumulators
 * count their FMAs), scales with the iteration count and the threads, and the peak the
 * bench derives from it is a positive finite figure. Nothing here is timed against a
 * threshold: the machine is shared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measurePeak, peakOfAllCores } from '../../bench/machine.js';
import { fmaLoop, fmaLoopIsas, fusedLstmUnavailableReason } from '../../src/model/fused-lstm.js';

const addon = fusedLstmUnavailableReason() === null;

test('should offer an FMA loop for each vector ISA the CPU has', { skip: !addon && 'fused LSTM addon not built' }, () => {
  const isas = fmaLoopIsas();
  assert.ok(isas.length > 0, 'at least one ISA on x86-64');
  for (const isa of isas) assert.ok(['avx512', 'avx2'].includes(isa), isa);
  assert.throws(() => fmaLoop('no-such-isa', 10, 1), /not available here/);
});

test('should report as FLOPs exactly the FMAs its accumulators counted, scaling with iterations and threads', { skip: !addon && 'fused LSTM addon not built' }, () => {
  for (const isa of fmaLoopIsas()) {
    const base = fmaLoop(isa, 1000, 1);
    assert.equal(base.flop, 2 * 1000 * base.accumulators * base.lanes, `${isa}: 2 FLOP per lane per FMA`);
    assert.equal(base.fmas * 2, base.flop, `${isa}: the accumulators counted every FMA`);
    for (const [iterations, threads] of [[2000, 1], [1000, 2], [3000, 2]] as const) {
      const run = fmaLoop(isa, iterations, threads);
      assert.equal(run.flop, base.flop * (iterations / 1000) * threads, `${isa} × ${iterations} × ${threads}`);
      assert.equal(run.fmas * 2, run.flop, `${isa} × ${iterations} × ${threads}: counted`);
      assert.ok(Number.isFinite(run.seconds) && run.seconds > 0);
    }
    // With one = 0 every accumulator stays 0: the count comes from the loop's arithmetic.
    assert.equal(fmaLoop(isa, 1000, 2, 0).fmas, 0);
  }
});

test('should measure a positive finite peak per ISA on one thread and on all cores', { skip: !addon && 'fused LSTM addon not built' }, () => {
  const peak = measurePeak(2, { windowMs: 5, windows: 2 });
  assert.equal(peak.unavailable, null);
  assert.deepEqual(
    peak.runs.map((r) => `${r.isa}×${r.threads}`),
    fmaLoopIsas().flatMap((isa) => [`${isa}×1`, `${isa}×2`]),
  );
  for (const run of peak.runs) assert.ok(Number.isFinite(run.gflops) && run.gflops > 0, `${run.isa}×${run.threads}: ${run.gflops}`);
  const all = peakOfAllCores(peak, 2)!;
  assert.equal(all.threads, 2);
  assert.equal(all.gflops, Math.max(...peak.runs.filter((r) => r.threads === 2).map((r) => r.gflops)));
});
