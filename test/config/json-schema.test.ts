import { test } from 'node:test';
import { Ajv } from 'ajv';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parsePipeline } from '../../src/config/load.js';
import { formatPipelineJsonSchema, listPipelineFields, makePipelineJsonSchema } from '../../src/config/json-schema.js';
import { repoRoot } from '../helpers/paths.js';

const pipelinesDir = path.join(repoRoot, 'pipelines');
const schemaFile = path.join(pipelinesDir, 'pipeline.schema.json');
const MODELINE = '# yaml-language-server: $schema=./pipeline.schema.json';

interface Validator {
  (data: unknown): boolean;
  errors?: unknown[] | null;
}

/** Ajv (a devDependency), the validator editors' JSON-Schema tooling is built on. */
function makeAjv(): { compile: (schema: object) => Validator } {
  return new Ajv({ allErrors: true, strict: false });
}

async function bundledPipelines(): Promise<string[]> {
  return (await readdir(pipelinesDir)).filter((f) => f.endsWith('.yaml')).map((f) => path.join(pipelinesDir, f));
}

test('should match the committed pipelines/pipeline.schema.json (regenerate: textstream config schema --out pipelines/pipeline.schema.json)', async () => {
  assert.equal(await readFile(schemaFile, 'utf8'), formatPipelineJsonSchema());
});

test('should name the schema on the first line of every bundled pipeline', async () => {
  const files = await bundledPipelines();
  assert.ok(files.length >= 2);
  for (const file of files) {
    const first = (await readFile(file, 'utf8')).split('\n')[0];
    assert.equal(first, MODELINE, file);
  }
});

test('should describe every field and give it a default unless a file must state it', () => {
  const fields = listPipelineFields();
  assert.ok(fields.length > 40);
  for (const field of fields) {
    const name = field.path.join('.');
    assert.ok(field.schema.description && field.schema.description.length > 5, `${name} has no .describe() in src/config/schema.ts`);
    assert.ok(field.required || 'default' in field.schema, `${name} has neither a default nor is it required`);
  }
  const required = fields.filter((f) => f.required).map((f) => f.path.join('.'));
  assert.deepEqual(required, ['name', 'source.type', 'source.path', 'source.topic', 'source.groupId']);
});

test('should drop the safe-integer bounds zod puts on every integer', () => {
  const text = JSON.stringify(makePipelineJsonSchema());
  assert.doesNotMatch(text, /9007199254740991/);
  const root = makePipelineJsonSchema();
  assert.equal(root.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(root.additionalProperties, false);
  assert.deepEqual(root.properties?.metrics?.properties?.port, {
    default: 9464,
    description: 'TCP port of the metrics server; 0: any free port.',
    type: 'integer',
    minimum: 0,
    maximum: 65535,
  });
});

test('should validate both bundled pipelines with a JSON Schema validator (Ajv)', async () => {
  const ajv = makeAjv();
  const validate = ajv.compile(JSON.parse(await readFile(schemaFile, 'utf8')) as object);
  for (const file of await bundledPipelines()) {
    const ok = validate(parseYaml(await readFile(file, 'utf8')));
    assert.ok(ok, `${file}: ${JSON.stringify(validate.errors)}`);
  }
});

test('should reject in the JSON Schema what loadPipeline rejects, and accept what it accepts', () => {
  const ajv = makeAjv();
  const validate = ajv.compile(makePipelineJsonSchema());
  const parquet = { name: 'p', source: { type: 'parquet', path: 'in.parquet' } };
  const kafka = { name: 'k', source: { type: 'kafka', topic: 't', groupId: 'g' } };
  const cases: unknown[] = [
    parquet,
    kafka,
    { ...kafka, source: { ...kafka.source, brokers: ['a:1', 'b:2'], format: 'text' } },
    { ...parquet, source: { ...parquet.source, columns: { label: null } }, tokenizer: { oovToken: '<oov>' } },
    { ...parquet, sink: { rotateRows: 0 } },
    { ...parquet, sink: { rotateRows: 'abc' } },
    { ...parquet, sink: { rotateRow: 5 } },
    { ...parquet, model: { backend: 'gpu' } },
    { ...parquet, metrics: { port: 70_000 } },
    { ...parquet, name: 'Upper' },
    { ...parquet, source: { type: 'parquet' } },
    { ...parquet, source: { ...parquet.source, brokers: ['a:1'] } },
    { ...kafka, source: { ...kafka.source, brokers: [] } },
    { ...parquet, model: { learningRate: 0 } },
    { ...parquet, batch: { maxRows: 1.5 } },
    { source: parquet.source },
  ];
  for (const raw of cases) {
    let zodOk = true;
    try {
      parsePipeline(raw);
    } catch {
      zodOk = false;
    }
    assert.equal(validate(raw), zodOk, `JSON Schema and zod disagree on ${JSON.stringify(raw)}`);
  }
});
