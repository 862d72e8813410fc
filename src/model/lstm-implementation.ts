/**
 * Which LSTM layer runs: 'fused' (src/model/fused-lstm.ts, one native call per pass),
 * 'stock' (tf.layers.lstm) or 'auto' (fused when its addon loads, else stock). Both have
 * the same weights, so the choice never changes what a checkpoint holds. Kept apart from
 * network.ts so the config schema can name the choices without loading tfjs.
 */
export const LSTM_IMPLEMENTATIONS = ['auto', 'fused', 'stock'] as const;
export type LstmImplementation = (typeof LSTM_IMPLEMENTATIONS)[number];
