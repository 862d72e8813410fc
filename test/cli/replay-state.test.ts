/**
 * `textstream replay` on a user's own data: text labels mapped by decode.labels, a run
 * whose every row is a dead letter failing loudly, and runs that read nothing leaving the
 * last real run's checkpoint alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParquetFileWriter } from '../../src/sinks/parquet.js';
import { runCli, tempDir, type CliRun } from '../helpers/cli.js';

const TEXTS = ['free money now', 'meeting at noon', 'win a prize today', 'lunch tomorrow?', 'cheap pills online', 'notes from the call'];

/** A Parquet file whose labels are the words "spam" and "ham". */
async function writeTextLabelled(file: string): Promise<void> {
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'UTF8' }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 8 },
  );
  for (const [i, text] of TEXTS.entries()) await writer.append({ id: `m${i}`, text, label: i % 2 === 0 ? 'spam' : 'ham' });
  await writer.finish(file);
}

async function pipeline(dir: string, extra = ''): Promise<string> {
  const file = path.join(dir, 'p.yaml');
  await writeTextLabelled(path.join(dir, 'mail.parquet'));
  await writeFile(
    file,
    `name: p\nsource:\n  type: parquet\n  path: mail.parquet\ntokenizer:\n  bootstrapRows: 4\n` +
      `model:\n  backend: wasm\n  checkpointDir: ckpt\nsink:\n  dir: out\nmetrics:\n  enabled: false\n${extra}`,
  );
  return file;
}

function summaryOf(run: CliRun): Record<string, unknown> {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const latestOf = async (dir: string): Promise<string> => (await readFile(path.join(dir, 'ckpt', 'LATEST'), 'utf8')).trim();

test('should train on text labels mapped by decode.labels', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir, 'decode:\n  labels: {spam: 1, ham: 0}\n');
  const summary = summaryOf(await runCli(['replay', file, '--json'], dir));
  assert.equal(summary.rowsWritten, TEXTS.length);
  assert.equal(summary.deadLetters, 0);
  assert.equal(summary.rowsTrained, TEXTS.length);
  const evaluation = summary.evaluation as { positives: number; negatives: number };
  assert.deepEqual([evaluation.positives, evaluation.negatives], [3, 3]);
});

test('should exit 1 and say what to fix when every row became a dead letter', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir);
  const run = await runCli(['replay', file, '--json'], dir);
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /^textstream replay: every one of the 6 rows became a dead letter \(invalid-label 6\) and nothing was written; the reasons are in \S+dead-letters\.jsonl; .*decode\.labels/m,
  );
  // Nothing reached the model, so there is no checkpoint to leave behind either.
  assert.equal((JSON.parse(run.stdout) as { checkpointDir: unknown }).checkpointDir, null);
  await assert.rejects(readdir(path.join(dir, 'ckpt')), { code: 'ENOENT' });
});

test('should keep the last checkpoint when a later run reads no row or only dead letters', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir, 'decode:\n  labels: {spam: 1, ham: 0}\n');
  summaryOf(await runCli(['replay', file, '--json'], dir));
  const latest = await latestOf(dir);

  const empty = summaryOf(await runCli(['replay', file, '--json', '--limit', '0'], dir));
  assert.equal(empty.checkpointDir, null);
  assert.equal(await latestOf(dir), latest, '--limit 0 must not replace the checkpoint');

  // The same input without the label mapping: every row is a dead letter.
  await writeFile(file, (await readFile(file, 'utf8')).replace('decode:\n  labels: {spam: 1, ham: 0}\n', ''));
  assert.equal((await runCli(['replay', file, '--json'], dir)).code, 1);
  assert.equal(await latestOf(dir), latest, 'a run of dead letters must not replace the checkpoint');
  assert.deepEqual((await readdir(path.join(dir, 'ckpt'))).filter((d) => d.startsWith('ckpt-')).length, 1);
});
