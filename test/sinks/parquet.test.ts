import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch } from 'apache-arrow';
import { BatchBuilder } from '../../src/batch/builder.js';
import { ConfigError, SinkError } from '../../src/errors.js';
import type { TokenizedMessage } from '../../src/message.js';
import { ParquetSink, type ParquetSinkOptions } from '../../src/sinks/parquet.js';
import { escapePathSegment, parquetFileName, legacyPartitionDirectory, partitionDirectory, sourceDirectoryName } from '../../src/sinks/parquet-layout.js';
import { findLastOffsetOnDisk, recoverPartitionOutput, removeStaleTempFiles } from '../../src/sinks/parquet-recovery.js';
import type { ScoredBatch } from '../../src/sinks/sink.js';
import { repoRoot } from '../helpers/paths.js';

const maxLen = 4;
const processedAtMs = 1_700_000_100_000;

interface Row {
  offset: number;
  source?: string;
  partition?: number;
  label?: 0 | 1 | null;
  timestampMs?: number | null;
  text?: string;
}

function scored(rows: Row[], modelVersion = 7): ScoredBatch {
  const builder = new BatchBuilder({ maxLen, maxRows: rows.length + 1, maxAgeMs: 60_000 });
  for (const r of rows) {
    const message: TokenizedMessage = {
      id: `id-${r.source ?? 'corpus.parquet'}-${r.partition ?? 0}-${r.offset}`,
      text: r.text ?? `text ${r.offset} é`,
      label: r.label === undefined ? (r.offset % 2 === 0 ? 0 : 1) : r.label,
      tokens: new Int32Array(maxLen),
      position: {
        source: r.source ?? 'corpus.parquet',
        partition: r.partition ?? 0,
        offset: BigInt(r.offset),
        timestampMs: r.timestampMs === undefined ? null : r.timestampMs,
      },
    };
    builder.push(message);
  }
  const batch = builder.flush() as RecordBatch;
  // Scores 0, 0.25, 0.5, 0.75, 0, … so both predicted classes appear, and 0.5 (predicted 0: the threshold is > 0.5, as Keras' binary accuracy).
  const scores = Float32Array.from(rows, (r) => (r.offset % 4) / 4);
  return { batch, scores, modelVersion, processedAtMs };
}

function offsets(from: number, to: number, extra: Omit<Row, 'offset'> = {}): Row[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({ offset: from + i, ...extra }));
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-sink-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function sinkOptions(dir: string, extra: Partial<ParquetSinkOptions> = {}): ParquetSinkOptions {
  return { dir, pipeline: 'spam', rotateRows: 4, ...extra };
}

async function listAll(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

async function duckdb<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJson() as T[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

const pythonPath = (): string =>
  execFileSync('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], { encoding: 'utf8' }).trim();

const file = (first: number, last: number): string =>
  path.join('spam', 'input=corpus', 'partition-0', parquetFileName(BigInt(first), BigInt(last)));

void test('should name files by source, partition and offset range and rotate after rotateRows', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir));
  const durable = await sink.write(scored(offsets(0, 9)));
  assert.deepEqual(
    durable.map((f) => [path.relative(dir, f.path), f.firstOffset, f.lastOffset, f.rows]),
    [
      [file(0, 3), 0n, 3n, 4],
      [file(4, 7), 4n, 7n, 4],
    ],
  );
  assert.ok(durable.every((f) => f.bytes > 0 && f.source === 'corpus.parquet' && f.partition === 0));
  const rest = await sink.flush();
  assert.deepEqual(rest.map((f) => path.relative(dir, f.path)), [file(8, 9)]);
  assert.deepEqual(await listAll(dir), [file(0, 3), file(4, 7), file(8, 9)]);
  assert.equal(parquetFileName(12n, 345n), '00000000000000000012-00000000000000000345.parquet');
});

void test('should keep one open file per source and partition and name each by the offsets it holds', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100 }));
  // Kafka-style: partitions interleave in a batch and offsets have gaps (dead letters).
  const rows: Row[] = [
    { offset: 10, source: 'mail', partition: 0 },
    { offset: 500, source: 'mail', partition: 1 },
    { offset: 12, source: 'mail', partition: 0 },
    { offset: 501, source: 'mail', partition: 1 },
    { offset: 0, source: 'other', partition: 0 },
  ];
  assert.deepEqual(await sink.write(scored(rows)), []);
  const files = await sink.close();
  assert.deepEqual(
    files.map((f) => path.relative(dir, f.path)).sort(),
    [
      path.join('spam', 'input=mail', 'partition-0', parquetFileName(10n, 12n)),
      path.join('spam', 'input=mail', 'partition-1', parquetFileName(500n, 501n)),
      path.join('spam', 'input=other', 'partition-0', parquetFileName(0n, 0n)),
    ].sort(),
  );
  assert.deepEqual(files.map((f) => f.rows).sort(), [1, 2, 2]);
});

void test('should leave no temporary file after close, and close twice safely', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100 }));
  await sink.write(scored(offsets(0, 2)));
  const partitionDir = partitionDirectory(sink.layout, 'corpus.parquet', 0);
  const during = await readdir(partitionDir);
  assert.equal(during.length, 1);
  assert.match(during[0]!, /^\.00000000000000000000-.*\.parquet\.inprogress$/);
  assert.equal((await sink.close()).length, 1);
  assert.deepEqual(await sink.close(), []);
  assert.deepEqual(await listAll(dir), [file(0, 2)]);
  await assert.rejects(sink.write(scored(offsets(3, 3))), (err: unknown) => err instanceof SinkError && !err.canRetry);
});

void test('should delete temporary files on abort and publish nothing', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 4 }));
  const durable = await sink.write(scored(offsets(0, 5)));
  assert.equal(durable.length, 1);
  await sink.abort();
  await sink.abort();
  // The file finished before the abort stays; the open one (offsets 4–5) is gone.
  assert.deepEqual(await listAll(dir), [file(0, 3)]);
  assert.deepEqual(await sink.close(), []);
});

void test('should replace the file when the same offset range is written again', async (t) => {
  const dir = await tempDir(t);
  for (let attempt = 0; attempt < 2; attempt++) {
    const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100 }));
    await sink.write(scored(offsets(0, 4), attempt));
    await sink.close();
  }
  assert.deepEqual(await listAll(dir), [file(0, 4)]);
  const rows = await duckdb<{ n: string; v: string }>(
    `SELECT count(*) AS n, max(model_version) AS v FROM read_parquet('${dir}/spam/**/*.parquet')`,
  );
  assert.deepEqual(rows, [{ n: '5', v: '1' }]);
});

void test('should reject a batch whose offsets go backwards without losing the open file', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100 }));
  await sink.write(scored(offsets(0, 4)));
  await assert.rejects(
    sink.write(scored(offsets(3, 6))),
    (err: unknown) => err instanceof SinkError && !err.canRetry && /got 3 after 4/.test(err.message),
  );
  await assert.rejects(sink.write(scored([{ offset: 2 ** 53 }])), /outside 0\.\.2\^53-1/);
  await sink.write(scored(offsets(5, 6)));
  assert.deepEqual((await sink.close()).map((f) => [f.firstOffset, f.lastOffset, f.rows]), [[0n, 6n, 7]]);
});

void test('should finish files older than maxFileAgeMs on the next write', async (t) => {
  const dir = await tempDir(t);
  let now = 1000;
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100, maxFileAgeMs: 500, now: () => now }));
  assert.deepEqual(await sink.write(scored(offsets(0, 1))), []);
  now = 1499;
  assert.deepEqual(await sink.write(scored(offsets(2, 2))), []);
  now = 1500;
  const durable = await sink.write(scored(offsets(3, 3)));
  assert.deepEqual(durable.map((f) => [f.firstOffset, f.lastOffset]), [[0n, 3n]]);
  await sink.close();
});

void test('should escape source names that are not safe as one path segment, or that readers would skip as hidden', () => {
  assert.equal(escapePathSegment('corpus.parquet'), 'corpus.parquet');
  assert.equal(escapePathSegment('my topic/é'), 'my%20topic%2F%C3%A9');
  assert.equal(escapePathSegment('a=b'), 'a%3Db');
  assert.equal(escapePathSegment('..'), '%2E.');
  assert.equal(escapePathSegment('.'), '%2E');
  assert.equal(escapePathSegment('_tmp'), '%5Ftmp');
  assert.throws(() => escapePathSegment(''), SinkError);
});

void test('should name a source folder without its .parquet extension, so that no folder looks like a Parquet file', () => {
  const layout = { dir: '/out', pipeline: 'spam' };
  assert.equal(sourceDirectoryName('corpus.parquet'), 'corpus');
  assert.equal(sourceDirectoryName('emails'), 'emails');
  assert.equal(sourceDirectoryName('.parquet'), '%2Eparquet');
  assert.equal(partitionDirectory(layout, 'corpus.parquet', 3), path.join('/out', 'spam', 'input=corpus', 'partition-3'));
  assert.equal(legacyPartitionDirectory(layout, 'file', 'corpus.parquet', 0), path.join('/out', 'spam', 'file=corpus.parquet', 'partition=0'));
});

void test('should reject invalid options with the path of the bad setting', () => {
  assert.throws(() => new ParquetSink(sinkOptions('/tmp', { rotateRows: 0 })), (e: unknown) => e instanceof ConfigError && e.path === 'sink.rotateRows');
  assert.throws(() => new ParquetSink(sinkOptions('/tmp', { pipeline: '../x' })), (e: unknown) => e instanceof ConfigError && e.path === 'sink.pipeline');
  assert.throws(
    () => new ParquetSink(sinkOptions('/tmp', { compression: 'ZSTD' as never })),
    (e: unknown) => e instanceof ConfigError && e.path === 'sink.compression',
  );
});

void test('should find the last offset on disk per source and partition from final file names only', async (t) => {
  const dir = await tempDir(t);
  const layout = { dir, pipeline: 'spam' };
  assert.equal(await findLastOffsetOnDisk(layout, 'corpus.parquet', 0), null);
  const sink = new ParquetSink(sinkOptions(dir));
  await sink.write(scored(offsets(0, 9)));
  await sink.write(scored(offsets(0, 2, { partition: 1 })));
  await sink.close();
  // A crashed writer's temp file and unrelated files must not count.
  const partitionDir = partitionDirectory(layout, 'corpus.parquet', 0);
  await writeFile(path.join(partitionDir, `.${'9'.repeat(20)}-abc.parquet.inprogress`), '');
  await writeFile(path.join(partitionDir, 'notes.txt'), '');
  await mkdir(path.join(partitionDir, 'sub'));
  assert.equal(await findLastOffsetOnDisk(layout, 'corpus.parquet', 0), 9n);
  assert.equal(await findLastOffsetOnDisk(layout, 'corpus.parquet', 1), 2n);
  assert.equal(await findLastOffsetOnDisk(layout, 'corpus.parquet', 2), null);
  assert.equal(await findLastOffsetOnDisk(layout, 'other', 0), null);
  // Recovery also clears what the crashed writer left behind, and only that.
  assert.equal(await removeStaleTempFiles(layout, 'corpus.parquet', 0), 1);
  assert.deepEqual((await readdir(partitionDir)).sort(), [parquetFileName(0n, 3n), parquetFileName(4n, 7n), parquetFileName(8n, 9n), 'notes.txt', 'sub']);
  assert.equal(await removeStaleTempFiles(layout, 'other', 0), 0);
});

const expectedRows = (rows: Row[]) =>
  rows.map((r) => {
    const score = (r.offset % 4) / 4;
    return {
      id: `id-corpus.parquet-0-${r.offset}`,
      score,
      predicted: score > 0.5 ? 1 : 0,
      label: r.label === undefined ? r.offset % 2 : r.label,
      model_version: 7,
      source: 'corpus.parquet',
      partition: 0,
      offset: r.offset,
      timestamp: r.timestampMs ?? null,
      processed_at: processedAtMs,
      text: r.text ?? `text ${r.offset} é`,
    };
  });

const readBackRows: Row[] = [
  { offset: 0, label: null, timestampMs: null },
  { offset: 1, label: 1, timestampMs: 1_700_000_000_001, text: 'naïve 😀 "quoted"\nline' },
  { offset: 2, label: 0, timestampMs: 1_700_000_000_002 },
  // Offsets near 2^53 must round-trip exactly through parquetjs-lite's parseInt path.
  { offset: 2 ** 53 - 1, label: 1, timestampMs: null },
];

void test('should write files that DuckDB reads with the right types and values', async (t) => {
  const dir = await tempDir(t);
  for (const compression of ['SNAPPY', 'GZIP', 'UNCOMPRESSED'] as const) {
    const sink = new ParquetSink(sinkOptions(path.join(dir, compression), { includeText: true, compression, rotateRows: 100 }));
    await sink.write(scored(readBackRows));
    const [written] = await sink.close();
    const where = `read_parquet('${written!.path}', hive_partitioning = false)`;
    const types = await duckdb<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${where}`);
    assert.deepEqual(
      Object.fromEntries(types.map((c) => [c.column_name, c.column_type])),
      {
        id: 'VARCHAR',
        score: 'FLOAT',
        predicted: 'INTEGER',
        label: 'INTEGER',
        model_version: 'BIGINT',
        source: 'VARCHAR',
        partition: 'INTEGER',
        offset: 'BIGINT',
        // Instants: the logical type says UTC-adjusted, not only the legacy converted type.
        timestamp: 'TIMESTAMP WITH TIME ZONE',
        processed_at: 'TIMESTAMP WITH TIME ZONE',
        text: 'VARCHAR',
      },
      compression,
    );
    const rows = await duckdb<Record<string, unknown>>(
      `SELECT id, score, predicted, label, model_version::VARCHAR AS model_version, source, partition,
              "offset"::VARCHAR AS "offset", epoch_ms("timestamp") AS "timestamp",
              epoch_ms(processed_at) AS processed_at, text
       FROM ${where} ORDER BY "offset"`,
    );
    assert.deepEqual(
      rows,
      expectedRows(readBackRows).map((r) => ({
        ...r,
        model_version: String(r.model_version),
        offset: String(BigInt(r.offset)),
        timestamp: r.timestamp === null ? null : String(r.timestamp),
        processed_at: String(r.processed_at),
      })),
      compression,
    );
  }
});

void test('should write files that pyarrow reads with the right schema and values', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { includeText: true, rotateRows: 100 }));
  await sink.write(scored(readBackRows));
  const [written] = await sink.close();
  const script = `
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
rows = t.to_pylist()
for r in rows:
    for k in ('timestamp', 'processed_at'):
        r[k] = None if r[k] is None else round(r[k].timestamp() * 1000)
print(json.dumps({'schema': {f.name: [str(f.type), f.nullable] for f in t.schema}, 'rows': rows}))
`;
  const out = JSON.parse(execFileSync(pythonPath(), ['-c', script, written!.path], { encoding: 'utf8' })) as {
    schema: Record<string, [string, boolean]>;
    rows: Record<string, unknown>[];
  };
  assert.deepEqual(out.schema, {
    id: ['string', false],
    score: ['float', false],
    predicted: ['int32', false],
    label: ['int32', true],
    model_version: ['int64', false],
    source: ['string', false],
    partition: ['int32', false],
    offset: ['int64', false],
    timestamp: ['timestamp[ms, tz=UTC]', true],
    processed_at: ['timestamp[ms, tz=UTC]', false],
    text: ['string', false],
  });
  assert.deepEqual(out.rows, expectedRows(readBackRows));
});

void test('should leave out the text column unless includeText is set', async (t) => {
  const dir = await tempDir(t);
  const sink = new ParquetSink(sinkOptions(dir, { rotateRows: 100 }));
  await sink.write(scored(offsets(0, 1)));
  const [written] = await sink.close();
  const types = await duckdb<{ column_name: string }>(`DESCRIBE SELECT * FROM read_parquet('${written!.path}', hive_partitioning = false)`);
  assert.ok(!types.some((c) => c.column_name === 'text'));
  assert.equal(types.length, 10);
});

void test("should move a partition's files of the legacy topic=/partition= layout into place on recovery, and resume after them", async (t) => {
  const dir = await tempDir(t);
  const layout = { dir, pipeline: 'spam' };
  const sink = new ParquetSink(sinkOptions(dir));
  await sink.write(scored(offsets(0, 9, { source: 'emails', partition: 1 })));
  await sink.close();
  // As the layout before this one left them.
  const current = partitionDirectory(layout, 'emails', 1);
  const legacy = legacyPartitionDirectory(layout, 'topic', 'emails', 1);
  await mkdir(path.dirname(legacy), { recursive: true });
  await rename(current, legacy);
  await writeFile(path.join(legacy, `.${'0'.repeat(20)}-abc.parquet.inprogress`), '');

  const recovery = await recoverPartitionOutput(layout, 'emails', 1, { legacyKey: 'topic' });
  assert.equal(recovery.lastOffset, 9n);
  assert.deepEqual(recovery.migrated.map((f) => path.basename(f)), [parquetFileName(8n, 9n), parquetFileName(4n, 7n), parquetFileName(0n, 3n)]);
  assert.deepEqual((await readdir(current)).sort(), [parquetFileName(0n, 3n), parquetFileName(4n, 7n), parquetFileName(8n, 9n)]);
  assert.deepEqual(await readdir(path.join(dir, 'spam')), ['input=emails'], 'the emptied legacy folders are gone');
  assert.deepEqual(await recoverPartitionOutput(layout, 'emails', 1, { legacyKey: 'topic' }), { lastOffset: 9n, removedTempFiles: [], tempFilesLeft: [], quarantined: [], migrated: [] });
});
