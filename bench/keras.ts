/**
 * Runs bench/keras_reference.py in the project's Python venv on exactly the data our
 * figures were measured on (the cleaned texts, our token matrix, the labels) and turns
 * its JSON into rows. Keras gets the same repetitions and seconds per measurement.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NetworkConfig } from '../src/model/network.js';
import { measuredRow, type Row } from './result.js';

const run = promisify(execFile);

export const KerasRows = {
  TOKENIZER_FIT: 'Keras tokenizer fit',
  TOKENIZE: 'Keras tokenize',
  train: (batch: number) => `Keras train_on_batch ${batch}`,
  scoreThenTrain: (batch: number) => `Keras predict_on_batch + train_on_batch ${batch}`,
  predict: (batch: number) => `Keras predict batch ${batch}`,
} as const;

export interface KerasInput {
  repo: string;
  texts: readonly string[];
  /** rows × maxLen, our tokenizer's output. */
  tokens: Int32Array;
  labels: Float32Array;
  network: Readonly<NetworkConfig>;
  numWords: number;
  trainBatch: number;
  scoreBatches: readonly number[];
  reps: number;
  seconds: number;
}

interface KerasJson {
  versions: { keras: string; tfKeras: string; tensorflow: string; python: string; backend: string };
  threads: { intraOp: number; interOp: number };
  tokenizer: { fitTextsPerSec: number[]; encodeTextsPerSec: number[]; mismatchedRows: number };
  model: {
    train: { batch: number; samplesPerSec: number[] };
    scoreThenTrain: { batch: number; samplesPerSec: number[] };
    predict: { batch: number; samplesPerSec: number[] }[];
    jitCompile: string;
  };
}

export interface KerasResult {
  rows: Row[];
  versions: KerasJson['versions'];
  threads: KerasJson['threads'];
  jitCompile: string;
  /** Rows whose Keras sequences differ from ours; 0 means both tokenizers agree on this corpus. */
  mismatchedRows: number;
  seconds: number;
}

/** The venv's python (created on first use by scripts/python-env.sh, which installs Keras). */
export async function python(repo: string): Promise<string> {
  // A first run installs TensorFlow: minutes, not seconds.
  const { stdout } = await run('bash', [path.join(repo, 'scripts', 'python-env.sh')], { cwd: repo, timeout: 30 * 60_000 });
  const interpreter = stdout.trim().split('\n').at(-1);
  if (interpreter === undefined || interpreter === '') throw new Error('scripts/python-env.sh printed no interpreter');
  return interpreter;
}

function bytesOf(array: Int32Array | Float32Array): Uint8Array {
  // The script reads little-endian ("<i4", "<f4"); typed arrays are host order, which is
  // little-endian on every platform Node supports here (x86-64, arm64).
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export async function runKerasReference(input: KerasInput): Promise<KerasResult> {
  const started = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-keras-'));
  try {
    const rows = input.texts.length;
    const { maxLen, vocabSize, embeddingDim, units, learningRate } = input.network;
    const spec = {
      rows,
      maxLen,
      vocabSize,
      embeddingDim,
      units,
      learningRate,
      numWords: input.numWords,
      trainBatch: input.trainBatch,
      scoreBatches: input.scoreBatches,
      reps: input.reps,
      seconds: input.seconds,
      seed: input.network.seed ?? 1,
    };
    await writeFile(path.join(dir, 'spec.json'), JSON.stringify(spec));
    await writeFile(path.join(dir, 'texts.json'), JSON.stringify(input.texts));
    await writeFile(path.join(dir, 'tokens.i32'), bytesOf(input.tokens));
    await writeFile(path.join(dir, 'labels.f32'), bytesOf(input.labels));
    const interpreter = await python(input.repo);
    let stdout: string;
    try {
      ({ stdout } = await run(interpreter, [path.join(input.repo, 'bench', 'keras_reference.py'), dir], {
        cwd: input.repo,
        maxBuffer: 16 << 20,
        timeout: 60 * 60_000,
      }));
    } catch (err) {
      const stderr = ((err as { stderr?: string }).stderr ?? '').trim().split('\n');
      throw new Error(`keras_reference.py failed: ${stderr.at(-1) ?? String(err)}`, { cause: err });
    }
    // The JSON is the last line: TensorFlow may print notices before it.
    const json = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as KerasJson;
    const { tokenizer, model } = json;
    const figures: Row[] = [
      measuredRow(KerasRows.TOKENIZER_FIT, 'texts/s', tokenizer.fitTextsPerSec, 'tf_keras Tokenizer.fit_on_texts'),
      measuredRow(KerasRows.TOKENIZE, 'texts/s', tokenizer.encodeTextsPerSec, 'texts_to_sequences + pad_sequences'),
      measuredRow(KerasRows.train(model.train.batch), 'samples/s', model.train.samplesPerSec, `Keras ${json.versions.keras}, jit_compile ${model.jitCompile}`),
      measuredRow(
        KerasRows.scoreThenTrain(model.scoreThenTrain.batch),
        'samples/s',
        model.scoreThenTrain.samplesPerSec,
        'the prequential loop: each minibatch scored, then trained on',
      ),
      ...model.predict.map((p) => measuredRow(KerasRows.predict(p.batch), 'samples/s', p.samplesPerSec, 'predict on 1 024-row chunks')),
    ];
    return {
      rows: figures,
      versions: json.versions,
      threads: json.threads,
      jitCompile: model.jitCompile,
      mismatchedRows: tokenizer.mismatchedRows,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
