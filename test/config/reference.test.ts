import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { listPipelineFields } from '../../src/config/json-schema.js';
import { extractReferenceBlock, makeConfigReference, replaceReferenceBlock } from '../../src/config/reference.js';
import { repoRoot } from '../helpers/paths.js';

test('should match the block in docs/configuration.md (regenerate: textstream config reference --readme docs/configuration.md)', async () => {
  const configuration = await readFile(path.join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const block = extractReferenceBlock(configuration);
  assert.ok(block !== null, 'docs/configuration.md has no config-reference markers');
  assert.equal(block, makeConfigReference());
  // Under the heading the brief asks for, inside "## The pipeline definition".
  const section = configuration.slice(configuration.indexOf('## The pipeline definition'), configuration.indexOf('<!-- config-reference:start -->'));
  assert.match(section, /### Configuration reference/);
  assert.doesNotMatch(section.slice(3), /\n## /);
});

test('should list one row per field, with type, default, description and variable', () => {
  const table = makeConfigReference();
  const rows = table.trimEnd().split('\n');
  assert.equal(rows[0], '| field | type | default | description | environment |');
  assert.equal(rows.length, 2 + listPipelineFields().length);
  assert.ok(rows.includes('| `sink.rotateRows` | `integer > 0` | `10000` | Rows per Parquet file before a new one is started. | `TEXTSTREAM_SINK_ROTATE_ROWS` |'));
  assert.ok(rows.includes('| `metrics.port` | `integer 0–65535` | `9464` | TCP port of the metrics server; 0: any free port. | `TEXTSTREAM_METRICS_PORT` |'));
  assert.ok(rows.some((r) => r.startsWith('| `source.brokers` | `string[] (at least 1)` | `["127.0.0.1:9092"]` | (kafka only) ')));
  assert.ok(rows.some((r) => r.startsWith('| `tokenizer.oovToken` | `string \\| null` | `null` | ')));
  assert.ok(rows.some((r) => r.startsWith('| `name` | `string matching ^[a-z0-9][a-z0-9_-]*$` | *required* | ')));
  // `<row>` outside a code span would be swallowed as an HTML tag.
  assert.ok(rows.some((r) => r.includes('ids are &lt;file&gt;:&lt;row&gt;')));
  for (const row of rows) assert.equal(row.split(/(?<!\\)\|/).length, 7, `a stray pipe breaks the row: ${row}`);
});

test('should replace only what is between the markers, and refuse a file without them', () => {
  const doc = 'before\n<!-- config-reference:start -->\nold\n<!-- config-reference:end -->\nafter\n';
  const updated = replaceReferenceBlock(doc, '| a |\n');
  assert.equal(updated, 'before\n<!-- config-reference:start -->\n\n| a |\n\n<!-- config-reference:end -->\nafter\n');
  assert.equal(extractReferenceBlock(updated), '| a |\n');
  assert.equal(replaceReferenceBlock(updated, '| a |\n'), updated);
  assert.throws(() => replaceReferenceBlock('no markers', '| a |\n'), /markers .* are missing/);
  assert.equal(extractReferenceBlock('no markers'), null);
});
