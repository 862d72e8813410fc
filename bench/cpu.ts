/**
 * CPU utilisation of a measured process: user + system CPU seconds (every thread: the
 * fused LSTM's, libuv's, a cleaning pool's) over the wall seconds of the same window, as a
 * share of the machine's cores. 1.0 means every core busy for the whole window; a
 * single-threaded stage on 2 cores tops out at 0.5.
 */
import os from 'node:os';
import { machineCpu } from './scorers/process.js';

export interface CpuWindow {
  wallSeconds: number;
  cpuSeconds: number;
  /** cpuSeconds / (wallSeconds × cores), 0–1 (slightly above 1 only by rounding of /proc ticks). */
  share: number;
  cores: number;
  /**
   * The whole machine's busy share in the same window (/proc/stat), 0–1: well above
   * `share`, other processes (a teammate's build, the broker) competed for the cores.
   */
  machineShare: number | null;
}

export function cpuWindow(cpuSeconds: number, wallSeconds: number, cores = os.availableParallelism(), machineBusySeconds: number | null = null): CpuWindow {
  if (!(wallSeconds > 0)) throw new RangeError(`a CPU window needs a positive wall time, got ${wallSeconds}`);
  const perWall = (seconds: number): number => seconds / (wallSeconds * cores);
  return { wallSeconds, cpuSeconds, share: perWall(cpuSeconds), cores, machineShare: machineBusySeconds === null ? null : perWall(machineBusySeconds) };
}

/** The machine's busy CPU seconds since boot, or null (not Linux). */
export function machineBusySeconds(): number | null {
  return machineCpu()?.busySeconds ?? null;
}

const minus = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);

/** This process's user + system CPU seconds so far (all threads). */
export function selfCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Runs `work` in this process and measures its CPU share (other concurrent work in this process counts too). */
export async function withCpu<T>(work: () => Promise<T> | T): Promise<{ result: T; cpu: CpuWindow }> {
  const cpu0 = selfCpuSeconds();
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  const result = await work();
  const wall = (performance.now() - t0) / 1000;
  return { result, cpu: cpuWindow(selfCpuSeconds() - cpu0, wall, os.availableParallelism(), minus(machineBusySeconds(), machine0)) };
}

export interface CpuSample {
  /** Epoch ms. */
  atMs: number;
  cpuSeconds: number;
  /** The machine's busy seconds at the same moment; null when unknown. */
  machineBusySeconds: number | null;
}

/**
 * CPU seconds at `atMs`, linearly interpolated between the samples around it (sorted by
 * time); clamped to the first or last sample outside their range. Null without samples.
 */
export function cpuAt(samples: readonly CpuSample[], atMs: number, pick: (s: CpuSample) => number | null = (s) => s.cpuSeconds): number | null {
  if (samples.length === 0) return null;
  const first = samples[0]!;
  if (atMs <= first.atMs) return pick(first);
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i]!;
    if (atMs > b.atMs) continue;
    const a = samples[i - 1]!;
    const [va, vb] = [pick(a), pick(b)];
    if (va === null || vb === null) return null;
    const span = b.atMs - a.atMs;
    return span <= 0 ? vb : va + ((vb - va) * (atMs - a.atMs)) / span;
  }
  return pick(samples.at(-1)!);
}

/** The share of the cores a sampled process used between two moments; null when it cannot be told. */
export function sampledWindow(samples: readonly CpuSample[], fromMs: number, toMs: number, cores = os.availableParallelism()): CpuWindow | null {
  const from = cpuAt(samples, fromMs);
  const to = cpuAt(samples, toMs);
  if (from === null || to === null || toMs <= fromMs) return null;
  const machine = minus(cpuAt(samples, toMs, (s) => s.machineBusySeconds), cpuAt(samples, fromMs, (s) => s.machineBusySeconds));
  return cpuWindow(to - from, (toMs - fromMs) / 1000, cores, machine);
}

/** "47 %" of the cores, or "–"; with the machine's busy share when known: "47 % (machine 98 %)". */
export function formatShare(share: number | null, machineShare: number | null = null): string {
  if (share === null) return '–';
  const own = `${Math.round(100 * share)} %`;
  return machineShare === null ? own : `${own} (machine ${Math.round(100 * machineShare)} %)`;
}
