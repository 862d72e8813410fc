/**
 * The seed's network, layer for layer:
 *
 *   model = keras.Sequential([
 *       keras.layers.Embedding(10000, 64, input_length=100),
 *       keras.layers.LSTM(64),
 *       keras.layers.Dense(1, activation='sigmoid')])
 *   model.compile(optimizer='adam', loss='binary_crossentropy')
 *
 * tfjs-layers keeps some Keras 1 defaults that differ from tf.keras 2, so every one that
 * matters is spelled out here: LSTM recurrent activation (tfjs: hardSigmoid, Keras:
 * sigmoid), unit_forget_bias (tfjs: off, Keras: on), kernel initialisers (tfjs:
 * glorotNormal, Keras: glorot_uniform). Gate order (i, f, c, o) and weight layout
 * ([in, 4·units] kernel, [units, 4·units] recurrent kernel) are the same as Keras;
 * test/model/network.test.ts proves it against Keras itself.
 */
import * as tf from '@tensorflow/tfjs';
import { LSTM_IMPLEMENTATIONS, PIPELINE_DEFAULTS, type LstmImplementation, type PipelineConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { FusedAdamOptimizer } from './fused-adam.js';
import { FusedLstmLayer, fusedLstmUnavailableReason } from './fused-lstm.js';

export interface NetworkConfig {
  /** Embedding rows: token ids must be < vocabSize (the tokenizer's num_words). */
  vocabSize: number;
  embeddingDim: number;
  /** LSTM units. */
  units: number;
  /** Tokens per sequence (pad_sequences maxlen). */
  maxLen: number;
  /** Adam learning rate. */
  learningRate: number;
  /** Seed for the weight initialisers; null draws a fresh random initialisation. */
  seed: number | null;
  lstm: LstmImplementation;
}

/** The settings of a pipeline that describe its network (the pipeline's own names). */
export interface NetworkSettings {
  tokenizer: Pick<PipelineConfig['tokenizer'], 'numWords' | 'maxLen'>;
  model: Pick<PipelineConfig['model'], 'embeddingDim' | 'units' | 'learningRate' | 'seed' | 'lstm'>;
}

/** The network a pipeline config describes. */
export function pipelineNetwork(config: Readonly<NetworkSettings>): NetworkConfig {
  return {
    vocabSize: config.tokenizer.numWords,
    embeddingDim: config.model.embeddingDim,
    units: config.model.units,
    maxLen: config.tokenizer.maxLen,
    learningRate: config.model.learningRate,
    seed: config.model.seed,
    lstm: config.model.lstm,
  };
}

/** The network of a pipeline that sets nothing (config/schema.ts holds the defaults), for callers without a pipeline. */
export const defaultNetworkConfig: Readonly<NetworkConfig> = Object.freeze(pipelineNetwork(PIPELINE_DEFAULTS));

/** Layer names are fixed so weight names ('lstm/kernel', …) are stable across processes. */
export const LayerNames = { EMBEDDING: 'embedding', LSTM: 'lstm', DENSE: 'dense' } as const;

/** Where each network field is set in a pipeline file, for errors that name it. */
const PIPELINE_FIELDS: Readonly<Record<keyof NetworkConfig, string>> = {
  vocabSize: 'tokenizer.numWords',
  embeddingDim: 'model.embeddingDim',
  units: 'model.units',
  maxLen: 'tokenizer.maxLen',
  learningRate: 'model.learningRate',
  seed: 'model.seed',
  lstm: 'model.lstm',
};

/**
 * Validates a complete network (a checkpoint's, or a caller's own: one from a pipeline was
 * validated with it) and that its LSTM can run here. Errors name the pipeline field
 * (`model.lstm`, `tokenizer.numWords`), or with `path` that prefix and the network's own
 * key (e.g. `checkpoint.network.units`).
 */
export function resolveNetworkConfig(network: Readonly<NetworkConfig> = defaultNetworkConfig, path: string | null = null): NetworkConfig {
  const field = (key: keyof NetworkConfig): string => (path === null ? PIPELINE_FIELDS[key] : `${path}.${key}`);
  const config: NetworkConfig = { ...network };
  for (const key of ['vocabSize', 'embeddingDim', 'units', 'maxLen'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) {
      throw new ConfigError(field(key), `must be a positive integer, got ${String(config[key])}`);
    }
  }
  if (!(config.learningRate > 0) || !Number.isFinite(config.learningRate)) {
    throw new ConfigError(field('learningRate'), `must be a positive number, got ${String(config.learningRate)}`);
  }
  if (config.seed !== null && !Number.isInteger(config.seed)) {
    throw new ConfigError(field('seed'), `must be an integer or null, got ${String(config.seed)}`);
  }
  if (!LSTM_IMPLEMENTATIONS.includes(config.lstm)) {
    throw new ConfigError(field('lstm'), `must be one of ${LSTM_IMPLEMENTATIONS.join(', ')}, got ${String(config.lstm)}`);
  }
  if (config.lstm === 'fused' && fusedLstmUnavailableReason() !== null) {
    throw new ConfigError(field('lstm'), `'fused' was asked for but ${fusedLstmUnavailableReason()!}`);
  }
  return Object.freeze(config);
}

/** The layer `buildNetwork` uses for this config: 'auto' resolved. */
export function lstmLayerKind(config: Pick<NetworkConfig, 'lstm'>): 'fused' | 'stock' {
  if (config.lstm !== 'auto') return config.lstm;
  return fusedLstmUnavailableReason() === null ? 'fused' : 'stock';
}

/** Builds and compiles the network. Its weights are initialised on return. */
export function buildNetwork(config: NetworkConfig): tf.Sequential {
  // One seed per initialiser, so layers don't draw identical streams.
  const seed = (offset: number): number | undefined => (config.seed === null ? undefined : config.seed + offset);
  let model: tf.Sequential | undefined;
  // tfjs-layers' unitForgetBias initialiser never disposes its intermediate tensors (4 per
  // LSTM). Building inside tidy frees them; the weights are variables, which tidy keeps.
  withoutOrthogonalWarning(() => tf.tidy(() => {
    model = tf.sequential({
      layers: [
        tf.layers.embedding({
          name: LayerNames.EMBEDDING,
          inputDim: config.vocabSize,
          outputDim: config.embeddingDim,
          inputLength: config.maxLen,
          // Keras 'uniform': RandomUniform(-0.05, 0.05).
          embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: seed(0) }),
        }),
        lstmLayerKind(config) === 'fused'
          ? new FusedLstmLayer({
              name: LayerNames.LSTM,
              units: config.units,
              kernelInitializer: tf.initializers.glorotUniform({ seed: seed(1) }),
              recurrentInitializer: tf.initializers.orthogonal({ seed: seed(2) }),
            })
          : tf.layers.lstm({
              name: LayerNames.LSTM,
              units: config.units,
              activation: 'tanh',
              recurrentActivation: 'sigmoid',
              unitForgetBias: true,
              kernelInitializer: tf.initializers.glorotUniform({ seed: seed(1) }),
              recurrentInitializer: tf.initializers.orthogonal({ seed: seed(2) }),
              biasInitializer: 'zeros',
            }),
        tf.layers.dense({
          name: LayerNames.DENSE,
          units: 1,
          activation: 'sigmoid',
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed(3) }),
          biasInitializer: 'zeros',
        }),
      ],
    });
  }));
  compileNetwork(model!, config.learningRate);
  return model!;
}

/**
 * The loss `compileNetwork` compiles in (tfjs' metric of that name calls the very loss
 * 'binaryCrossentropy' resolves to), per row: [n, 1] labels and scores → [n]. The
 * learner's guarded training step calls it directly; keep the two in step.
 */
export const networkLoss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor = tf.metrics.binaryCrossentropy;

export function compileNetwork(model: tf.LayersModel, learningRate: number): void {
  // Keras' Adam defaults: beta_1 0.9, beta_2 0.999, epsilon 1e-7 (tfjs' default epsilon is
  // the backend epsilon, 1e-7 on wasm and cpu, but say it so it can't drift).
  // FusedAdamOptimizer: tfjs' Adam with its update in one native pass (bit-identical).
  model.compile({ optimizer: new FusedAdamOptimizer(learningRate, 0.9, 0.999, 1e-7), loss: 'binaryCrossentropy' });
}

/** Parameter counts per layer, in model order (for logs and tests). */
export function parameterCounts(model: tf.LayersModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const layer of model.layers) counts[layer.name] = layer.countParams();
  return counts;
}

/**
 * tfjs warns "Orthogonal initializer is being called on a matrix with more than 2000
 * elements: Slowness may result" on every build of the seed LSTM (64×256 recurrent
 * kernel). Keras initialises it the same way without a word, and the one-off cost is
 * milliseconds, so the warning only alarms users; this drops exactly that message.
 */
function withoutOrthogonalWarning(build: () => void): void {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('Orthogonal initializer is being called')) return;
    warn(...args);
  };
  try {
    build();
  } finally {
    console.warn = warn;
  }
}
