/**
 * The machine a bench ran on, and the compute limit its figures are compared with: the
 * peak FLOP/s measured with an FMA loop on this machine (an assumed FLOP/cycle × base
 * clock was off by 2.7× here). A throughput means little without the cores, clock and
 * vector width behind it.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fmaLoop, fmaLoopIsas, fusedLstmUnavailableReason } from '../src/model/fused-lstm.js';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  /** Mean current clock over the cores, MHz; null when neither /proc/cpuinfo nor os.cpus() has one. */
  mhz: number | null;
  mhzSource: '/proc/cpuinfo' | 'os.cpus' | null;
  /** The vector features that decide FLOP per cycle. */
  avx512f: boolean;
  avx2: boolean;
  fma: boolean;
  node: string;
  platform: string;
}

export function readMachine(): MachineInfo {
  const cpus = os.cpus();
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // Not Linux: os.cpus() is all there is.
  }
  const mhzValues = [...cpuinfo.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1]));
  // os.cpus().speed is 0 in many VMs (it is here), so it is only a fallback.
  const osSpeed = cpus[0]?.speed ?? 0;
  const mhz = mhzValues.length > 0 ? mhzValues.reduce((a, b) => a + b, 0) / mhzValues.length : osSpeed > 0 ? osSpeed : null;
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  return {
    cores: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus[0]?.model ?? 'unknown',
    mhz,
    mhzSource: mhzValues.length > 0 ? '/proc/cpuinfo' : mhz !== null ? 'os.cpus' : null,
    avx512f: flags.has('avx512f'),
    avx2: flags.has('avx2'),
    fma: flags.has('fma'),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export interface NetworkDims {
  embeddingDim: number;
  units: number;
  maxLen: number;
}

/**
 * FLOPs per sample of the seed network, counted from its dimensions (T steps, D inputs, U units):
 *
 * - forward: each step multiplies [x_t, h_{t-1}] (D+U) by the 4U gate matrix, 2 FLOP per
 *   multiply-add: 2·T·(D+U)·4U; plus per step ≈ 13U element-wise FLOPs (bias add 4U, gate
 *   activations 4U, c = f·c + i·g 3U, h = o·tanh(c) 2U) and the Dense layer (2U + 1).
 *   The Embedding is a gather: no arithmetic.
 * - training: forward + backward, the usual ≈ 3× forward (the backward pass computes the
 *   gradients of both the inputs and the weights, each as costly as the forward matmul).
 *   Adam's update of the 10 000 × 64 embedding adds ≈ 0.2 MFLOP per sample at batch 32,
 *   left out as a small term.
 *
 * Seed model (T 100, D 64, U 64): ≈ 6.6 MFLOP forward, ≈ 20 MFLOP trained.
 */
export function flopsPerSample(n: NetworkDims): { forward: number; train: number } {
  const { embeddingDim: d, units: u, maxLen: t } = n;
  const forward = t * (2 * (d + u) * 4 * u + 13 * u) + 2 * u + 1;
  return { forward, train: 3 * forward };
}

/** One measured run of the addon's FMA loop: the best window of several. */
export interface PeakRun {
  isa: string;
  threads: number;
  gflops: number;
}

export interface MeasuredPeak {
  runs: PeakRun[];
  /** Why nothing was measured (the addon is missing, or no ISA has a loop here). */
  unavailable: string | null;
}

/**
 * The machine's fp32 compute peak, measured rather than assumed: the fused LSTM addon's
 * register-resident FMA loop (src/model/native/fma_peak.cc) for every vector ISA it can
 * run here, on one thread and on all cores at once. Each figure is the best of `windows`
 * windows of about `windowMs`: a busy neighbour only ever lowers a window, so the best one
 * is the closest to what the cores can do.
 */
export function measurePeak(cores: number, { windowMs = 60, windows = 5 } = {}): MeasuredPeak {
  const isas = fmaLoopIsas();
  if (isas.length === 0) {
    return { runs: [], unavailable: fusedLstmUnavailableReason() ?? 'the addon has no FMA loop for this CPU' };
  }
  const runs: PeakRun[] = [];
  for (const isa of isas) {
    for (const threads of [...new Set([1, cores])]) {
      // Calibrate the iteration count to the window on a short run (2^24 is the loop's cap:
      // the accumulators count exactly only below it).
      const probe = fmaLoop(isa, 100_000, threads);
      const iterations = Math.min(2 ** 24 - 1, Math.max(100_000, Math.round((100_000 * windowMs) / 1000 / Math.max(probe.seconds, 1e-6))));
      let best = 0;
      for (let w = 0; w < windows; w++) {
        const run = fmaLoop(isa, iterations, threads);
        if (run.fmas * 2 !== run.flop) {
          throw new Error(`FMA loop ${isa}×${threads}: counted ${run.fmas} FMAs, expected ${run.flop / 2}`);
        }
        best = Math.max(best, run.flop / run.seconds / 1e9);
      }
      runs.push({ isa, threads, gflops: best });
    }
  }
  return { runs, unavailable: null };
}

/** The run the model figures are compared with: all cores, the fastest ISA. */
export function peakOfAllCores(peak: MeasuredPeak, cores: number): PeakRun | null {
  const all = peak.runs.filter((r) => r.threads === cores);
  return all.length === 0 ? null : all.reduce((a, b) => (b.gflops > a.gflops ? b : a));
}

export interface ComputeLimit {
  /** Every FMA-loop run (per ISA, one thread and all cores). */
  peak: MeasuredPeak;
  /** The run the fractions use (all cores, fastest ISA); null when nothing was measured. */
  peakRun: PeakRun | null;
  /** peakRun in FLOP/s; null when nothing was measured. */
  peakFlops: number | null;
  forwardFlops: number;
  trainFlops: number;
  /** peak / FLOPs per sample: the most samples per second the machine could do. */
  scoreLimit: number | null;
  trainLimit: number | null;
}

export function computeLimit(machine: MachineInfo, network: NetworkDims, peak: MeasuredPeak = measurePeak(machine.cores)): ComputeLimit {
  const { forward, train } = flopsPerSample(network);
  const peakRun = peakOfAllCores(peak, machine.cores);
  const peakFlops = peakRun === null ? null : peakRun.gflops * 1e9;
  return {
    peak,
    peakRun,
    peakFlops,
    forwardFlops: forward,
    trainFlops: train,
    scoreLimit: peakFlops === null ? null : peakFlops / forward,
    trainLimit: peakFlops === null ? null : peakFlops / train,
  };
}
