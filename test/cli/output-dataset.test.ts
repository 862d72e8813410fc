/**
 * A replay's output folder is what analysts point their readers at: pandas, pyarrow,
 * DuckDB and Spark must each open it as one dataset, every row once, with the types the
 * sink declares, skipping the checkpoints and dead letters kept beside the data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

const ROWS = 40;

/** `rows` messages, every fifth unlabelled and the seventh with label 7 (a dead letter). */
async function writeInput(file: string): Promise<void> {
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'UTF8' }, label: { type: 'INT32', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 16 },
  );
  for (let i = 0; i < ROWS; i++) {
    const label = i === 7 ? 7 : i % 5 === 0 ? null : i % 2;
    await writer.append({ id: `m${i}`, text: i % 2 === 1 ? `win money now ${i}` : `meeting notes ${i}`, label });
  }
  await writer.finish(file);
}

interface ReaderResult {
  rows?: number;
  distinct_keys?: number | null;
  types?: Record<string, string>;
  error?: string;
}

/** What each reader must see: the sink's declared types (sinks/parquet-rows.ts outputSchema). */
const DECLARED: Record<string, string> = {
  id: 'string',
  score: 'float32',
  predicted: 'int32',
  label: 'int32',
  model_version: 'int64',
  source: 'string',
  partition: 'int32',
  offset: 'int64',
  timestamp: 'timestamp_utc',
  processed_at: 'timestamp_utc',
  // From the folder input=<name>: the Hive partition every reader adds.
  input: 'string',
};

test('should leave an output folder that pandas, pyarrow, DuckDB and Spark each read as one dataset with the declared types', async (t) => {
  const dir = await tempDir(t);
  await writeInput(path.join(dir, 'mail.parquet'));
  await writeInput(path.join(dir, 'more.parquet'));
  const pipeline = path.join(dir, 'p.yaml');
  await writeFile(
    pipeline,
    'name: p\nsource:\n  type: parquet\n  path: mail.parquet\ntokenizer:\n  bootstrapRows: 8\nmodel:\n  backend: wasm\nsink:\n  dir: out\n  rotateRows: 10\nmetrics:\n  enabled: false\n',
  );
  // Two inputs, so the folder holds two sources, two checkpoint roots and two dead-letter files.
  for (const input of ['mail.parquet', 'more.parquet']) {
    const run = await runCli(['replay', pipeline, '--input', input, '--json'], dir);
    assert.equal(run.code, 0, run.stderr);
  }
  const written = 2 * (ROWS - 1);

  const python = execFileSync('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { encoding: 'utf8' }).trim();
  const script = path.join(repoRoot, 'test', 'helpers', 'read_dataset.py');
  // The readers' timings and Spark's start-up chatter (stderr) go to the test's diagnostics.
  const read = spawnSync(python, [script, path.join(dir, 'out', 'p')], { encoding: 'utf8', timeout: 300_000 });
  for (const line of read.stderr.split('\n').filter((l) => l.startsWith('read_dataset:'))) t.diagnostic(line);
  assert.equal(read.status, 0, read.stderr);
  const results = JSON.parse(read.stdout) as Record<string, ReaderResult>;
  assert.deepEqual(Object.keys(results).sort(), ['duckdb', 'pandas', 'pyarrow', 'spark']);
  for (const [reader, result] of Object.entries(results)) {
    assert.equal(result.error, undefined, `${reader}: ${result.error}`);
    assert.equal(result.rows, written, `${reader} reads every row`);
    assert.equal(result.distinct_keys, written, `${reader} reads each row once`);
    // pandas' NumPy types have no integer null: a nullable int32 column reads as float64 (NaN).
    // Hive partition values are categorical there.
    const expected = reader === 'pandas' ? { ...DECLARED, label: 'float64', input: 'dictionary' } : DECLARED;
    assert.deepEqual(result.types, expected, `${reader}: column types`);
  }
});
