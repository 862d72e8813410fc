/**
 * The machine a bench ran on, and the compute limit its figures are compared with.
 * A throughput means little without the cores, clock and vector width behind it.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

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

export interface ComputeLimit {
  flopsPerCycle: number;
  /** How FLOP per cycle was chosen; printed next to every fraction of the limit. */
  assumption: string;
  /** cores × clock × FLOP per cycle; null without a clock. */
  peakFlops: number | null;
  forwardFlops: number;
  trainFlops: number;
  /** peak / FLOPs per sample: the most samples per second the machine could do. */
  scoreLimit: number | null;
  trainLimit: number | null;
}

/**
 * fp32 FLOP per cycle per core: two FMA pipes × 8 lanes × 2 FLOP = 32 on AVX2+FMA cores
 * and on AVX-512 cores that issue 512-bit FMAs over 256-bit pipes (AMD Zen 4, most
 * client parts). Server Intel cores with two 512-bit FMA units would reach 64; the flags
 * cannot tell them apart, so the lower figure is assumed and printed as an assumption.
 */
export function flopsPerCycle(machine: MachineInfo): { value: number; assumption: string } {
  if (machine.avx512f) {
    return { value: 32, assumption: '32 FLOP/cycle/core (fp32; AVX-512 flags: assumes 2 FMA pipes × 8 lanes; 64 if the core has two 512-bit FMA units)' };
  }
  if (machine.avx2 && machine.fma) return { value: 32, assumption: '32 FLOP/cycle/core (fp32; AVX2+FMA: assumes 2 FMA units × 8 lanes)' };
  if (machine.avx2) return { value: 16, assumption: '16 FLOP/cycle/core (fp32; AVX2 without FMA: add + mul × 8 lanes)' };
  return { value: 8, assumption: '8 FLOP/cycle/core (fp32; no AVX2 detected: SSE add + mul × 4 lanes)' };
}

export function computeLimit(machine: MachineInfo, network: NetworkDims): ComputeLimit {
  const { forward, train } = flopsPerSample(network);
  const perCycle = flopsPerCycle(machine);
  const peakFlops = machine.mhz === null ? null : machine.cores * machine.mhz * 1e6 * perCycle.value;
  return {
    flopsPerCycle: perCycle.value,
    assumption: perCycle.assumption,
    peakFlops,
    forwardFlops: forward,
    trainFlops: train,
    scoreLimit: peakFlops === null ? null : peakFlops / forward,
    trainLimit: peakFlops === null ? null : peakFlops / train,
  };
}
