/**
 * Throughput of the seed-size network on the selected tfjs backend: trained samples/s
 * (one optimiser step per batch, as the learner does), scored samples/s at several batch
 * sizes, the learner end to end (score + train), and tf.memory() over a long loop.
 *
 *   npx tsc -p . && node dist/bench/model-throughput.js [--backend wasm] [--no-simd] [--seconds 20]
 *       [--score-batches 32,256,1024] [--min-windows 3] [--no-learner] [--lstm auto]
 *
 * The last three exist for slow backends (the pure-JS cpu one needs seconds per step):
 * `npm run bench` runs this once per backend and keeps the slow ones short.
 *
 * Prints one JSON object. Numbers are medians over repeated timed windows, so a noisy
 * neighbour on a shared machine moves them less.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { BatchBuilder } from '../src/batch/builder.js';
import { selectBackend, type RequestedBackend } from '../src/model/backend.js';
import { PrequentialLearner } from '../src/model/learner.js';
import type { LstmImplementation } from '../src/config/schema.js';
import { buildNetwork, defaultNetworkConfig, lstmLayerKind, resolveNetworkConfig } from '../src/model/network.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    'no-simd': { type: 'boolean', default: false },
    seconds: { type: 'string', default: '20' },
    'score-batches': { type: 'string', default: '32,256,1024' },
    'min-windows': { type: 'string', default: '3' },
    'no-learner': { type: 'boolean', default: false },
    lstm: { type: 'string', default: 'auto' },
  },
});
const budget = Number(values.seconds) * 1000;
const scoreBatches = values['score-batches'].split(',').map(Number);
const minWindows = Number(values['min-windows']);
const info = await selectBackend(values.backend as RequestedBackend, { simd: !values['no-simd'] });
// The seed network with Keras' Adam learning rate (0.001), as this benchmark has always measured it.
const config = resolveNetworkConfig({ ...defaultNetworkConfig, learningRate: 0.001, seed: 1, lstm: values.lstm as LstmImplementation });
let seed = 12345;
const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const tokens = (rows: number): Int32Array => Int32Array.from({ length: rows * config.maxLen }, () => Math.floor(random() * config.vocabSize));

/** Size of the wasm linear memory (it only grows), or null on other backends. */
function wasmHeapMiB(): number | null {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return backend.wasm ? Math.round((backend.wasm.HEAPU8.length / 2 ** 20) * 10) / 10 : null;
}

/** Runs `step` (which handles `rows` samples) in windows; returns the median samples/s. */
async function rate(rows: number, step: () => Promise<void> | void, share: number): Promise<number> {
  await step(); // warm-up (first call compiles kernels, allocates optimiser state)
  const rates: number[] = [];
  const end = performance.now() + budget * share;
  while (performance.now() < end || rates.length < minWindows) {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < 1000) {
      await step();
      n++;
    }
    rates.push((n * rows) / ((performance.now() - start) / 1000));
  }
  rates.sort((a, b) => a - b);
  return Math.round(rates[Math.floor(rates.length / 2)]!);
}

const model = buildNetwork(config);
const trainX = tf.tensor2d(tokens(32), [32, config.maxLen], 'int32');
const trainY = tf.tensor2d(Float32Array.from({ length: 32 }, () => (random() < 0.5 ? 1 : 0)), [32, 1]);
const trainSamplesPerSec = await rate(32, async () => void (await model.trainOnBatch(trainX, trainY)), 0.3);

const scored: Record<string, number> = {};
for (const rows of scoreBatches) {
  const x = tf.tensor2d(tokens(rows), [rows, config.maxLen], 'int32');
  scored[`batch${rows}`] = await rate(rows, () => void tf.tidy(() => (model.predictOnBatch(x) as tf.Tensor).dataSync()), 0.1);
  x.dispose();
}
tf.dispose([trainX, trainY]);
model.optimizer.dispose();
model.dispose();

// The learner end to end on 32-row, fully labelled Arrow batches, and its memory.
async function measureLearner() {
  const learner = PrequentialLearner.create({ network: config });
  const builder = new BatchBuilder({ maxLen: config.maxLen, maxRows: 32, maxAgeMs: Number.MAX_SAFE_INTEGER });
  let offset = 0;
  const batch = () => {
    for (;;) {
      const b = builder.push({
        id: `m${offset}`,
        text: '',
        label: random() < 0.5 ? 1 : 0,
        tokens: tokens(1),
        position: { source: 'bench', partition: 0, offset: BigInt(offset++), timestampMs: null },
      });
      if (b !== null) return b;
    }
  };
  try {
    await learner.process(batch());
    const memoryStart = tf.memory();
    const heapStart = process.memoryUsage().rss;
    const wasmHeapStart = wasmHeapMiB();
    const samplesPerSec = await rate(32, async () => void (await learner.process(batch())), 0.3);
    const memoryEnd = tf.memory();
    return {
      samplesPerSec,
      batches: learner.modelVersion,
      memory: {
        numTensors: [memoryStart.numTensors, memoryEnd.numTensors],
        numBytes: [memoryStart.numBytes, memoryEnd.numBytes],
        rssMiB: [Math.round(heapStart / 2 ** 20), Math.round(process.memoryUsage().rss / 2 ** 20)],
        wasmHeapMiB: [wasmHeapStart, wasmHeapMiB()],
      },
    };
  } finally {
    learner.dispose();
  }
}
const learner = values['no-learner'] ? null : await measureLearner();
const result = {
  backend: info,
  lstm: lstmLayerKind(config),
  node: process.version,
  network: config,
  trainSamplesPerSec,
  scoreSamplesPerSec: scored,
  learnerProcessSamplesPerSec: learner?.samplesPerSec ?? null,
  learnerBatches: learner?.batches ?? null,
  memory: learner?.memory ?? null,
};
console.log(JSON.stringify(result, null, 2));
