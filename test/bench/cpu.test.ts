import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuAt, cpuWindow, formatShare, sampledWindow, withCpu, type CpuSample } from '../../bench/cpu.js';

const samples: CpuSample[] = [
  { atMs: 1_000, cpuSeconds: 10, machineBusySeconds: 100 },
  { atMs: 2_000, cpuSeconds: 11, machineBusySeconds: 102 },
  { atMs: 4_000, cpuSeconds: 11.5, machineBusySeconds: 103 },
];

test('should interpolate CPU seconds between samples and clamp outside them', () => {
  assert.equal(cpuAt(samples, 500), 10);
  assert.equal(cpuAt(samples, 1_500), 10.5);
  assert.equal(cpuAt(samples, 3_000), 11.25);
  assert.equal(cpuAt(samples, 9_000), 11.5);
  assert.equal(cpuAt([], 1_000), null);
  assert.equal(cpuAt(samples, 3_000, (s) => s.machineBusySeconds), 102.5);
});

test('should give the share of all cores a sampled process and the machine used in a window', () => {
  // 1.5 CPU seconds over 3 wall seconds on 2 cores: a quarter; the machine: 3 of 6.
  const w = sampledWindow(samples, 1_000, 4_000, 2);
  assert.ok(w);
  assert.equal(w.cpuSeconds, 1.5);
  assert.equal(w.wallSeconds, 3);
  assert.equal(w.share, 0.25);
  assert.equal(w.machineShare, 0.5);
  assert.equal(sampledWindow(samples, 4_000, 1_000, 2), null);
  assert.equal(sampledWindow(samples.map((s) => ({ ...s, machineBusySeconds: null })), 1_000, 4_000, 2)?.machineShare, null);
});

test('should refuse a window without wall time', () => {
  assert.throws(() => cpuWindow(1, 0, 2), RangeError);
});

test("should count this process's CPU while work runs, within what its cores could give", async () => {
  const { result, cpu } = await withCpu(() => {
    const until = performance.now() + 200;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    return x;
  });
  assert.ok(result > 0);
  assert.ok(cpu.wallSeconds >= 0.2);
  assert.ok(cpu.cpuSeconds > 0, `a busy loop used CPU: ${cpu.cpuSeconds} s`);
  // One thread spinning cannot use more than the wall time (plus a clock tick of rounding).
  assert.ok(cpu.cpuSeconds <= cpu.wallSeconds + 0.02, `${cpu.cpuSeconds} s of CPU in ${cpu.wallSeconds} s`);
  assert.ok(cpu.share > 0 && cpu.share <= 1);
});

test('should print a share with the machine beside it', () => {
  assert.equal(formatShare(null), '–');
  assert.equal(formatShare(0.474), '47 %');
  assert.equal(formatShare(0.474, 0.981), '47 % (machine 98 %)');
});
