import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline, parsePipeline } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';

const minimal = { name: 'p', source: { type: 'parquet', path: 'in.parquet' } };

test('should load the bundled pipeline with defaults filled in and frozen', async () => {
  const config = await loadPipeline(path.join(repoRoot, 'pipelines', 'spamassassin.yaml'));
  assert.equal(config.name, 'spamassassin');
  assert.equal(config.tokenizer.numWords, 10_000);
  assert.equal(config.tokenizer.maxLen, 100);
  assert.equal(config.clean.email, true);
  assert.equal(config.decode.maxMessageBytes, 1_048_576);
  assert.ok(Object.isFrozen(config.sink));
  assert.throws(() => {
    (config.sink as { dir: string }).dir = 'elsewhere';
  }, TypeError);
});

test('should fill every section with defaults from a minimal definition', () => {
  const config = parsePipeline(minimal);
  assert.equal(config.source.type, 'parquet');
  assert.deepEqual(config.source.columns, { text: 'text', label: 'label', id: 'id' });
  assert.equal(config.model.backend, 'auto');
  assert.equal(config.model.trainBatchSize, 32);
  assert.equal(config.sink.rotateRows, 10_000);
  assert.equal(config.metrics.port, 9464);
});

const badCases: Array<[string, unknown, RegExp]> = [
  ['a non-positive rotateRows', { ...minimal, sink: { rotateRows: 0 } }, /sink\.rotateRows: .*>0/],
  ['a misspelt key', { ...minimal, sink: { rotateRow: 5 } }, /sink\.rotateRow: unknown field/],
  ['a wrong type', { ...minimal, tokenizer: { maxLen: '100' } }, /tokenizer\.maxLen: .*expected number/],
  ['a string for a number', { ...minimal, sink: { rotateRows: 'abc' } }, /sink\.rotateRows: Invalid input: expected number, received string$/],
  ['a fraction for an integer', { ...minimal, batch: { maxRows: 1.5 } }, /batch\.maxRows: .*expected int, received number$/],
  ['a string for a boolean', { ...minimal, clean: { email: 'yes' } }, /clean\.email: .*expected boolean, received string$/],
  ['a number for a nullable string', { ...minimal, tokenizer: { path: 5 } }, /tokenizer\.path: .*expected string, received number$/],
  ['a string for an array', { name: 'k', source: { type: 'kafka', topic: 't', groupId: 'g', brokers: 'a:1' } }, /source\.brokers: .*expected array, received string$/],
  ['a wrong array item', { name: 'k', source: { type: 'kafka', topic: 't', groupId: 'g', brokers: ['a:1', 2] } }, /source\.brokers\[1\]: .*expected string, received number$/],
  ['a Kafka field on a Parquet source', { ...minimal, source: { ...minimal.source, groupId: 'g' } }, /source\.groupId: unknown field/],
  ['an unknown backend', { ...minimal, model: { backend: 'gpu' } }, /model\.backend: /],
  ['an unknown source type', { ...minimal, source: { type: 'csv' } }, /source\.type: /],
  ['a missing name', { source: minimal.source }, /name: /],
];
for (const [what, raw, message] of badCases) {
  test(`should reject ${what} with an error naming the field`, () => {
    assert.throws(() => parsePipeline(raw, 'x.yaml'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^x\.yaml: /);
      assert.match(err.message, message);
      return true;
    });
  });
}

test('should name the file and line for invalid YAML and for a missing file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-config-'));
  const file = path.join(dir, 'bad.yaml');
  await writeFile(file, 'name: x\nsource: [unclosed\n');
  await assert.rejects(loadPipeline(file), /bad\.yaml: not valid YAML at line \d/);
  await assert.rejects(loadPipeline(path.join(dir, 'missing.yaml')), /missing\.yaml: cannot read pipeline file/);
});

test('should name the file, the field and the expected type for a wrong type in a YAML file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'p.yaml');
  await writeFile(file, 'name: p\nsource:\n  type: parquet\n  path: in.parquet\nsink:\n  rotateRows: "abc"\n');
  await assert.rejects(loadPipeline(file, { env: {} }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, `${file}: sink.rotateRows: Invalid input: expected number, received string`);
    assert.equal(err.path, `${file}: sink.rotateRows`);
    return true;
  });
});

test('should refuse YAML tags that build other values than plain data, naming the tag and its line', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'p.yaml');
  const cases: Array<[string, string]> = [
    ['name: !!js/function "function () { return 1 }"', '!!js/function'],
    ['name: !foo p', '!foo'],
    ['name: !!binary cA==', '!!binary'],
    ['name: !!set {p: null}', '!!set'],
  ];
  for (const [line, tag] of cases) {
    await writeFile(file, `${line}\nsource: {type: parquet, path: in.parquet}\n`);
    await assert.rejects(loadPipeline(file, { env: {} }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${file}: YAML tag ${tag} at line 1, column 7 is not accepted: pipeline files hold plain values (mappings, lists, strings, numbers, booleans, null)`);
      return true;
    });
  }
  // The core schema's own tags only say which plain type a value is.
  await writeFile(file, 'name: !!str p\nsource: {type: parquet, path: in.parquet, batchRows: !!int "8"}\n');
  const config = await loadPipeline(file, { env: {} });
  assert.equal(config.name, 'p');
  assert.equal(config.source.type === 'parquet' && config.source.batchRows, 8);
});

test('should refuse an exponential alias bomb instead of expanding it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'p.yaml');
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 6; i++) levels.push(`${'abcdef'[i]}: &${'abcdef'[i]} [${Array(9).fill(`*${'abcdef'[i - 1]}`).join(', ')}]`);
  await writeFile(file, `${levels.join('\n')}\n`);
  await assert.rejects(loadPipeline(file, { env: {} }), /p\.yaml: not valid YAML: Excessive alias count/);
});
