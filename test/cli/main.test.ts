import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; `onStderr` may act on the live process (e.g. send a signal). */
function run(args: string[], cwd: string, onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, (s) => child.kill(s));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const pipelineYaml = `
name: cli
source:
  type: parquet
  path: data/corpus.parquet
  dataset: spamassassin
clean:
  email: true
tokenizer:
  bootstrapRows: 30
batch:
  maxRows: 32
model:
  backend: wasm
sink:
  dir: out
metrics:
  port: 0
`;

test('should print help with examples and exit codes, and the version', async (t) => {
  const dir = await tempDir(t);
  const help = await run(['--help'], dir);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /replay \[options\] <pipeline\.yaml>/);
  assert.match(help.stdout, /dataset/);
  assert.match(help.stdout, /Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error/);
  const replayHelp = await run(['replay', '--help'], dir);
  assert.equal(replayHelp.code, 0);
  assert.match(replayHelp.stdout, /--limit <n>/);
  assert.match(replayHelp.stdout, /Examples:/);
  const version = await run(['--version'], dir);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('should exit 2 naming the bad field for an invalid pipeline, and for bad usage', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'bad.yaml'), pipelineYaml.replace('maxRows: 32', 'maxRows: -1'));
  const bad = await run(['replay', 'bad.yaml'], dir);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.yaml: batch\.maxRows: /);
  const missing = await run(['replay', 'nope.yaml'], dir);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.yaml: cannot read pipeline file/);
  const usage = await run(['replay', 'x.yaml', '--limit', 'many'], dir);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--limit <n>.*expected a whole number/);
  const unknown = await run(['frobnicate'], dir);
  assert.equal(unknown.code, 2);
});

test('should build the bundled dataset on first use, replay it and print the summary', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'p.yaml'), pipelineYaml);
  const result = await run(['replay', 'p.yaml', '--limit', '64'], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /"msg":"dataset ready"/);
  assert.match(result.stderr, /"msg":"model backend: wasm"/);
  assert.match(result.stdout, /rows in +64\n/);
  assert.match(result.stdout, /rows written +64 in 1 Parquet file/);
  assert.match(result.stdout, /prequential accuracy +\d+\.\d %/);
  assert.match(result.stdout, /^ {2}model +64 /m);
  const files = await readdir(path.join(dir, 'out', 'cli', 'input=corpus', 'partition-0'));
  assert.deepEqual(files, ['00000000000000000000-00000000000000000063.parquet']);
});

test('should print the replay summary as one JSON object with --json, and no progress', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'p.yaml'), pipelineYaml);
  const result = await run(['replay', 'p.yaml', '--limit', '40', '--json'], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /progress:/);
  const summary = JSON.parse(result.stdout) as {
    rowsIn: number;
    rowsWritten: number;
    lstm: string;
    evaluation: { labelledRows: number; accuracy: number };
    stages: Record<string, { rowsOut: number }>;
    files: { path: string; rows: number; firstOffset: string; lastOffset: string }[];
  };
  assert.equal(summary.rowsIn, 40);
  assert.equal(summary.rowsWritten, 40);
  assert.equal(summary.stages.model?.rowsOut, 40);
  assert.equal(summary.evaluation.labelledRows, 40);
  assert.ok(summary.evaluation.accuracy >= 0 && summary.evaluation.accuracy <= 1);
  assert.deepEqual(
    summary.files.map((f) => [path.basename(f.path), f.rows, f.firstOffset, f.lastOffset]),
    [['00000000000000000000-00000000000000000039.parquet', 40, '0', '39']],
  );
});

test('should stop on SIGTERM after finishing its files, report it and exit 1', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'p.yaml'), pipelineYaml);
  let sent = false;
  const result = await run(['replay', 'p.yaml'], dir, (stderr, kill) => {
    if (!sent && stderr.includes('vocabulary fitted')) {
      sent = true;
      kill('SIGTERM');
    }
  });
  assert.ok(sent);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /shutting down/);
  assert.match(result.stdout, /\(stopped early\)/);
  const written = Number(/rows written +([\d,]+)/.exec(result.stdout)![1]!.replace(/,/g, ''));
  assert.ok(written > 0 && written < 6046);
  const files = await readdir(path.join(dir, 'out', 'cli', 'input=corpus', 'partition-0'));
  assert.ok(files.length > 0 && files.every((f) => f.endsWith('.parquet')), 'no temporary file is left behind');
});
