import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pino } from 'pino';
import { parsePipeline } from '../../src/config/load.js';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { replay } from '../../src/runtime/replay.js';
import { repoRoot } from '../helpers/paths.js';
import { corpusMessages } from '../helpers/corpus.js';

const silent = pino({ level: 'silent' });

/** Real emails, interleaved spam and ham, plus one row of each kind of bad input. */
async function writeInput(file: string): Promise<{ good: number; bad: Map<string, string> }> {
  const spam = await corpusMessages('spam-2', 60);
  const ham = await corpusMessages('easy-ham-1', 60);
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY', optional: true }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 64 },
  );
  let good = 0;
  for (let i = 0; i < 60; i++) {
    await writer.append({ id: spam[i]!.id, text: Buffer.from(spam[i]!.text), label: '1' });
    await writer.append({ id: ham[i]!.id, text: Buffer.from(ham[i]!.text), label: i % 10 === 0 ? null : '0' });
    good += 2;
  }
  const bad = new Map<string, string>([
    ['bad/empty', 'empty-text'],
    ['bad/latin1', 'invalid-utf8'],
    ['bad/huge', 'oversized'],
    ['bad/label-word', 'invalid-label'],
    ['bad/label-two', 'invalid-label'],
    ['bad/no-text', 'missing-text'],
  ]);
  await writer.append({ id: 'bad/empty', text: Buffer.from(''), label: '0' });
  await writer.append({ id: 'bad/latin1', text: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]), label: '1' });
  await writer.append({ id: 'bad/huge', text: Buffer.alloc(5 * 1024 * 1024, 'a'), label: '0' });
  await writer.append({ id: 'bad/label-word', text: Buffer.from('free money now'), label: 'spam' });
  await writer.append({ id: 'bad/label-two', text: Buffer.from('hello there'), label: '2' });
  await writer.append({ id: 'bad/no-text', label: '1' });
  await writer.finish(file);
  return { good, bad };
}

test('should replay real emails end to end: every row written or dead-lettered, metrics served, checkpoint saved', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-replay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = path.join(dir, 'mail.parquet');
  const { good, bad } = await writeInput(input);

  const config = parsePipeline({
    name: 'e2e',
    source: { type: 'parquet', path: input, batchRows: 50 },
    clean: { email: true },
    tokenizer: { bootstrapRows: 40 },
    batch: { maxRows: 32 },
    model: { backend: 'wasm', checkpointDir: path.join(dir, 'ckpt'), seed: 7 },
    sink: { dir: path.join(dir, 'out'), rotateRows: 50 },
    metrics: { port: 0 },
  });
  let metricsUrl: string | null = null;
  let scrape: Promise<string> | null = null;
  const summary = await replay(config, {
    logger: silent,
    signal: new AbortController().signal,
    onStart: (info) => {
      metricsUrl = info.metricsUrl;
    },
    onProgress: () => {
      scrape ??= fetch(metricsUrl!).then((r) => r.text());
    },
  });

  // Accounting: rows in = rows written + dead letters, each bad row with its reason.
  assert.equal(summary.rowsIn, good + bad.size);
  assert.equal(summary.rowsWritten, good);
  assert.equal(summary.deadLetters, bad.size);
  assert.deepEqual(summary.deadLettersByReason, { 'empty-text': 1, 'invalid-utf8': 1, oversized: 1, 'invalid-label': 2, 'missing-text': 1 });
  assert.equal(summary.rowsTrained, good - 6, 'the unlabelled ham rows are scored, not trained on');
  assert.equal(summary.backend.name, 'wasm');
  assert.ok(summary.modelVersion > 0);
  assert.ok(summary.evaluation.accuracy !== null && summary.evaluation.count === good - 6);

  const letters = (await readFile(summary.deadLetterPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  assert.equal(letters.length, bad.size);
  // A replay's original bytes are the whole row as JSON, the text cell in base64.
  const originalRow = (reason: string): { id: string; text: { base64: string } | null; label: string | null } =>
    JSON.parse(Buffer.from(letters.find((l) => l.reason === reason)!.original_base64!, 'base64').toString('utf8')) as never;
  assert.deepEqual([...Buffer.from(originalRow('invalid-utf8').text!.base64, 'base64')], [0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]);
  assert.equal(Buffer.from(originalRow('oversized').text!.base64, 'base64').length, 5 * 1024 * 1024);
  assert.equal(originalRow('missing-text').id, 'bad/no-text');
  for (const letter of letters) {
    const { id } = JSON.parse(Buffer.from(letter.original_base64!, 'base64').toString('utf8')) as { id: string };
    assert.equal(bad.get(id), letter.reason, id);
  }

  // Metrics were served while the run was going.
  const metricsText = await scrape!;
  assert.match(metricsText, /^textstream_stage_output_messages_total\{stage="decode",pipeline="e2e"\} \d+/m);
  assert.match(metricsText, /^textstream_model_backend_info\{backend="wasm",lstm="fused",pipeline="e2e"\} 1$/m);

  // The Parquet output, read back by DuckDB: one row per good message, none twice.
  assert.equal(summary.files.length, Math.ceil(good / 50), 'a new file every 50 rows');
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const glob = path.join(config.sink.dir, 'e2e', '**', '*.parquet');
  const reader = await db.runAndReadAll(
    `SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids, min(score) AS lo, max(score) AS hi,
            sum(CASE WHEN label IS NULL THEN 1 ELSE 0 END)::INTEGER AS unlabelled, max(model_version)::INTEGER AS v
     FROM read_parquet('${glob}')`,
  );
  const [row] = reader.getRowObjectsJS() as Array<Record<string, number>>;
  assert.equal(row!.n, good);
  assert.equal(row!.ids, good);
  assert.ok(row!.lo! >= 0 && row!.hi! <= 1);
  assert.equal(row!.unlabelled, 6);
  assert.ok(row!.v! < summary.modelVersion, 'rows carry the version that scored them, before training on them');
  db.closeSync();

  // The checkpoint is there and resumes. The same input: every row was learnt or
  // dead-lettered (the last rows are letters), so nothing is read, nothing lettered twice.
  assert.ok((await readdir(path.join(dir, 'ckpt', 'mail'))).includes('LATEST'), 'a checkpoint root per input');
  const same = await replay(config, { logger: silent, signal: new AbortController().signal, resume: true });
  assert.deepEqual([same.rowsIn, same.rowsWritten, same.resumedAtRow, same.modelVersion], [0, 0, good, summary.modelVersion]);
  assert.equal((await readFile(summary.deadLetterPath, 'utf8')).trim().split('\n').length, bad.size);
  // Another input, from this input's checkpoint: the model goes on learning, its version
  // count with it, and saves into the other input's root.
  const mailLatest = await readFile(path.join(dir, 'ckpt', 'mail', 'LATEST'), 'utf8');
  const other = path.join(dir, 'more-mail.parquet');
  await copyFile(input, other);
  const resumed = await replay(config, { input: other, logger: silent, signal: new AbortController().signal, resumeFrom: path.join(dir, 'ckpt', 'mail'), limit: 40 });
  assert.equal(resumed.resumedAtRow, null);
  assert.ok(resumed.modelVersion > summary.modelVersion);
  assert.equal(resumed.checkpointDir, path.join(dir, 'ckpt', 'more-mail'));
  assert.equal(await readFile(path.join(dir, 'ckpt', 'mail', 'LATEST'), 'utf8'), mailLatest, 'the first input keeps its checkpoint');
});

/** The to_json() output of the golden fixture's Keras tokenizer with the given config name. */
async function kerasTokenizerJson(name: string): Promise<string> {
  const golden = JSON.parse(await readFile(path.join(repoRoot, 'test', 'fixtures', 'keras-tokenizer-golden.json'), 'utf8')) as {
    configs: Array<{ name: string; toJson?: string }>;
  };
  return golden.configs.find((c) => c.name === name)!.toJson!;
}

test('should start from a tokenizer fitted by Keras instead of fitting one, and refuse one too large for the embedding', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-replay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = path.join(dir, 'mail.parquet');
  await writeInput(input);
  const tokenizerPath = path.join(dir, 'keras-tokenizer.json');
  await writeFile(tokenizerPath, await kerasTokenizerJson('num_words_10000'));
  const definition = {
    name: 'keras-vocab',
    source: { type: 'parquet', path: input },
    clean: { email: true },
    tokenizer: { path: tokenizerPath, bootstrapRows: 1_000_000 },
    model: { backend: 'wasm' },
    sink: { dir: path.join(dir, 'out') },
    metrics: { enabled: false },
  };
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
  // bootstrapRows is far beyond the input: had the vocabulary not been loaded frozen,
  // nothing would be scored until the end, and the log would say it was fitted.
  const summary = await replay(parsePipeline(definition), { logger, signal: new AbortController().signal, limit: 40 });
  assert.equal(summary.rowsWritten, 40);
  assert.ok(!logs.some((l) => l.includes('vocabulary fitted')));

  await writeFile(tokenizerPath, await kerasTokenizerJson('num_words_50_oov'));
  const tooSmall = parsePipeline({ ...definition, tokenizer: { path: tokenizerPath, numWords: 10 } });
  await assert.rejects(replay(tooSmall, { logger: silent, signal: new AbortController().signal }), /tokenizer\.path: .*up to 50.*numWords = 10 rows/);
});
