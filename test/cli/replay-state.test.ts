/**
 * `textstream replay` on a user's own data: text labels mapped by decode.labels, a run
 * whose every row is a dead letter failing loudly, and runs that read nothing leaving the
 * last real run's checkpoint alone.
 */
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { CLI, runCli, tempDir, userEnvironment, type CliRun } from '../helpers/cli.js';

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
      `model:\n  backend: wasm\nsink:\n  dir: out\nmetrics:\n  enabled: false\n${extra}`,
  );
  return file;
}

function summaryOf(run: CliRun): Record<string, unknown> {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** The checkpoint root of mail.parquet: its own folder in the output's _checkpoints. */
const rootOf = (dir: string): string => path.join(dir, 'out', 'p', '_checkpoints', 'mail');
const latestOf = async (dir: string): Promise<string> => (await readFile(path.join(rootOf(dir), 'LATEST'), 'utf8')).trim();

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
    /^textstream replay: every one of the 6 rows became a dead letter \(invalid-label 6\) and nothing was written; the reasons are in \S+_dead-letters\/mail\.jsonl; .*decode\.labels/m,
  );
  // Nothing reached the model, so there is no checkpoint to leave behind either.
  assert.equal((JSON.parse(run.stdout) as { checkpointDir: unknown }).checkpointDir, null);
  await assert.rejects(readdir(rootOf(dir)), { code: 'ENOENT' });
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
  assert.deepEqual((await readdir(rootOf(dir))).filter((d) => d.startsWith('ckpt-')).length, 1);
});

test('should say, in the summary and the log, that it built the bundled corpus where source.path did not exist', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'p.yaml');
  // A copy of the example pipeline whose path was mistyped.
  await writeFile(file, 'name: p\nsource:\n  type: parquet\n  path: my-emals.parquet\n  dataset: spamassassin\nclean:\n  email: true\nmodel:\n  backend: wasm\nsink:\n  dir: out\nmetrics:\n  enabled: false\n');
  const run = await runCli(['replay', file, '--limit', '20'], dir);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^textstream replay of my-emals\.parquet \(built by this run from source\.dataset: the file did not exist\)$/m);
  assert.match(run.stderr, /"level":40,.*source\.path my-emals\.parquet does not exist: building the bundled SpamAssassin corpus there/);
  const again = await runCli(['replay', file, '--limit', '20', '--json'], dir);
  assert.equal((JSON.parse(again.stdout) as { datasetBuilt: boolean }).datasetBuilt, false, 'the second run reads the file the first built');
});

/** inspect --json of the pipeline's output: consistent, and how many rows. */
async function inspectRows(dir: string): Promise<number> {
  const run = await runCli(['inspect', path.join(dir, 'out', 'p'), '--json'], dir);
  assert.equal(run.code, 0, `inspect: ${run.stderr}${run.stdout}`);
  const report = JSON.parse(run.stdout) as { consistent: boolean; rows: number };
  assert.ok(report.consistent);
  return report.rows;
}

test('should continue after the last row the checkpoint learnt with --resume, writing and evaluating every row once', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir, 'decode:\n  labels: {spam: 1, ham: 0}\n');
  const first = summaryOf(await runCli(['replay', file, '--json', '--limit', '4'], dir));
  assert.equal(first.rowsWritten, 4);

  const second = summaryOf(await runCli(['replay', file, '--json', '--resume'], dir));
  assert.equal(second.resumedAtRow, 4);
  assert.deepEqual([second.rowsIn, second.rowsWritten], [2, 2]);
  // The evaluation goes on from the checkpoint's: each row counted once, not 4 + 6.
  assert.equal((second.evaluation as { labelledRows: number }).labelledRows, TEXTS.length);
  assert.equal(await inspectRows(dir), TEXTS.length);

  // Everything learnt already: nothing to read, nothing written, the checkpoint kept.
  const latest = await latestOf(dir);
  const third = summaryOf(await runCli(['replay', file, '--json', '--resume'], dir));
  assert.deepEqual([third.resumedAtRow, third.rowsIn, third.rowsWritten], [TEXTS.length, 0, 0]);
  assert.equal(await latestOf(dir), latest);
});

test('should learn again, not write again, rows written after the checkpoint it resumes from (a crash before the save)', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir, 'decode:\n  labels: {spam: 1, ham: 0}\n');
  summaryOf(await runCli(['replay', file, '--json', '--limit', '4'], dir));
  const beforeCrash = await latestOf(dir);
  summaryOf(await runCli(['replay', file, '--json', '--resume'], dir));
  // As if the process had died after publishing rows 4–5 but before saving their checkpoint.
  await writeFile(path.join(rootOf(dir), 'LATEST'), `${beforeCrash}\n`);

  const again = summaryOf(await runCli(['replay', file, '--json', '--resume'], dir));
  assert.equal(again.resumedAtRow, 4);
  assert.deepEqual([again.rowsWritten, again.rowsRetrained], [0, 2]);
  assert.equal(await inspectRows(dir), TEXTS.length, 'no row written twice');
});

test('should tell how to continue when a replay is stopped by a signal', async (t) => {
  const dir = await tempDir(t);
  const file = await pipeline(dir, 'decode:\n  labels: {spam: 1, ham: 0}\n');
  // Long enough that the signal lands mid-run: 3 000 rows.
  const writer = await ParquetFileWriter.open(
    path.join(dir, 'long.parquet.tmp'),
    { id: { type: 'UTF8' }, text: { type: 'UTF8' }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 1000 },
  );
  for (let i = 0; i < 3000; i++) await writer.append({ id: `r${i}`, text: `${TEXTS[i % TEXTS.length]!} ${i}`, label: i % 2 === 0 ? 'spam' : 'ham' });
  await writer.finish(path.join(dir, 'long.parquet'));
  const child = spawn(process.execPath, [CLI, 'replay', file, '--input', 'long.parquet'], { cwd: dir, env: userEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let signalled = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    // Once the vocabulary is fitted, batches are running: stop then (one signal; a second exits at once).
    if (!signalled && stderr.includes('vocabulary fitted')) {
      signalled = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^textstream replay: stopped early; continue where it stopped with: textstream replay \S+p\.yaml --input long\.parquet --resume$/m);
  const resumed = summaryOf(await runCli(['replay', file, '--input', 'long.parquet', '--resume', '--json'], dir));
  assert.ok((resumed.resumedAtRow as number) > 0, 'the resumed run starts where the stopped one ended');
  assert.equal((resumed.evaluation as { labelledRows: number }).labelledRows, 3000);
});
