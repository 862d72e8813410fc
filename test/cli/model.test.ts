import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runCli as run, tempDir } from '../helpers/cli.js';
import { saveSmallCheckpoint } from '../model/helpers.js';


test('should show examples in the help of the model command group and of model export', async (t) => {
  const dir = await tempDir(t);
  const group = await run(['model', '--help'], dir);
  assert.equal(group.code, 0);
  assert.match(group.stdout, /export/);
  assert.match(group.stdout, /\$ textstream model export out\/spamassassin --format keras --out keras-model/);
  const top = await run(['--help'], dir);
  assert.match(top.stdout, /\bmodel\b/);
  const sub = await run(['model', 'export', '--help'], dir);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--format <format>.*choices: "keras"/s);
  assert.match(sub.stdout, /Examples:\n\s+\$ textstream model export/);
  assert.match(sub.stdout, /from-keras/);
});

test('should exit 2 naming the problem when the checkpoint dir is missing or holds no checkpoint', async (t) => {
  const dir = await tempDir(t);
  const missing = await run(['model', 'export', 'no-such-dir', '--format', 'keras', '--out', 'out'], dir);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /<checkpoint dir>: no-such-dir does not exist/);
  await mkdir(path.join(dir, 'empty'));
  const empty = await run(['model', 'export', 'empty', '--out', 'out'], dir);
  assert.equal(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /empty holds no checkpoint/);
  assert.deepEqual((await readdir(dir)).sort(), ['empty'], 'nothing is written on failure');
});

test('should exit 2 naming the option and the value for an unknown --format', async (t) => {
  const dir = await tempDir(t);
  const result = await run(['model', 'export', '.', '--format', 'onnx', '--out', 'out'], dir);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--format <format>' argument 'onnx' is invalid\. Allowed choices are keras/);
});

test('should export a checkpoint root through the CLI', async (t) => {
  const dir = await tempDir(t);
  await saveSmallCheckpoint(path.join(dir, 'checkpoints'));
  const result = await run(['model', 'export', 'checkpoints', '--format', 'keras', '--out', 'keras-model'], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /model version 2/);
  assert.deepEqual((await readdir(path.join(dir, 'keras-model'))).sort(), ['load_keras.py', 'model.json', 'tokenizer.json', 'weights.bin']);
  // tfjs' "install our node backend" banner is not ours to print.
  assert.doesNotMatch(result.stderr, /looks like you are running TensorFlow\.js in Node\.js/);

  const json = await run(['model', 'export', 'checkpoints', '--out', 'again', '--json'], dir);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { modelVersion: number; files: string[]; tokenizerWords: number; outDir: string };
  assert.equal(parsed.modelVersion, 2);
  assert.equal(parsed.outDir, path.join(dir, 'again'));
  assert.equal(parsed.tokenizerWords, 4);
  assert.ok(parsed.files.includes('model.json'));
});
