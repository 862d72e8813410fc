import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { applyEnvOverrides, envVariableFor, listEnvVariables, NON_CONFIG_ENV_VARIABLES } from '../../src/config/env.js';
import { loadPipeline, parsePipeline } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';

const parquet = { name: 'p', source: { type: 'parquet', path: 'in.parquet' } };
const kafka = { name: 'k', source: { type: 'kafka', topic: 't', groupId: 'g' } };

function withEnv(raw: unknown, env: NodeJS.ProcessEnv) {
  const { raw: overridden, applied } = applyEnvOverrides(raw, env);
  return parsePipeline(overridden, 'x.yaml', applied);
}

test('should name variables TEXTSTREAM_<SECTION>_<FIELD> in UPPER_SNAKE, one per field', () => {
  assert.equal(envVariableFor(['sink', 'dir']), 'TEXTSTREAM_SINK_DIR');
  assert.equal(envVariableFor(['deadLetter', 'path']), 'TEXTSTREAM_DEAD_LETTER_PATH');
  assert.equal(envVariableFor(['source', 'columns', 'text']), 'TEXTSTREAM_SOURCE_COLUMNS_TEXT');
  assert.equal(envVariableFor(['model', 'checkpointEveryRows']), 'TEXTSTREAM_MODEL_CHECKPOINT_EVERY_ROWS');
  const names = [...listEnvVariables().keys()];
  for (const example of ['TEXTSTREAM_SOURCE_BROKERS', 'TEXTSTREAM_MODEL_BACKEND', 'TEXTSTREAM_METRICS_PORT', 'TEXTSTREAM_SINK_DIR']) {
    assert.ok(names.includes(example), example);
  }
  for (const other of NON_CONFIG_ENV_VARIABLES) assert.ok(!names.includes(other), `${other} is both a setting and not`);
});

test('should read each value as the type of its field', () => {
  const config = withEnv(kafka, {
    TEXTSTREAM_SOURCE_BROKERS: 'a:9092, b:9092',
    TEXTSTREAM_SOURCE_FROM_BEGINNING: 'false',
    TEXTSTREAM_SOURCE_FORMAT: 'text',
    TEXTSTREAM_MODEL_BACKEND: 'wasm',
    TEXTSTREAM_MODEL_LEARNING_RATE: '2.5e-3',
    TEXTSTREAM_MODEL_SEED: '-7',
    TEXTSTREAM_METRICS_PORT: '9465',
    TEXTSTREAM_METRICS_ENABLED: 'true',
    TEXTSTREAM_SINK_DIR: '/data/out',
    TEXTSTREAM_DEAD_LETTER_TOPIC: 'null',
    TEXTSTREAM_TOKENIZER_OOV_TOKEN: '<oov>',
    TEXTSTREAM_DECODE_LABELS: '{"spam": 1, "ham": 0}',
    TEXTSTREAM_MODEL_CLIP_NORM: 'null',
  });
  assert.ok(config.source.type === 'kafka');
  assert.deepEqual(config.source.brokers, ['a:9092', 'b:9092']);
  assert.equal(config.source.fromBeginning, false);
  assert.equal(config.source.format, 'text');
  assert.equal(config.model.backend, 'wasm');
  assert.equal(config.model.learningRate, 0.0025);
  assert.equal(config.model.seed, -7);
  assert.equal(config.metrics.port, 9465);
  assert.equal(config.metrics.enabled, true);
  assert.equal(config.sink.dir, '/data/out');
  assert.equal(config.deadLetter.topic, null);
  assert.equal(config.tokenizer.oovToken, '<oov>');
  assert.deepEqual(config.decode.labels, { spam: 1, ham: 0 });
  assert.equal(config.model.clipNorm, null);
});

test('should override the file, create missing sections and leave the parsed file untouched', () => {
  const raw = { ...parquet, sink: { dir: 'from-file', rotateRows: 5 } };
  const config = withEnv(raw, { TEXTSTREAM_SINK_DIR: 'from-env', TEXTSTREAM_SOURCE_COLUMNS_LABEL: 'null', TEXTSTREAM_NAME: 'prod' });
  assert.equal(config.sink.dir, 'from-env');
  assert.equal(config.sink.rotateRows, 5);
  assert.equal(config.source.type === 'parquet' && config.source.columns.label, null);
  assert.equal(config.name, 'prod');
  assert.equal(raw.sink.dir, 'from-file');
  // A string field keeps "null" as text where null is not allowed.
  assert.equal(withEnv(parquet, { TEXTSTREAM_SINK_DIR: 'null' }).sink.dir, 'null');
});

test('should ignore the variables that are not settings, and pass a file through without overrides', () => {
  const env = Object.fromEntries([...NON_CONFIG_ENV_VARIABLES].map((n) => [n, 'anything']));
  const { raw, applied } = applyEnvOverrides(parquet, { ...env, PATH: '/bin', TEXTSTREAMX: '1' });
  assert.equal(raw, parquet);
  assert.equal(applied.size, 0);
});

const expectError = (env: NodeJS.ProcessEnv, ...patterns: RegExp[]) =>
  assert.throws(() => withEnv(env.TEXTSTREAM_SOURCE_BROKERS ? kafka : parquet, env), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    for (const pattern of patterns) assert.match(err.message, pattern);
    return true;
  });

test('should reject a misspelt or unknown TEXTSTREAM_ variable, naming it and the closest setting', () => {
  expectError({ TEXTSTREAM_SINK_DIRR: '/x' }, /^TEXTSTREAM_SINK_DIRR: not a pipeline setting \(did you mean TEXTSTREAM_SINK_DIR\?\)/);
  expectError({ TEXTSTREAM_METRIC_PORT: '1' }, /^TEXTSTREAM_METRIC_PORT: .*did you mean TEXTSTREAM_METRICS_PORT\?/);
  expectError({ TEXTSTREAM_SINK: 'x' }, /^TEXTSTREAM_SINK: not a pipeline setting/);
  expectError({ TEXTSTREAM_WHATEVER_ELSE_ENTIRELY: 'x' }, /^TEXTSTREAM_WHATEVER_ELSE_ENTIRELY: not a pipeline setting;/);
});

test('should reject a value of the wrong type, naming the variable, the field and the expected type', () => {
  expectError({ TEXTSTREAM_METRICS_PORT: 'abc' }, /^TEXTSTREAM_METRICS_PORT: metrics\.port: expected integer 0–65535, got "abc"$/);
  expectError({ TEXTSTREAM_METRICS_PORT: '' }, /^TEXTSTREAM_METRICS_PORT: metrics\.port: expected integer/);
  expectError({ TEXTSTREAM_METRICS_PORT: '0x10' }, /metrics\.port: expected integer/);
  expectError({ TEXTSTREAM_SINK_ROTATE_ROWS: '1.5' }, /^TEXTSTREAM_SINK_ROTATE_ROWS: sink\.rotateRows: expected integer > 0, got "1\.5"$/);
  expectError({ TEXTSTREAM_CLEAN_EMAIL: 'yes' }, /^TEXTSTREAM_CLEAN_EMAIL: clean\.email: expected boolean, got "yes"$/);
  expectError({ TEXTSTREAM_MODEL_LEARNING_RATE: 'fast' }, /model\.learningRate: expected number > 0/);
  expectError({ TEXTSTREAM_TOKENIZER_MAX_LEN: 'null' }, /tokenizer\.maxLen: expected integer > 0, got "null"/);
  expectError({ TEXTSTREAM_DECODE_LABELS: 'spam=1' }, /^TEXTSTREAM_DECODE_LABELS: decode\.labels: expected object, got "spam=1"$/);
  expectError({ TEXTSTREAM_DECODE_LABELS: '["spam"]' }, /decode\.labels: expected object/);
});

test('should name the variable when its value has the right type but fails validation', () => {
  expectError({ TEXTSTREAM_METRICS_PORT: '70000' }, /^TEXTSTREAM_METRICS_PORT: metrics\.port: Too big: expected number to be <=65535/);
  expectError({ TEXTSTREAM_SINK_ROTATE_ROWS: '0' }, /^TEXTSTREAM_SINK_ROTATE_ROWS: sink\.rotateRows: Too small/);
  expectError({ TEXTSTREAM_MODEL_BACKEND: 'gpu' }, /^TEXTSTREAM_MODEL_BACKEND: model\.backend: Invalid option: expected one of "auto"\|"tensorflow"\|"wasm"\|"cpu"/);
  expectError({ TEXTSTREAM_SOURCE_BROKERS: 'a:1,,b:2' }, /^TEXTSTREAM_SOURCE_BROKERS: source\.brokers\[1\]: Too small/);
  // A Kafka setting over a Parquet source: the field does not exist there.
  assert.throws(() => withEnv(parquet, { TEXTSTREAM_SOURCE_GROUP_ID: 'g' }), /^ConfigError: TEXTSTREAM_SOURCE_GROUP_ID: source\.groupId: unknown field/);
  // An error elsewhere still names the file.
  assert.throws(() => withEnv({ ...parquet, sink: { rotateRows: 'abc' } }, { TEXTSTREAM_SINK_DIR: 'd' }), /^ConfigError: x\.yaml: sink\.rotateRows: .*expected number/);
});

test('should refuse to set a field under a value of the file that is not a section', () => {
  assert.throws(() => withEnv({ ...parquet, sink: 5 }, { TEXTSTREAM_SINK_DIR: 'd' }), /^ConfigError: TEXTSTREAM_SINK_DIR: sink: expected an object/);
});

test('should apply overrides in loadPipeline from the env it is given', async () => {
  const file = path.join(repoRoot, 'pipelines', 'kafka-spamassassin.yaml');
  const config = await loadPipeline(file, { env: { TEXTSTREAM_SOURCE_BROKERS: 'a:9092,b:9092', TEXTSTREAM_METRICS_PORT: '9465' } });
  assert.ok(config.source.type === 'kafka');
  assert.deepEqual(config.source.brokers, ['a:9092', 'b:9092']);
  assert.equal(config.metrics.port, 9465);
  assert.ok(Object.isFrozen(config.source.brokers));
  await assert.rejects(loadPipeline(file, { env: { TEXTSTREAM_SINK_DIRR: 'x' } }), ConfigError);
});

/** Files that may read TEXTSTREAM_ variables: product code, scripts, benches, images. */
async function filesReadingEnv(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (/\.(ts|js|mjs|cjs|sh|py|cc|h|gyp)$/.test(entry.name)) out.push(full);
    }
  };
  for (const dir of ['src', 'scripts', 'bench', 'test']) await walk(path.join(repoRoot, dir));
  return [...out, path.join(repoRoot, 'Dockerfile'), path.join(repoRoot, 'docker-compose.yml')];
}

test('should know every TEXTSTREAM_ variable the repository reads, as a setting or on the allow-list', async () => {
  const settings = listEnvVariables();
  const read = new Set<string>();
  for (const file of await filesReadingEnv()) {
    const text = await readFile(file, 'utf8').catch(() => '');
    // How code reads a variable: process.env.X, process.env['X'], ${X:-…} / $X in shell, X= in an image.
    for (const m of text.matchAll(/process\.env(?:\.|\[['"])(TEXTSTREAM_[A-Z0-9_]+)|\$\{?(TEXTSTREAM_[A-Z0-9_]+)|(?:^|\s)(TEXTSTREAM_[A-Z0-9_]+)=/gm)) {
      read.add((m[1] ?? m[2] ?? m[3])!);
    }
  }
  for (const name of NON_CONFIG_ENV_VARIABLES) read.delete(name);
  for (const name of read) {
    // Tests set settings on purpose (a child's env); anything else must be listed.
    assert.ok(settings.has(name), `${name} is read somewhere but is neither a setting nor in NON_CONFIG_ENV_VARIABLES (src/config/env.ts)`);
  }
});
