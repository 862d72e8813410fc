/**
 * `model.initialModel`: start a pipeline from weights trained elsewhere (Keras, via
 * scripts/keras_interop.py from-keras, or a `textstream model export`) instead of a
 * random initialisation.
 *
 * The file is a tfjs layers-format model.json. Only its weightsManifest is used: the
 * network is always ours (network.ts), and weights are matched to it by order and shape,
 * not by name, because Keras names layers `embedding_3`, `lstm_1`, … as it pleases. The
 * order is Keras' `model.get_weights()` order, which tfjs' manifest order also follows:
 * embeddings, LSTM kernel, recurrent kernel, bias, dense kernel, bias.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { LayerNames, type NetworkConfig } from './network.js';

export const INITIAL_MODEL_FIELD = 'model.initialModel';

/** A weight the network needs: its name in our network and its shape. */
export interface WeightSlot {
  name: string;
  shape: number[];
}

/** Decoded initial weights, in network order; the caller owns (and disposes) the tensors. */
export interface InitialWeights {
  source: string;
  tensors: tf.Tensor[];
}

/** The network's weights in Keras get_weights() order, with their shapes. */
export function networkWeightSlots(network: Pick<NetworkConfig, 'vocabSize' | 'embeddingDim' | 'units'>): WeightSlot[] {
  const { vocabSize, embeddingDim, units } = network;
  return [
    { name: `${LayerNames.EMBEDDING}/embeddings`, shape: [vocabSize, embeddingDim] },
    { name: `${LayerNames.LSTM}/kernel`, shape: [embeddingDim, 4 * units] },
    { name: `${LayerNames.LSTM}/recurrent_kernel`, shape: [units, 4 * units] },
    { name: `${LayerNames.LSTM}/bias`, shape: [4 * units] },
    { name: `${LayerNames.DENSE}/kernel`, shape: [units, 1] },
    { name: `${LayerNames.DENSE}/bias`, shape: [1] },
  ];
}

/**
 * Reads `file` (model.json) and its weight shards, checks every weight against the
 * network, and decodes them. Every problem is a ConfigError naming `model.initialModel`
 * (and, for a misfit, the weight).
 */
export async function loadInitialWeights(file: string, network: Pick<NetworkConfig, 'vocabSize' | 'embeddingDim' | 'units'>): Promise<InitialWeights> {
  const fail = (message: string, cause?: unknown): ConfigError =>
    new ConfigError(INITIAL_MODEL_FIELD, `${file}: ${message}`, cause === undefined ? {} : { cause });
  let json: Partial<tf.io.ModelJSON>;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as Partial<tf.io.ModelJSON>;
  } catch (cause) {
    throw fail(`cannot read a model.json (${(cause as Error).message})`, cause);
  }
  if (json === null || typeof json !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw fail('is not a tfjs layers-format model.json (no weightsManifest)');
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: ArrayBuffer[] = [];
  for (const group of json.weightsManifest) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights)) throw fail('has a weightsManifest group without paths or weights');
    for (const shard of group.paths) {
      const shardPath = path.resolve(path.dirname(file), shard);
      try {
        const bytes = await readFile(shardPath);
        shards.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      } catch (cause) {
        throw fail(`cannot read its weight file ${shardPath} (${(cause as Error).message})`, cause);
      }
    }
    specs.push(...group.weights);
  }
  // Optimiser state (a tfjs save with includeOptimizer) is not part of an initialisation.
  const modelSpecs = specs.filter((s) => s.group !== 'optimizer');
  const slots = networkWeightSlots(network);
  if (modelSpecs.length !== slots.length) {
    throw fail(
      `holds ${modelSpecs.length} weights (${modelSpecs.map((s) => s.name).join(', ')}), ` +
        `the network needs ${slots.length} (${slots.map((s) => s.name).join(', ')})`,
    );
  }
  modelSpecs.forEach((spec, i) => {
    const slot = slots[i]!;
    if (spec.dtype !== 'float32') throw fail(`weight ${i} (${spec.name}, for ${slot.name}) has dtype ${spec.dtype}, expected float32`);
    if (spec.shape.length !== slot.shape.length || spec.shape.some((d, k) => d !== slot.shape[k])) {
      throw fail(
        `weight ${i} (${spec.name}, for ${slot.name}) has shape [${spec.shape.join(', ')}], ` +
          `the network needs [${slot.shape.join(', ')}] (tokenizer.numWords, model.embeddingDim and model.units must match the model)`,
      );
    }
  });
  let decoded: tf.NamedTensorMap;
  try {
    decoded = tf.io.decodeWeights(tf.io.CompositeArrayBuffer.join(shards), specs);
  } catch (cause) {
    throw fail(`its weight bytes do not match its weightsManifest (${(cause as Error).message})`, cause);
  }
  const tensors = modelSpecs.map((s) => decoded[s.name]!);
  // Optimiser tensors decoded alongside are not handed out.
  tf.dispose(specs.filter((s) => s.group === 'optimizer').map((s) => decoded[s.name]!));
  return { source: file, tensors };
}

/**
 * Copies the weights into a freshly built network (before its first training step, so
 * no optimiser state refers to the old values). Disposes `weights.tensors`.
 */
export function applyInitialWeights(model: tf.LayersModel, weights: InitialWeights): void {
  try {
    model.setWeights(weights.tensors);
  } finally {
    tf.dispose(weights.tensors);
  }
}
