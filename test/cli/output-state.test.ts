/**
 * What a replay leaves on disk belongs to its pipeline and input: a second input replayed
 * into the same folder keeps the first one's checkpoint and dead letters, and a folder of
 * the legacy layout (`file=<input>/partition=0/`, a shared `dead-letters.jsonl`, the
 * bundled pipeline's `checkpoint/`) is found by `inspect` and moved into place by `--resume`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { runCli, tempDir, type CliRun } from '../helpers/cli.js';

const TEXTS = ['free money now', 'meeting at noon', 'win a prize today', 'lunch tomorrow?', 'cheap pills online', 'notes from the call'];

/** Six messages; the one at `badRow` has label 7, which becomes an invalid-label dead letter. */
async function writeInput(file: string, badRow: number): Promise<void> {
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'UTF8' }, label: { type: 'INT32', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 8 },
  );
  for (const [i, text] of TEXTS.entries()) await writer.append({ id: `m${i}`, text, label: i === badRow ? 7 : i % 2 });
  await writer.finish(file);
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }): Promise<{ dir: string; pipeline: string }> {
  const dir = await tempDir(t);
  await writeInput(path.join(dir, 'mail.parquet'), 2);
  await writeInput(path.join(dir, 'other.parquet'), 1);
  const pipeline = path.join(dir, 'p.yaml');
  await writeFile(
    pipeline,
    'name: p\nsource:\n  type: parquet\n  path: mail.parquet\ntokenizer:\n  bootstrapRows: 3\nmodel:\n  backend: wasm\nsink:\n  dir: out\nmetrics:\n  enabled: false\n',
  );
  return { dir, pipeline };
}

function summaryOf(run: CliRun): Record<string, unknown> {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

interface InspectJson {
  consistent: boolean;
  rows: number;
  partitions: Array<{ source: string; legacy: boolean; missingOffsets: number; deadLetteredOffsets: number }>;
  deadLetters: { files: string[]; total: number };
  legacyFolders: Array<{ folder: string; movesTo: string }>;
}

async function inspect(dir: string): Promise<{ code: number | null; report: InspectJson }> {
  const run = await runCli(['inspect', path.join(dir, 'out', 'p'), '--json'], dir);
  return { code: run.code, report: JSON.parse(run.stdout) as InspectJson };
}

const read = (file: string): Promise<string> => readFile(file, 'utf8');

test("should keep one input's checkpoint and dead letters when another input is replayed into the same folder", async (t) => {
  const { dir, pipeline } = await setUp(t);
  const out = path.join(dir, 'out', 'p');
  summaryOf(await runCli(['replay', pipeline, '--json'], dir));
  const mailLatest = await read(path.join(out, '_checkpoints', 'mail', 'LATEST'));
  const mailLetters = await read(path.join(out, '_dead-letters', 'mail.jsonl'));
  assert.equal(mailLetters.trim().split('\n').length, 1);

  // Another input, a short run: before, it replaced the shared dead-letter file and the checkpoint.
  summaryOf(await runCli(['replay', pipeline, '--input', 'other.parquet', '--limit', '5', '--json'], dir));
  assert.equal(await read(path.join(out, '_checkpoints', 'mail', 'LATEST')), mailLatest);
  assert.equal(await read(path.join(out, '_dead-letters', 'mail.jsonl')), mailLetters);
  assert.deepEqual((await readdir(path.join(out, '_checkpoints'))).sort(), ['mail', 'other']);

  // Every missing offset of both inputs has its letter: consistent.
  const { code, report } = await inspect(dir);
  assert.equal(code, 0, JSON.stringify(report));
  assert.deepEqual(
    report.partitions.map((p) => [p.source, p.missingOffsets, p.deadLetteredOffsets]),
    [['mail', 1, 1], ['other', 1, 1]],
  );

  // A fresh run of the first input replaces its own letters only.
  summaryOf(await runCli(['replay', pipeline, '--json'], dir));
  assert.equal(await read(path.join(out, '_dead-letters', 'mail.jsonl')), mailLetters);
  assert.equal((await read(path.join(out, '_dead-letters', 'other.jsonl'))).trim().split('\n').length, 1);

  // With two inputs' checkpoints, `model export` of the folder asks which one.
  const exported = await runCli(['model', 'export', out, '--out', path.join(dir, 'keras')], dir);
  assert.equal(exported.code, 2, exported.stderr);
  assert.match(exported.stderr, /holds the checkpoints of 2 inputs; name one: \S+_checkpoints\/mail, \S+_checkpoints\/other$/m);
});

test('should find a folder of the legacy layout with inspect, and move it into place with --resume', async (t) => {
  const { dir, pipeline } = await setUp(t);
  const out = path.join(dir, 'out', 'p');
  summaryOf(await runCli(['replay', pipeline, '--limit', '4', '--json'], dir));
  // What the layout before this one left: hive-style folders, one shared dead-letter file,
  // and the checkpoint where the bundled pipeline pinned it.
  await mkdir(path.join(out, 'file=mail.parquet'));
  await rename(path.join(out, 'input=mail', 'partition-0'), path.join(out, 'file=mail.parquet', 'partition=0'));
  await rename(path.join(out, '_dead-letters', 'mail.jsonl'), path.join(out, 'dead-letters.jsonl'));
  await rename(path.join(out, '_checkpoints', 'mail'), path.join(out, 'checkpoint'));

  const before = await inspect(dir);
  assert.equal(before.code, 0, JSON.stringify(before.report));
  assert.deepEqual(before.report.legacyFolders, [{ folder: path.join('file=mail.parquet', 'partition=0'), movesTo: path.join('input=mail', 'partition-0') }]);
  assert.deepEqual([before.report.rows, before.report.deadLetters.total], [3, 1]);

  const resumed = summaryOf(await runCli(['replay', pipeline, '--resume', '--json'], dir));
  assert.deepEqual([resumed.resumedAtRow, resumed.rowsIn, resumed.rowsWritten], [4, 2, 2]);
  assert.deepEqual((await readdir(out)).sort(), ['_checkpoints', '_dead-letters', 'input=mail']);

  const after = await inspect(dir);
  assert.equal(after.code, 0, JSON.stringify(after.report));
  assert.deepEqual([after.report.rows, after.report.deadLetters.total, after.report.legacyFolders.length], [5, 1, 0]);
});
