import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { ConfigError, SourceError } from '../../src/errors.js';
import type { RawRecord } from '../../src/message.js';
import { ParquetFileWriter, type ParquetColumn } from '../../src/sinks/parquet-writer.js';
import { ParquetSource, type ParquetSourceOptions } from '../../src/sources/parquet.js';
import { repoRoot } from '../helpers/paths.js';

/** Row i of every fixture; every fifth text is invalid UTF-8 (a Latin-1 é and a lone 0xFF). */
function textBytes(i: number): Buffer {
  return i % 5 === 0 ? Buffer.concat([Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]), Buffer.from(String(i))]) : Buffer.from(`message ${i} é`);
}
/** 0, 1 and 2 (an invalid label the source must pass through), null every seventh row. */
const labelOf = (i: number): number | null => (i % 7 === 3 ? null : i % 3);
const idOf = (i: number): string => `r${i}`;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-source-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeFixture(
  file: string,
  rows: number,
  columns: Record<string, ParquetColumn>,
  row: (i: number) => Record<string, unknown>,
  rowGroupRows = 1000,
): Promise<void> {
  const writer = await ParquetFileWriter.open(`${file}.tmp`, columns, { compression: 'SNAPPY', rowGroupRows, pageRows: 4 });
  for (let i = 0; i < rows; i++) await writer.append(row(i));
  await writer.finish(file);
}

async function readAll(options: ParquetSourceOptions, signal = new AbortController().signal): Promise<{ batches: RawRecord[][]; source: ParquetSource }> {
  const source = await ParquetSource.open(options);
  const batches: RawRecord[][] = [];
  try {
    for await (const batch of source.batches(signal)) batches.push(batch);
  } finally {
    await source.close();
  }
  return { batches, source };
}

function assertRows(records: RawRecord[], rows: number, opts: { labels?: boolean; ids?: boolean; nullText?: (i: number) => boolean } = {}): void {
  assert.equal(records.length, rows);
  records.forEach((r, i) => {
    if (opts.nullText?.(i)) assert.equal(r.text, null, `row ${i}`);
    else {
      assert.ok(r.text instanceof Uint8Array, `row ${i}: text must be bytes`);
      assert.ok(Buffer.from(r.text).equals(textBytes(i)), `row ${i}: ${Buffer.from(r.text).toString('hex')}`);
    }
    if (opts.labels !== false) assert.equal(Number(r.label ?? NaN), Number(labelOf(i) ?? NaN), `row ${i} label`);
    assert.equal(r.id, opts.ids === false ? null : idOf(i));
    assert.equal(r.position.offset, BigInt(i));
  });
}

void test('should read every row in batches with file-and-row positions, across row groups', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'mail.parquet');
  await writeFixture(
    file,
    23,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY' }, label: { type: 'INT32', optional: true } },
    (i) => ({ id: idOf(i), text: textBytes(i), label: labelOf(i) }),
    5,
  );
  const { batches, source } = await readAll({ path: file, batchRows: 4 });
  assert.equal(source.size, 23);
  assert.equal(source.name, 'mail.parquet');
  assert.deepEqual(batches.map((b) => b.length), [4, 4, 4, 4, 4, 3]);
  const records = batches.flat();
  assertRows(records, 23);
  assert.deepEqual(records[7]!.position, { source: 'mail.parquet', partition: 0, offset: 7n, timestampMs: null });
  assert.equal(records[3]!.label, null);
  assert.equal(records[2]!.label, 2, 'labels pass through unvalidated');
  // One batch per read: ranges start and end inside row groups and pages. parquetjs-lite
  // writes offset indexes with first_row_index 0 on every page; trusting them breaks this.
  const small = await readAll({ path: file, batchRows: 4, readBytes: 1 });
  assert.deepEqual(small.batches.map((b) => b.length), [4, 4, 4, 4, 4, 3]);
  assertRows(small.batches.flat(), 23);
});

void test('should hand UTF8-annotated text over as the exact bytes, invalid UTF-8 included', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'utf8.parquet');
  // parquetjs-lite writes a Buffer given for a UTF8 column as-is, so the file holds bad bytes.
  await writeFixture(file, 12, { id: { type: 'UTF8' }, text: { type: 'UTF8' } }, (i) => ({ id: idOf(i), text: textBytes(i) }));
  const { batches } = await readAll({ path: file, columns: { label: null } });
  assertRows(batches.flat(), 12, { labels: false });
  assert.equal(batches.flat()[0]!.label, null);
});

void test('should read custom column names, and no ids or labels when they are null', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'custom.parquet');
  await writeFixture(
    file,
    6,
    { body: { type: 'UTF8' }, is_spam: { type: 'INT64', optional: true }, msg: { type: 'UTF8' }, extra: { type: 'DOUBLE' } },
    (i) => ({ body: textBytes(i), is_spam: labelOf(i), msg: idOf(i), extra: i / 2 }),
  );
  const named = (await readAll({ path: file, columns: { text: 'body', label: 'is_spam', id: 'msg' } })).batches.flat();
  assertRows(named, 6);
  assert.equal(named[1]!.label, 1n, 'INT64 labels arrive as bigint');
  const bare = (await readAll({ path: file, columns: { text: 'body', label: null, id: null }, name: 'replay' })).batches.flat();
  assertRows(bare, 6, { labels: false, ids: false });
  assert.ok(bare.every((r) => r.label === null && r.position.source === 'replay'));
});

void test('should keep the whole row, text as base64, in original for dead letters', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'orig.parquet');
  await writeFixture(file, 1, { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY' }, label: { type: 'UTF8' } }, () => ({
    id: 'x1',
    text: textBytes(0),
    label: 'spam',
  }));
  const [record] = (await readAll({ path: file })).batches.flat();
  assert.equal(record!.label, 'spam');
  assert.deepEqual(JSON.parse(Buffer.from(record!.original!).toString('utf8')), {
    id: 'x1',
    label: 'spam',
    text: { base64: textBytes(0).toString('base64') },
  });
});

const pythonPath = (): string =>
  execFileSync('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { encoding: 'utf8' }).trim();

void test('should read pyarrow files: format 2.6, dictionaries, PLAIN fallback, v2 pages, DELTA, every codec, nulls', async (t) => {
  const dir = await tempDir(t);
  const rows = 700; // > 256 distinct values: dictionary indices wider than one byte
  const script = `
import sys
import pyarrow as pa, pyarrow.parquet as pq
out, n = sys.argv[1], int(sys.argv[2])
def text(i):
    return b'caf\\xe9 \\xff' + str(i).encode() if i % 5 == 0 else f'message {i} \\u00e9'.encode()
texts = [text(i) for i in range(n)]
labels = pa.array([None if i % 7 == 3 else i % 3 for i in range(n)], pa.int64())
ids = pa.array([f'r{i}' for i in range(n)], pa.string())
binary = pa.table({'text': pa.array(texts, pa.binary()), 'label': labels, 'id': ids})
string = pa.table({'text': pa.array(texts, pa.binary()).view(pa.string()), 'label': labels, 'id': ids})
pq.write_table(binary, f'{out}/default.parquet', row_group_size=300)
pq.write_table(string, f'{out}/string.parquet', row_group_size=300)
pq.write_table(string, f'{out}/fallback.parquet', dictionary_pagesize_limit=2000, data_page_size=1500)
pq.write_table(string, f'{out}/v2pages.parquet', data_page_version='2.0', compression='gzip')
pq.write_table(binary, f'{out}/plain.parquet', use_dictionary=False, version='1.0', compression='none')
pq.write_table(binary, f'{out}/brotli.parquet', compression='brotli')
pq.write_table(string, f'{out}/zstd.parquet', compression='zstd', row_group_size=300)
pq.write_table(binary, f'{out}/lz4.parquet', compression='lz4')
pq.write_table(string, f'{out}/delta.parquet', use_dictionary=False, compression='none', column_encoding={
    'text': 'DELTA_LENGTH_BYTE_ARRAY', 'id': 'DELTA_BYTE_ARRAY', 'label': 'DELTA_BINARY_PACKED'})
pq.write_table(string, f'{out}/pageindex.parquet', write_page_index=True, data_page_size=1500, row_group_size=300)
pq.write_table(pa.table({'text': pa.array([[t] for t in texts[:3]], pa.list_(pa.binary()))}), f'{out}/nested.parquet')
nulls = pa.table({'text': pa.array([None if i % 4 == 1 else t for i, t in enumerate(texts)], pa.binary()), 'label': labels, 'id': ids})
pq.write_table(nulls, f'{out}/nulls.parquet', data_page_size=500)
# Runs of 8 equal values over 375 dictionary entries: RLE runs with 2-byte values.
runs = pa.table({'text': pa.array([text(i // 8) for i in range(3000)], pa.binary())})
pq.write_table(runs, f'{out}/runs.parquet')
enc = pq.ParquetFile(f'{out}/fallback.parquet').metadata.row_group(0).column(0).encodings
assert 'PLAIN' in enc and 'RLE_DICTIONARY' in enc, enc
`;
  execFileSync(pythonPath(), ['-c', script, dir, String(rows)]);
  for (const name of ['default', 'string', 'fallback', 'v2pages', 'plain', 'brotli', 'zstd', 'lz4', 'delta', 'pageindex']) {
    // readBytes 1: one 128-row batch per read, so reads start inside row groups and pages.
    for (const readBytes of [undefined, 1]) {
      const { batches, source } = await readAll({ path: path.join(dir, `${name}.parquet`), batchRows: 128, readBytes });
      assert.equal(source.size, rows, name);
      assertRows(batches.flat(), rows);
    }
  }
  const { batches } = await readAll({ path: path.join(dir, 'nulls.parquet') });
  assertRows(batches.flat(), rows, { nullText: (i) => i % 4 === 1 });
  const runs = (await readAll({ path: path.join(dir, 'runs.parquet'), columns: { label: null, id: null } })).batches.flat();
  assert.equal(runs.length, 3000);
  runs.forEach((r, i) => assert.ok(Buffer.from(r.text as Uint8Array).equals(textBytes(Math.floor(i / 8))), `runs row ${i}`));
  await assert.rejects(
    ParquetSource.open({ path: path.join(dir, 'nested.parquet'), columns: { label: null, id: null } }),
    (err: unknown) => err instanceof SourceError && /text column "text" .* is a nested group/.test(err.message),
  );
});

void test('should read DuckDB files with invalid UTF-8 in a BLOB column', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'duck.parquet');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`COPY (
      SELECT CASE WHEN i % 5 = 0 THEN '\\x63\\x61\\x66\\xE9\\x20\\xFF'::BLOB || encode(i::VARCHAR)
                  ELSE encode('message ' || i::VARCHAR || ' é') END AS text,
             CASE WHEN i % 7 = 3 THEN NULL ELSE (i % 3)::INTEGER END AS label,
             'r' || i::VARCHAR AS id
      FROM range(3000) t(i) ORDER BY i) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 1024)`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  for (const readBytes of [undefined, 1]) {
    const { batches } = await readAll({ path: file, batchRows: 1000, readBytes });
    assertRows(batches.flat(), 3000);
  }
});

void test('should fail with a configuration error naming the source.columns field, the columns that exist and what to set', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'cols.parquet');
  await writeFixture(file, 2, { body: { type: 'UTF8' }, label: { type: 'INT32' } }, (i) => ({ body: `b${i}`, label: 0 }));
  await assert.rejects(
    ParquetSource.open({ path: file, columns: { id: null } }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.path === 'source.columns.text' &&
      /column "text" not found/.test(err.message) &&
      /"body", "label"; set source\.columns\.text to the column that holds the text$/.test(err.message),
  );
  await assert.rejects(
    ParquetSource.open({ path: file, columns: { text: 'body', label: 'is_spam', id: null } }),
    (err: unknown) => err instanceof ConfigError && err.path === 'source.columns.label' && /column "is_spam" not found.*or to null when the data has no labels$/.test(err.message),
  );
  await assert.rejects(
    ParquetSource.open({ path: file, columns: { text: 'label', id: null } }),
    (err: unknown) => err instanceof ConfigError && err.path === 'source.columns.text' && /column "label" .* has type INT32/.test(err.message),
  );
});

void test('should fail clearly on a missing file and on a file that is not Parquet', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(
    ParquetSource.open({ path: path.join(dir, 'nope.parquet') }),
    (err: unknown) => err instanceof SourceError && /nope\.parquet does not exist/.test(err.message),
  );
  const text = path.join(dir, 'notes.parquet');
  await writeFile(text, 'id,text\n1,hello world, this is a CSV file\n');
  await assert.rejects(ParquetSource.open({ path: text }), /notes\.parquet is not a Parquet file/);
  const tiny = path.join(dir, 'tiny.parquet');
  await writeFile(tiny, 'PAR1');
  await assert.rejects(ParquetSource.open({ path: tiny }), /tiny\.parquet is not a Parquet file \(4 bytes\)/);
  await assert.rejects(ParquetSource.open({ path: dir }), /is not a file/);
});

void test('should stop at an aborted signal, commit as a no-op and close twice safely', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'abort.parquet');
  await writeFixture(file, 50, { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY' }, label: { type: 'INT32', optional: true } }, (i) => ({
    id: idOf(i),
    text: textBytes(i),
    label: labelOf(i),
  }));
  const source = await ParquetSource.open({ path: file, batchRows: 10 });
  const controller = new AbortController();
  let seen = 0;
  for await (const batch of source.batches(controller.signal)) {
    seen += batch.length;
    await source.commit(batch.map((r) => r.position));
    controller.abort();
  }
  assert.equal(seen, 10);
  await source.close();
  await source.close();
  await assert.rejects(source.batches(new AbortController().signal)[Symbol.asyncIterator]().next(), /closed/);
});
