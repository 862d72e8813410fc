/**
 * Which LSTM implementations the model figures are measured for. src/model/network.ts
 * offers `lstm: 'auto' | 'fused' | 'stock'` (the fused native layer or tfjs-layers' own);
 * 'auto' is one of the other two, so those two are measured, each on a fresh model, and
 * an implementation that cannot run here (the fused addon not built) becomes skipped rows
 * that say why.
 */
import type { LstmImplementation } from '../src/config/schema.js';
import { lstmLayerKind, type NetworkConfig } from '../src/model/network.js';

/** Measured one after the other when the bench runs; add a name here to measure it too. */
export const MEASURED_LSTM_IMPLEMENTATIONS = ['stock', 'fused'] as const satisfies readonly LstmImplementation[];
export type MeasuredLstm = (typeof MEASURED_LSTM_IMPLEMENTATIONS)[number];

export interface LstmVariant {
  /** Row label suffix, e.g. `score batch 32 [fused]`. */
  label: MeasuredLstm;
  /** The network options that select it. */
  network: NetworkConfig;
}

export function lstmVariants(base: NetworkConfig): LstmVariant[] {
  return MEASURED_LSTM_IMPLEMENTATIONS.map((label) => ({ label, network: { ...base, lstm: label } }));
}

/** What a configured implementation ('auto' included) runs as on this machine. */
export function resolvedLstm(lstm: LstmImplementation): string {
  return lstm === 'auto' ? `auto → ${lstmLayerKind({ lstm })}` : lstm;
}
