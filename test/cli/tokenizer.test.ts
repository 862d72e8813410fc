/**
 * `textstream tokenizer fit` through the real CLI: the vocabulary it saves is the one
 * Keras' own Tokenizer fits on the same cleaned texts, records the pipeline would
 * dead-letter are skipped and counted, and the saved file starts a replay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { cleanEmail } from '../../src/text/clean.js';
import type { TokenizerJSON } from '../../src/text/tokenizer-json.js';
import { corpusMessages } from '../helpers/corpus.js';
import { repoRoot } from '../helpers/paths.js';

const run = promisify(execFile);
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const VENV_TIMEOUT_MS = 20 * 60_000;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: repoRoot, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function setUp(t: test.TestContext): Promise<{ dir: string; pipeline: string; emails: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-tokenizer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const emails = [...(await corpusMessages('spam-1', 40)), ...(await corpusMessages('easy-ham-2', 40))].map((m) => m.text);
  const input = path.join(dir, 'mail.parquet');
  const writer = await ParquetFileWriter.open(
    `${input}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY', optional: true }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 32 },
  );
  for (const [i, text] of emails.entries()) await writer.append({ id: `m${i}`, text: Buffer.from(text), label: '0' });
  await writer.append({ id: 'bad/empty', text: Buffer.from('   '), label: '0' });
  await writer.append({ id: 'bad/latin1', text: Buffer.from([0x63, 0x61, 0x66, 0xe9]), label: '1' });
  await writer.finish(input);
  const pipeline = path.join(dir, 'p.yaml');
  await writeFile(
    pipeline,
    [
      'name: tok',
      `source: { type: parquet, path: ${JSON.stringify(input)} }`,
      'clean: { email: true }',
      'tokenizer: { numWords: 500, maxLen: 50, bootstrapRows: 10 }',
      'model: { backend: wasm, seed: 3 }',
      `sink: { dir: ${JSON.stringify(path.join(dir, 'out'))} }`,
      'metrics: { enabled: false }',
    ].join('\n'),
  );
  return { dir, pipeline, emails };
}

test('should fit the vocabulary Keras fits on the same cleaned texts, skipping what the pipeline dead-letters', { timeout: VENV_TIMEOUT_MS }, async (t) => {
  const { dir, pipeline, emails } = await setUp(t);
  const out = path.join(dir, 'tokenizer.json');
  const result = await cli(['tokenizer', 'fit', pipeline, '--out', out, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { documents: number; words: number; skipped: Record<string, number> };
  assert.equal(summary.documents, emails.length);
  assert.deepEqual(summary.skipped, { 'empty-text': 1, 'invalid-utf8': 1 });

  const saved = JSON.parse(await readFile(out, 'utf8')) as TokenizerJSON;
  assert.equal(saved.frozen, true);
  assert.equal(saved.config.numWords, 500);
  assert.equal(summary.words, saved.wordIndex.length);

  // Keras' Tokenizer on the texts our cleaner makes of the same e-mails.
  const texts = path.join(dir, 'texts.json');
  await writeFile(texts, JSON.stringify(await Promise.all(emails.map((e) => cleanEmail(e)))));
  const { stdout: python } = await run('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { timeout: VENV_TIMEOUT_MS });
  const script = [
    'import json, sys',
    'from tf_keras.preprocessing.text import Tokenizer',
    't = Tokenizer(num_words=500)',
    't.fit_on_texts(json.load(open(sys.argv[1])))',
    'print(json.dumps({"document_count": t.document_count, "word_index": list(t.word_index.items())}))',
  ].join('\n');
  const { stdout } = await run(python.trim(), ['-c', script, texts], { maxBuffer: 64 << 20, timeout: 120_000 });
  const keras = JSON.parse(stdout) as { document_count: number; word_index: [string, number][] };
  assert.equal(saved.documentCount, keras.document_count);
  assert.deepEqual(saved.wordIndex, keras.word_index);
});

test("should write Keras' format with --format keras, which tf_keras' tokenizer_from_json reads", { timeout: VENV_TIMEOUT_MS }, async (t) => {
  const { dir, pipeline } = await setUp(t);
  const ours = path.join(dir, 'ours.json');
  const keras = path.join(dir, 'keras.json');
  assert.equal((await cli(['tokenizer', 'fit', pipeline, '--out', ours, '--json'])).code, 0);
  const result = await cli(['tokenizer', 'fit', pipeline, '--out', keras, '--format', 'keras', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const { stdout: python } = await run('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { timeout: VENV_TIMEOUT_MS });
  const script = [
    'import json, sys',
    'from tf_keras.preprocessing.text import tokenizer_from_json',
    't = tokenizer_from_json(open(sys.argv[1]).read())',
    'print(json.dumps({"num_words": t.num_words, "word_index": list(t.word_index.items())}))',
  ].join('\n');
  const { stdout } = await run(python.trim(), ['-c', script, keras], { maxBuffer: 64 << 20, timeout: 120_000 });
  const loaded = JSON.parse(stdout) as { num_words: number; word_index: [string, number][] };
  const saved = JSON.parse(await readFile(ours, 'utf8')) as TokenizerJSON;
  assert.equal(loaded.num_words, 500);
  assert.deepEqual(loaded.word_index, saved.wordIndex);
});

test('should start a replay from the fitted tokenizer instead of a bootstrap fit', async (t) => {
  const { dir, pipeline } = await setUp(t);
  const out = path.join(dir, 'tokenizer.json');
  assert.equal((await cli(['tokenizer', 'fit', pipeline, '--out', out])).code, 0);
  const definition = await readFile(pipeline, 'utf8');
  await writeFile(pipeline, definition.replace('bootstrapRows: 10', `path: ${JSON.stringify(out)}`));
  const replayed = await cli(['replay', pipeline, '--limit', '20', '--log-level', 'info']);
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.doesNotMatch(replayed.stderr, /vocabulary fitted and frozen/, 'no bootstrap fit');
  assert.match(replayed.stdout, /rows written\s+20/);
});

test('should exit 2 naming the problem for a missing --out, a bad --limit and a Kafka pipeline without --input', async (t) => {
  const { dir, pipeline } = await setUp(t);
  const noOut = await cli(['tokenizer', 'fit', pipeline]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /--out/);
  const badLimit = await cli(['tokenizer', 'fit', pipeline, '--out', path.join(dir, 't.json'), '--limit', 'many']);
  assert.equal(badLimit.code, 2);
  assert.match(badLimit.stderr, /--limit|many/);
  const kafka = await cli(['tokenizer', 'fit', path.join(repoRoot, 'pipelines', 'kafka-spamassassin.yaml'), '--out', path.join(dir, 't.json')]);
  assert.equal(kafka.code, 2);
  assert.match(kafka.stderr, /source\.type.*--input/);
});
