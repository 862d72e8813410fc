import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadPipeline } from '../../src/config/load.js';
import { extractReferenceBlock } from '../../src/config/reference.js';
import { runCli as run, tempDir } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

const pipelines = path.join(repoRoot, 'pipelines');

test('should print the committed JSON Schema, or write it with --out', async (t) => {
  const dir = await tempDir(t);
  const committed = await readFile(path.join(pipelines, 'pipeline.schema.json'), 'utf8');
  const printed = await run(['config', 'schema'], dir);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, committed);
  const written = await run(['config', 'schema', '--out', 'schema.json'], dir);
  assert.equal(written.code, 0, written.stderr);
  assert.equal(written.stdout, '');
  assert.equal(await readFile(path.join(dir, 'schema.json'), 'utf8'), committed);
  // A missing folder is created, as tokenizer fit and report do.
  const nested = await run(['config', 'schema', '--out', 'no/such/dir/schema.json'], dir);
  assert.equal(nested.code, 0, nested.stderr);
  assert.equal(await readFile(path.join(dir, 'no', 'such', 'dir', 'schema.json'), 'utf8'), committed);
});

test('should print the reference table docs/configuration.md holds, or update a file between its markers', async (t) => {
  const dir = await tempDir(t);
  const configuration = await readFile(path.join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const printed = await run(['config', 'reference'], dir);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, extractReferenceBlock(configuration));
  const doc = path.join(dir, 'doc.md');
  await writeFile(doc, '# x\n<!-- config-reference:start -->\nstale\n<!-- config-reference:end -->\nend\n');
  const updated = await run(['config', 'reference', '--readme', 'doc.md'], dir);
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal(extractReferenceBlock(await readFile(doc, 'utf8')), printed.stdout);
});

test('should show a pipeline as it would run, with TEXTSTREAM_ overrides applied and others ignored', async (t) => {
  const dir = await tempDir(t);
  const result = await run(['config', 'show', path.join(pipelines, 'kafka-spamassassin.yaml')], dir, {
    TEXTSTREAM_SOURCE_BROKERS: 'a:9092,b:9092',
    TEXTSTREAM_MODEL_BACKEND: 'wasm',
    TEXTSTREAM_METRICS_PORT: '9465',
    TEXTSTREAM_SINK_DIR: '/data/out',
    TEXTSTREAM_MODEL_LSTM_THREADS: '1',
    TEXTSTREAM_NATIVE_MARCH: 'x86-64-v3',
    TEXTSTREAM_FUSED_LSTM_ADDON: '/nonexistent/fused_lstm.node',
  });
  assert.equal(result.code, 0, result.stderr);
  const shown = parseYaml(result.stdout) as {
    source: { brokers: string[] };
    model: { backend: string; lstmThreads: number | null };
    metrics: { port: number };
    sink: { dir: string; rotateRows: number };
  };
  assert.deepEqual(shown.source.brokers, ['a:9092', 'b:9092']);
  assert.equal(shown.model.backend, 'wasm');
  assert.equal(shown.model.lstmThreads, 1);
  assert.equal(shown.metrics.port, 9465);
  assert.equal(shown.sink.dir, '/data/out');
  const fromFile = await loadPipeline(path.join(pipelines, 'kafka-spamassassin.yaml'), { env: {} });
  assert.equal(shown.sink.rotateRows, fromFile.sink.rotateRows, 'fields without an override keep the file’s value');
});

const errorCases: Array<{ what: string; args: string[]; env?: Record<string, string>; file?: string; stderr: RegExp }> = [
  {
    what: 'a value of the wrong type in the file',
    args: ['config', 'show', 'bad.yaml'],
    file: 'name: p\nsource:\n  type: parquet\n  path: in.parquet\nsink:\n  rotateRows: "abc"\n',
    stderr: /^textstream: bad\.yaml: sink\.rotateRows: Invalid input: expected number, received string\n$/,
  },
  {
    what: 'a misspelt field in the file',
    args: ['config', 'show', 'bad.yaml'],
    file: 'name: p\nsource:\n  type: parquet\n  path: in.parquet\nmetrics:\n  prot: 1\n',
    stderr: /bad\.yaml: metrics\.prot: unknown field/,
  },
  {
    what: 'a misspelt TEXTSTREAM_ variable',
    args: ['config', 'show', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_SINK_DIRR: '/data/out' },
    stderr: /^textstream: TEXTSTREAM_SINK_DIRR: not a pipeline setting \(did you mean TEXTSTREAM_SINK_DIR\?\)/,
  },
  {
    what: 'a variable value of the wrong type',
    args: ['config', 'show', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_METRICS_PORT: 'ninety' },
    stderr: /^textstream: TEXTSTREAM_METRICS_PORT: metrics\.port: expected integer 0–65535, got "ninety"\n$/,
  },
  {
    what: 'a variable value out of range',
    args: ['config', 'show', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_METRICS_PORT: '70000' },
    stderr: /^textstream: TEXTSTREAM_METRICS_PORT: metrics\.port: Too big: expected number to be <=65535\n$/,
  },
  {
    what: 'a variable that is not a boolean',
    args: ['config', 'show', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_CLEAN_EMAIL: 'yes' },
    stderr: /TEXTSTREAM_CLEAN_EMAIL: clean\.email: expected boolean, got "yes"/,
  },
  {
    what: 'a Kafka variable on a Parquet pipeline',
    args: ['config', 'show', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_SOURCE_BROKERS: 'a:9092' },
    stderr: /TEXTSTREAM_SOURCE_BROKERS: source\.brokers: unknown field/,
  },
  {
    what: 'a bad variable before a replay starts',
    args: ['replay', path.join(pipelines, 'spamassassin.yaml')],
    env: { TEXTSTREAM_MODEL_BACKEND: 'gpu' },
    stderr: /TEXTSTREAM_MODEL_BACKEND: model\.backend: Invalid option: expected one of "auto"\|"tensorflow"\|"wasm"\|"cpu"/,
  },
  {
    what: 'a --readme file without the markers',
    args: ['config', 'reference', '--readme', 'bad.yaml'],
    file: '# no markers\n',
    stderr: /bad\.yaml: the markers <!-- config-reference:start --> … <!-- config-reference:end --> are missing/,
  },
  {
    what: 'a missing --readme file',
    args: ['config', 'reference', '--readme', 'nope.md'],
    stderr: /nope\.md: cannot read it/,
  },
  { what: 'an unknown config subcommand', args: ['config', 'frobnicate'], stderr: /unknown command 'frobnicate'/ },
  { what: 'config show without a file', args: ['config', 'show'], stderr: /missing required argument/ },
];

for (const c of errorCases) {
  test(`should exit 2 for ${c.what}, naming the problem`, async (t) => {
    const dir = await tempDir(t);
    if (c.file !== undefined) await writeFile(path.join(dir, 'bad.yaml'), c.file);
    const result = await run(c.args, dir, c.env);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, c.stderr);
    assert.equal(result.stdout, '');
  });
}
