import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { tokenMatrix } from '../../src/batch/builder.js';
import { parsePipeline } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { loadCheckpointAt } from '../../src/model/checkpoint-roots.js';
import { ExportFiles, exportKeras } from '../../src/model/export.js';
import { loadInitialWeights } from '../../src/model/initial-model.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { makeModelParts } from '../../src/runtime/components.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { repoRoot } from '../helpers/paths.js';
import { SMALL_NETWORK, SyntheticStream, maxAbsDiff, useWasm } from './helpers.js';

const run = promisify(execFile);
// Creating the venv downloads TensorFlow when it is missing (CI creates it beforehand).
const VENV_TIMEOUT_MS = 20 * 60_000;
const SCRIPT_TIMEOUT_MS = 3 * 60_000;
const { vocabSize, maxLen } = SMALL_NETWORK as { vocabSize: number; maxLen: number };

let pythonPath: string | undefined;
async function python(args: string[], cwd = repoRoot): Promise<string> {
  pythonPath ??= (await run('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { timeout: VENV_TIMEOUT_MS })).stdout.trim();
  const { stdout } = await run(pythonPath, args, { cwd, timeout: SCRIPT_TIMEOUT_MS, maxBuffer: 16 << 20 });
  return stdout;
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-export-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const TEXTS = [
  'Win a FREE prize now, click here!',
  'Meeting moved to 3pm; see the agenda.',
  'free free FREE money: claim your prize',
  'Lunch tomorrow? The café on 5th street.',
  'Your invoice #4411 is attached',
];

/** A learner trained a few steps on the synthetic stream, checkpointed with a fitted tokenizer. */
async function trainedCheckpoint(root: string): Promise<void> {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8 });
  try {
    const stream = new SyntheticStream(3, { maxLen, vocabSize, rows: 64 });
    for (let i = 0; i < 3; i++) await learner.process(stream.batch());
    assert.ok(learner.modelVersion > 0);
    const tokenizer = new Tokenizer({ numWords: vocabSize, maxLen, oovToken: '<OOV>' }).fitOnTexts(TEXTS).freeze();
    await saveCheckpoint(root, await learner.checkpointState(tokenizer.toJSON()));
  } finally {
    learner.dispose();
  }
}

/** 100 sequences (left-padded token ids, like pad_sequences) as plain arrays. */
function sequences(seed: number): number[][] {
  const tokens = tokenMatrix(new SyntheticStream(seed, { maxLen, vocabSize, rows: 100 }).batch());
  return Array.from({ length: 100 }, (_, row) => Array.from(tokens.subarray(row * maxLen, (row + 1) * maxLen)));
}

function predict(model: tf.LayersModel, rows: number[][]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor2d(rows, [rows.length, maxLen], 'int32')) as tf.Tensor).dataSync() as Float32Array);
}

test.before(async () => {
  await useWasm();
});

test(
  'should export a checkpoint that Keras 3 loads and that predicts like the checkpoint in tfjs',
  { timeout: VENV_TIMEOUT_MS + 2 * SCRIPT_TIMEOUT_MS },
  async (t) => {
    const dir = await tempDir(t);
    const root = path.join(dir, 'checkpoints');
    await trainedCheckpoint(root);
    const checkpoint = await loadCheckpointAt(root);
    const out = path.join(dir, 'keras');
    const result = await exportKeras(checkpoint, out);
    assert.deepEqual((await readdir(out)).sort(), [ExportFiles.LOADER, ExportFiles.MODEL, ExportFiles.TOKENIZER, ExportFiles.WEIGHTS].sort());
    assert.equal(result.modelVersion, checkpoint.modelVersion);

    // The topology names only stock layers: Keras (and tfjs without our code) know them all.
    const modelJson = JSON.parse(await readFile(path.join(out, ExportFiles.MODEL), 'utf8')) as tf.io.ModelJSON;
    const topology = modelJson.modelTopology as { config: { layers: { class_name: string }[] } };
    assert.deepEqual(topology.config.layers.map((l) => l.class_name), ['Embedding', 'LSTM', 'Dense']);
    assert.deepEqual(
      modelJson.weightsManifest[0]!.weights.map((w) => w.name),
      ['embedding/embeddings', 'lstm/kernel', 'lstm/recurrent_kernel', 'lstm/bias', 'dense/kernel', 'dense/bias'],
    );

    const rows = sequences(99);
    await writeFile(path.join(dir, 'tokens.json'), JSON.stringify(rows));
    const predictionsFile = path.join(dir, 'predictions.json');
    // The generated script, run as a user would, from its own directory.
    await python([ExportFiles.LOADER, '--predict', path.join(dir, 'tokens.json'), '--predictions-out', predictionsFile], out);
    const keras = JSON.parse(await readFile(predictionsFile, 'utf8')) as number[];

    // The checkpoint as the pipeline resumes it, with either LSTM layer.
    for (const lstm of ['auto', 'stock'] as const) {
      const learner = await PrequentialLearner.fromCheckpoint(checkpoint, { network: { ...SMALL_NETWORK, lstm } });
      t.after(() => learner.dispose());
      const ours = predict(learner.model, rows);
      const spread = Math.max(...ours) - Math.min(...ours);
      assert.ok(spread > 1e-3, `the trained model should not be constant, spread ${spread}`);
      const diff = maxAbsDiff(ours, keras);
      t.diagnostic(`max |tfjs (${learner.lstm} LSTM) − Keras 3 model.keras| over 100 sequences: ${diff.toExponential(2)}`);
      assert.ok(diff < 1e-5, `${learner.lstm} LSTM: Keras predictions differ from the checkpoint's by ${diff}`);
    }

    // The tokenizer, through tf_keras' own reader.
    const script = [
      'import json, sys',
      'from tf_keras.preprocessing.text import tokenizer_from_json',
      't = tokenizer_from_json(open(sys.argv[1]).read())',
      'texts = json.loads(sys.argv[2])',
      'print(json.dumps({"word_index": list(t.word_index.items()), "num_words": t.num_words, "oov": t.oov_token,',
      '                  "document_count": t.document_count, "sequences": t.texts_to_sequences(texts)}))',
    ].join('\n');
    const probe = [...TEXTS, 'an unseen word and free prize'];
    const keras2 = JSON.parse(await python(['-c', script, path.join(out, ExportFiles.TOKENIZER), JSON.stringify(probe)])) as {
      word_index: [string, number][];
      num_words: number;
      oov: string;
      document_count: number;
      sequences: number[][];
    };
    const tokenizer = Tokenizer.fromJSON(checkpoint.tokenizer as Parameters<typeof Tokenizer.fromJSON>[0]);
    assert.deepEqual(keras2.word_index, [...tokenizer.wordIndex]);
    assert.equal(keras2.num_words, vocabSize);
    assert.equal(keras2.oov, '<OOV>');
    assert.equal(keras2.document_count, TEXTS.length);
    assert.deepEqual(keras2.sequences, tokenizer.textsToSequences(probe));
  },
);

test(
  'should start a pipeline from a Keras-trained model and predict like Keras; a checkpoint wins over it',
  { timeout: VENV_TIMEOUT_MS + 2 * SCRIPT_TIMEOUT_MS },
  async (t) => {
    const dir = await tempDir(t);
    const rows = sequences(41);
    await writeFile(path.join(dir, 'tokens.json'), JSON.stringify(rows));
    // Keras 3 code that made the reference predictions:
    const script = `
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
keras.utils.set_random_seed(5)
model = keras.Sequential([
    keras.Input((${maxLen},), dtype="int32"),
    keras.layers.Embedding(${vocabSize}, ${SMALL_NETWORK.embeddingDim}),
    keras.layers.LSTM(${SMALL_NETWORK.units}),
    keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
rng = np.random.default_rng(5)
x = rng.integers(0, ${vocabSize}, size=(256, ${maxLen})).astype("int32")
y = (x[:, -1] < ${vocabSize / 2}).astype("float32")
model.fit(x, y, batch_size=32, epochs=3, verbose=0)
model.save(sys.argv[1])
tokens = np.asarray(json.load(open(sys.argv[2])), dtype="int32")
json.dump(model.predict(tokens, verbose=0).reshape(-1).astype(float).tolist(), open(sys.argv[3], "w"))
`;
    const kerasFile = path.join(dir, 'trained.keras');
    await python(['-c', script, kerasFile, path.join(dir, 'tokens.json'), path.join(dir, 'keras-predictions.json')]);
    const keras = JSON.parse(await readFile(path.join(dir, 'keras-predictions.json'), 'utf8')) as number[];
    const init = path.join(dir, 'init');
    await python([path.join(repoRoot, 'scripts', 'keras_interop.py'), 'from-keras', kerasFile, init]);

    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const config = parsePipeline({
      name: 'initial-model',
      source: { type: 'parquet', path: path.join(dir, 'unused.parquet') },
      tokenizer: { numWords: vocabSize, maxLen },
      model: {
        backend: 'wasm',
        embeddingDim: SMALL_NETWORK.embeddingDim,
        units: SMALL_NETWORK.units,
        initialModel: path.join(init, 'model.json'),
      },
    });
    const checkpoints = { root: path.join(dir, 'checkpoints'), resume: 'if-present' } as const;
    const parts = await makeModelParts(config, logger, checkpoints);
    try {
      const diff = maxAbsDiff(predict(parts.learner.model, rows), keras);
      t.diagnostic(`max |tfjs (${parts.learner.lstm} LSTM) − Keras 3| over 100 sequences: ${diff.toExponential(2)}`);
      assert.ok(diff < 1e-5, `predictions differ from Keras' by ${diff}`);
      assert.equal(parts.learner.modelVersion, 0);
      assert.ok(logs.some((l) => l.includes('initialised from model.initialModel')));

      // Train a little and checkpoint; the next start resumes from the checkpoint, not the file.
      await parts.learner.process(new SyntheticStream(8, { maxLen, vocabSize, rows: 16 }).batch());
      parts.vocabulary.fitAndFreeze(TEXTS);
      await parts.checkpoint();
    } finally {
      parts.learner.dispose();
    }
    logs.length = 0;
    const resumed = await makeModelParts(config, logger, checkpoints);
    try {
      assert.ok(resumed.learner.modelVersion > 0);
      assert.ok(logs.some((l) => l.includes('model.initialModel not used')));
    } finally {
      resumed.learner.dispose();
    }
  },
);

test('should reject an initial model whose weights do not fit the network, naming the field and the weight', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, 'checkpoints');
  await trainedCheckpoint(root);
  const out = path.join(dir, 'export');
  await exportKeras(await loadCheckpointAt(root), out);
  const file = path.join(out, ExportFiles.MODEL);
  const before = tf.memory().numTensors;
  await assert.rejects(
    loadInitialWeights(file, { vocabSize, embeddingDim: SMALL_NETWORK.embeddingDim, units: 4 }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.path === 'model.initialModel' &&
      /weight 1 \(lstm\/kernel, for lstm\/kernel\) has shape \[8, 32\], the network needs \[8, 16\]/.test(err.message),
  );
  await assert.rejects(
    loadInitialWeights(path.join(dir, 'missing.json'), { vocabSize, embeddingDim: 8, units: 8 }),
    (err: unknown) => err instanceof ConfigError && err.path === 'model.initialModel',
  );
  assert.equal(tf.memory().numTensors, before, 'a rejected file leaves no tensors behind');
  // The file from the export fits a network of its own shape.
  const weights = await loadInitialWeights(file, { vocabSize, embeddingDim: 8, units: 8 });
  assert.equal(weights.tensors.length, 6);
  tf.dispose(weights.tensors);
});
