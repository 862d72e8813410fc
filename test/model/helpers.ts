/** Shared fixtures for the model tests: the wasm backend, synthetic batches, leak checks. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { RecordBatch } from 'apache-arrow';
import { BatchBuilder } from '../../src/batch/builder.js';
import type { Label, TokenizedMessage } from '../../src/message.js';
import { selectBackend, type BackendInfo } from '../../src/model/backend.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { defaultNetworkConfig, type NetworkConfig } from '../../src/model/network.js';
import { mulberry32 } from '../../src/random.js';
import { Tokenizer } from '../../src/text/tokenizer.js';

export function useWasm(): Promise<BackendInfo> {
  return selectBackend('wasm');
}

/** A network small enough to train in milliseconds; the tests prove behaviour, not scale. */
/**
 * The seed's Keras network: the pipeline's default shape, with Keras' Adam learning rate
 * (0.001) and no fixed seed (a fresh random initialisation each build).
 */
export const KERAS_SEED_NETWORK: Readonly<NetworkConfig> = Object.freeze({ ...defaultNetworkConfig, learningRate: 0.001, seed: null });

export const SMALL_NETWORK: NetworkConfig = {
  vocabSize: 200,
  embeddingDim: 8,
  units: 8,
  maxLen: 12,
  learningRate: 0.01,
  seed: 7,
  lstm: 'auto',
};

/** Deterministic PRNG so failing tests reproduce. */
export const rng = mulberry32;

export interface SyntheticOptions {
  maxLen: number;
  vocabSize: number;
  rows: number;
  /** Probability that a row carries its label (else null). Default 1. */
  labelledFraction?: number;
}

/**
 * A separable stream: class 1 messages use token ids [1, 20), class 0 ids [20, 40), mixed
 * with noise tokens from [40, vocabSize) and left-padded with zeros like pad_sequences.
 */
export class SyntheticStream {
  readonly #random: () => number;
  readonly #opts: SyntheticOptions;
  #offset = 0;

  constructor(seed: number, opts: SyntheticOptions) {
    this.#random = rng(seed);
    this.#opts = opts;
  }

  message(label: Label, labelled: boolean): TokenizedMessage {
    const { maxLen, vocabSize } = this.#opts;
    const r = this.#random;
    const tokens = new Int32Array(maxLen);
    const length = Math.max(3, Math.floor(r() * maxLen));
    for (let i = maxLen - length; i < maxLen; i++) {
      tokens[i] = r() < 0.5 ? (label === 1 ? 1 : 20) + Math.floor(r() * 19) : 40 + Math.floor(r() * (vocabSize - 40));
    }
    const offset = this.#offset++;
    return {
      id: `m${offset}`,
      text: '',
      label: labelled ? label : null,
      tokens,
      position: { source: 'synthetic', partition: 0, offset: BigInt(offset), timestampMs: null },
    };
  }

  batch(): RecordBatch {
    const { maxLen, rows } = this.#opts;
    const builder = new BatchBuilder({ maxLen, maxRows: rows, maxAgeMs: Number.MAX_SAFE_INTEGER });
    const fraction = this.#opts.labelledFraction ?? 1;
    for (;;) {
      const label: Label = this.#random() < 0.5 ? 1 : 0;
      const batch = builder.push(this.message(label, this.#random() < fraction));
      if (batch !== null) return batch;
    }
  }
}

/** Builds one batch from explicit messages (all of them, in order). */
export function batchOf(messages: readonly TokenizedMessage[], maxLen: number): RecordBatch {
  const builder = new BatchBuilder({ maxLen, maxRows: messages.length, maxAgeMs: Number.MAX_SAFE_INTEGER });
  let batch: RecordBatch | null = null;
  for (const m of messages) batch = builder.push(m);
  assert.ok(batch !== null);
  return batch;
}

/**
 * Fails when `fn` leaves more tensors alive than it found (tfjs' expectNoLeakedTensors,
 * for async code). Variables created on purpose must be disposed inside `fn`.
 */
export async function expectNoLeakedTensors<T>(fn: () => Promise<T> | T, allowed = 0): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  const after = tf.memory().numTensors;
  assert.ok(after - before <= allowed, `leaked ${after - before} tensors (allowed ${allowed})`);
  return result;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** A checkpoint of the small network after one 16-row synthetic batch (model version 2), with a tiny tokenizer. */
export async function saveSmallCheckpoint(root: string): Promise<void> {
  await useWasm();
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  try {
    const { maxLen, vocabSize } = SMALL_NETWORK as { maxLen: number; vocabSize: number };
    await learner.process(new SyntheticStream(1, { maxLen, vocabSize, rows: 16 }).batch());
    const tokenizer = new Tokenizer({ numWords: vocabSize, maxLen }).fitOnTexts(['a b c', 'b c d']).freeze();
    await saveCheckpoint(root, await learner.checkpointState(tokenizer.toJSON()));
  } finally {
    learner.dispose();
  }
}
