/**
 * ParquetSink under real file-system faults, no fs mocks: a partition directory that
 * turns read-only mid-run (see fs-faults.ts), a disk that fills up (a tiny tmpfs), an
 * error no retry can fix, a shutdown while retrying, and what a crash or a disk error
 * leaves behind (a truncated temporary file, a truncated final file). The full disk needs
 * a tmpfs mount (CAP_SYS_ADMIN); without it that test is skipped, saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch } from 'apache-arrow';
import { BatchBuilder } from '../../src/batch/builder.js';
import { ConfigError, SinkError } from '../../src/errors.js';
import type { TokenizedMessage } from '../../src/message.js';
import { ParquetSink, type ParquetSinkOptions } from '../../src/sinks/parquet.js';
import { parquetFileName, partitionDirectory } from '../../src/sinks/parquet-layout.js';
import { checkParquetFile, findLastOffsetOnDisk, quarantineDirectory, recoverPartitionOutput } from '../../src/sinks/parquet-recovery.js';
import type { SinkRetryInfo } from '../../src/sinks/parquet-retry.js';
import type { ScoredBatch } from '../../src/sinks/sink.js';
import { faultDir, makeReadOnly, readOnlyCode, type Undo } from './fs-faults.js';

const maxLen = 4;
const SOURCE = 'corpus.parquet';

function scored(offsets: number[], text: (offset: number) => string = (o) => `text ${o}`): ScoredBatch {
  const builder = new BatchBuilder({ maxLen, maxRows: offsets.length + 1, maxAgeMs: 60_000 });
  for (const offset of offsets) {
    const message: TokenizedMessage = {
      id: `id-${offset}`,
      text: text(offset),
      label: offset % 2 === 0 ? 0 : 1,
      tokens: new Int32Array(maxLen),
      position: { source: SOURCE, partition: 0, offset: BigInt(offset), timestampMs: null },
    };
    builder.push(message);
  }
  return { batch: builder.flush() as RecordBatch, scores: Float32Array.from(offsets, () => 0.25), modelVersion: 1, processedAtMs: 1_700_000_000_000 };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<{ dir: string; undo: (fn: Undo) => void }> {
  return faultDir(t, 'textstream-sink-faults-');
}

function sinkOptions(dir: string, extra: Partial<ParquetSinkOptions> = {}): ParquetSinkOptions {
  return { dir, pipeline: 'spam', rotateRows: 4, ...extra };
}

/** Every offset in the published files (DuckDB reads what a user's glob would). */
async function offsetsOnDisk(dir: string): Promise<number[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT "offset"::INTEGER AS o FROM read_parquet('${dir}/spam/**/*.parquet', hive_partitioning = false) ORDER BY o`,
    );
    return (reader.getRowObjectsJS() as Array<{ o: number }>).map((r) => r.o);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

const names = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();
const isTemp = (name: string): boolean => name.endsWith('.parquet.inprogress');

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

void test('should retry while the partition directory is read-only, then write every row exactly once', async (t) => {
  const { dir, undo } = await tempDir(t);
  const retries: SinkRetryInfo[] = [];
  const sink = new ParquetSink(sinkOptions(dir, { retry: { initialDelayMs: 20, maxDelayMs: 100 }, onRetry: (info) => retries.push(info) }));
  // 0–3 published; 4–5 in an open temporary file.
  assert.equal((await sink.write(scored(range(0, 5)))).length, 1);
  const partitionDir = partitionDirectory(sink.layout, SOURCE, 0);
  const readOnly = makeReadOnly([partitionDir], undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);

  // Rows 6–7 complete file 4–7, whose rename is refused; 8–11 need a new file, 12–13 another.
  let returned = false;
  const writing = sink.write(scored(range(6, 13))).finally(() => (returned = true));
  await until('five failed attempts', () => retries.length >= 5);
  assert.equal(returned, false, 'write() waits while the file system fails');
  assert.ok((await names(partitionDir)).filter(isTemp).length <= 1, 'a failed attempt leaves at most its own temp file');
  readOnly.restore();
  const durable = await writing;

  assert.deepEqual(durable.map((f) => [f.firstOffset, f.lastOffset, f.rows]), [
    [4n, 7n, 4],
    [8n, 11n, 4],
  ]);
  assert.deepEqual((await sink.close()).map((f) => [f.firstOffset, f.lastOffset]), [[12n, 13n]]);
  // No temp file left: the one whose delete was refused is deleted after the recovery.
  assert.deepEqual(await names(partitionDir), [parquetFileName(0n, 3n), parquetFileName(4n, 7n), parquetFileName(8n, 11n), parquetFileName(12n, 13n)]);
  assert.deepEqual(await offsetsOnDisk(dir), range(0, 13));

  const code = readOnlyCode();
  assert.ok(retries.every((r) => r.code === code && r.source === SOURCE && r.partition === 0 && r.rows === 4 && r.error instanceof Error));
  assert.deepEqual(retries.slice(0, 5).map((r) => [r.attempt, r.delayMs]), [
    [1, 20],
    [2, 40],
    [3, 80],
    [4, 100],
    [5, 100],
  ]);
  assert.match(retries[0]!.file, /\.parquet\.inprogress$/);
});

void test('should start a file over when the disk fills up, and finish it once space is freed', async (t) => {
  const { dir, undo } = await tempDir(t);
  const mount = path.join(dir, 'tmpfs');
  await mkdir(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount], { stdio: 'pipe' });
  } catch (err) {
    return t.skip(`cannot mount a tmpfs here (needs CAP_SYS_ADMIN): ${String(err).split('\n')[0]}`);
  }
  undo(() => {
    execFileSync('umount', ['-l', mount]);
  });
  const retries: SinkRetryInfo[] = [];
  // 8 rows of 48 KB text, row groups of 2 rows, no compression: ≈ 390 KB, more than the
  // 256 KB disk, so the third row group's write fails midway through the file.
  const text = (o: number): string => `${o}`.padEnd(48_000, 'x');
  const sink = new ParquetSink(
    sinkOptions(mount, {
      rotateRows: 8,
      rowGroupRows: 2,
      compression: 'UNCOMPRESSED',
      includeText: true,
      retry: { initialDelayMs: 10, maxDelayMs: 80 },
      onRetry: (info) => retries.push(info),
    }),
  );
  let returned = false;
  const writing = sink.write(scored(range(0, 7), text)).finally(() => (returned = true));
  await until('three failed attempts', () => retries.length >= 3);
  assert.equal(returned, false);
  const partitionDir = partitionDirectory(sink.layout, SOURCE, 0);
  // Each failed attempt deletes its partial file: the space is back for the next one.
  assert.ok((await names(partitionDir)).filter(isTemp).length <= 1);
  execFileSync('mount', ['-o', 'remount,size=4m', mount]);
  const durable = await writing;

  assert.deepEqual(durable.map((f) => [f.firstOffset, f.lastOffset, f.rows]), [[0n, 7n, 8]]);
  assert.deepEqual(await names(partitionDir), [parquetFileName(0n, 7n)]);
  assert.ok(retries.every((r) => r.code === 'ENOSPC'), retries.map((r) => r.code).join());
  assert.ok(retries.some((r) => r.rows < 8), 'the disk filled up while rows were appended, not only on finish');
  for (let i = 1; i < retries.length; i++) assert.ok(retries[i]!.delayMs >= retries[i - 1]!.delayMs);
  assert.equal(retries[1]!.delayMs, 2 * retries[0]!.delayMs);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT "offset"::INTEGER AS o, length(text)::INTEGER AS n FROM read_parquet('${durable[0]!.path}') ORDER BY o`,
    );
    assert.deepEqual(reader.getRowObjectsJS(), range(0, 7).map((o) => ({ o, n: 48_000 })));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  await sink.close();
});

void test('should stop retrying and reject when the signal aborts, publishing nothing more', async (t) => {
  const { dir, undo } = await tempDir(t);
  const controller = new AbortController();
  const retries: SinkRetryInfo[] = [];
  // A backoff no busy machine comes near: a rejection before it ends can only be the abort's.
  const backoffMs = 120_000;
  const sink = new ParquetSink(
    sinkOptions(dir, { retry: { initialDelayMs: backoffMs, maxDelayMs: backoffMs }, signal: controller.signal, onRetry: (info) => retries.push(info) }),
  );
  await sink.write(scored(range(0, 5)));
  const partitionDir = partitionDirectory(sink.layout, SOURCE, 0);
  const readOnly = makeReadOnly([partitionDir], undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);
  const writing = sink.write(scored(range(6, 9)));
  await until('a failed attempt', () => retries.length >= 1);
  const abortedAt = Date.now();
  controller.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof SinkError && err.canRetry && /stopped retrying/.test(err.message));
  const waitedMs = Date.now() - abortedAt;
  assert.deepEqual(retries.map((r) => r.delayMs), [backoffMs], 'one failed attempt, whose backoff the abort cut short');
  assert.ok(waitedMs < backoffMs / 2, `rejected ${waitedMs} ms after the abort, not after the ${backoffMs} ms backoff`);
  readOnly.restore();
  // What the pipeline does next: abort the sink. The rows of 4–9 were never published.
  await sink.abort();
  assert.deepEqual(await names(partitionDir), [parquetFileName(0n, 3n)]);
});

void test('should stop retrying a call whose own signal aborts (a rebalance) and stay usable', async (t) => {
  const { dir, undo } = await tempDir(t);
  const retries: SinkRetryInfo[] = [];
  const sink = new ParquetSink(sinkOptions(dir, { retry: { initialDelayMs: 50, maxDelayMs: 30_000 }, onRetry: (info) => retries.push(info) }));
  await sink.write(scored(range(0, 5)));
  const partitionDir = partitionDirectory(sink.layout, SOURCE, 0);
  const readOnly = makeReadOnly([partitionDir], undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);
  const epoch = new AbortController();
  const writing = sink.write(scored(range(6, 9)), { signal: epoch.signal });
  await until('a failed attempt', () => retries.length >= 1);
  epoch.abort();
  await assert.rejects(writing, (err: unknown) => err instanceof SinkError && err.canRetry && /stopped retrying/.test(err.message));
  readOnly.restore();
  // The source delivers the unpublished rows again (from the committed offset, 4).
  assert.deepEqual((await sink.write(scored(range(4, 9)))).map((f) => [f.firstOffset, f.lastOffset]), [[4n, 7n]]);
  await sink.close();
  assert.deepEqual(await offsetsOnDisk(dir), range(0, 9));
});

void test('should leave a crash’s temporary file it cannot delete (read-only folder), and remove it at the next start', async (t) => {
  const { dir, undo } = await tempDir(t);
  const layout = { dir, pipeline: 'spam' };
  const partitionDir = partitionDirectory(layout, SOURCE, 0);
  await mkdir(partitionDir, { recursive: true });
  const temp = path.join(partitionDir, '.00000000000000000004-crashed.parquet.inprogress');
  await writeFile(temp, 'half a file');
  const readOnly = makeReadOnly([partitionDir], undo);
  if (typeof readOnly === 'string') return t.skip(readOnly);

  const blocked = await recoverPartitionOutput(layout, SOURCE, 0);
  assert.deepEqual(blocked.tempFilesLeft, [{ path: temp, code: readOnlyCode() }]);
  assert.deepEqual(blocked.removedTempFiles, []);
  readOnly.restore();
  const later = await recoverPartitionOutput(layout, SOURCE, 0);
  assert.deepEqual(later.removedTempFiles, [temp]);
  assert.deepEqual(await names(partitionDir), []);
});

void test('should not write a file again when its temporary file was deleted by a new owner of the partition', async (t) => {
  const { dir } = await tempDir(t);
  const retries: SinkRetryInfo[] = [];
  const sink = new ParquetSink(sinkOptions(dir, { onRetry: (info) => retries.push(info) }));
  await sink.write(scored(range(0, 1)));
  // Another worker got the partition in a rebalance and cleared what looked like a crash's leftovers.
  assert.equal((await recoverPartitionOutput(sink.layout, SOURCE, 0)).removedTempFiles.length, 1);
  await assert.rejects(
    sink.write(scored(range(2, 3))),
    (err: unknown) => err instanceof SinkError && (err.cause as NodeJS.ErrnoException).code === 'ENOENT',
  );
  assert.deepEqual(retries, []);
  assert.deepEqual(await names(partitionDirectory(sink.layout, SOURCE, 0)), []);
});

void test('should fail at once, without retrying, on an error that no retry can fix', async (t) => {
  const { dir } = await tempDir(t);
  // The pipeline's folder is a file: every path below it is ENOTDIR.
  await writeFile(path.join(dir, 'spam'), 'not a folder');
  const retries: SinkRetryInfo[] = [];
  const sink = new ParquetSink(sinkOptions(dir, { onRetry: (info) => retries.push(info) }));
  await assert.rejects(
    sink.write(scored(range(0, 1))),
    (err: unknown) => err instanceof SinkError && !err.canRetry && (err.cause as NodeJS.ErrnoException).code === 'ENOTDIR',
  );
  assert.deepEqual(retries, []);
});

void test('should reject retry options that are not a growing backoff, naming the setting', () => {
  assert.throws(() => new ParquetSink(sinkOptions('/tmp', { retry: { initialDelayMs: 0 } })), (e: unknown) => e instanceof ConfigError && e.path === 'sink.retry.initialDelayMs');
  assert.throws(
    () => new ParquetSink(sinkOptions('/tmp', { retry: { initialDelayMs: 500, maxDelayMs: 100 } })),
    (e: unknown) => e instanceof ConfigError && e.path === 'sink.retry.maxDelayMs',
  );
});

/** Writes files 0–3, 4–7 and 8–11 and returns the partition directory. */
async function threeFiles(dir: string): Promise<string> {
  const sink = new ParquetSink(sinkOptions(dir));
  await sink.write(scored(range(0, 11)));
  await sink.close();
  return partitionDirectory(sink.layout, SOURCE, 0);
}

void test('should delete a truncated temporary file left by a crash, and never count it as output', async (t) => {
  const { dir } = await tempDir(t);
  const partitionDir = await threeFiles(dir);
  // A crashed writer's half-written file, with offsets past the published ones.
  const bytes = await readFile(path.join(partitionDir, parquetFileName(8n, 11n)));
  const temp = path.join(partitionDir, `.${'12'.padStart(20, '0')}-0b6b5a0e-0000-4000-8000-000000000000.parquet.inprogress`);
  await writeFile(temp, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const layout = { dir, pipeline: 'spam' };
  assert.equal(await findLastOffsetOnDisk(layout, SOURCE, 0), 11n);

  const recovery = await recoverPartitionOutput(layout, SOURCE, 0);
  assert.deepEqual(recovery, { lastOffset: 11n, removedTempFiles: [temp], tempFilesLeft: [], quarantined: [], migrated: [] });
  assert.deepEqual(await names(partitionDir), [parquetFileName(0n, 3n), parquetFileName(4n, 7n), parquetFileName(8n, 11n)]);
});

void test('should quarantine truncated final files and resume after the last valid one', async (t) => {
  const { dir } = await tempDir(t);
  const partitionDir = await threeFiles(dir);
  const layout = { dir, pipeline: 'spam' };
  const last = path.join(partitionDir, parquetFileName(8n, 11n));
  const fullSize = (await stat(last)).size;
  // A disk error cut the newest file short; a bad copy left an empty one above it.
  await truncate(last, fullSize - 100);
  await writeFile(path.join(partitionDir, parquetFileName(12n, 15n)), '');
  // Read-only lookup: the invalid files are not the end of the output.
  assert.equal(await findLastOffsetOnDisk(layout, SOURCE, 0), 7n);

  const recovery = await recoverPartitionOutput(layout, SOURCE, 0, { now: () => 1_700_000_000_000 });
  const quarantine = quarantineDirectory(layout, SOURCE, 0);
  assert.equal(quarantine, path.join(dir, 'spam', '_quarantine', 'input=corpus', 'partition-0'));
  assert.equal(recovery.lastOffset, 7n);
  assert.deepEqual(recovery.removedTempFiles, []);
  assert.deepEqual(
    recovery.quarantined.map((q) => [path.basename(q.path), path.relative(quarantine, q.movedTo), q.firstOffset, q.lastOffset, q.bytes]),
    [
      [parquetFileName(12n, 15n), `${parquetFileName(12n, 15n)}.1700000000000.quarantined`, 12n, 15n, 0],
      [parquetFileName(8n, 11n), `${parquetFileName(8n, 11n)}.1700000000000.quarantined`, 8n, 11n, fullSize - 100],
    ],
  );
  assert.match(recovery.quarantined[0]!.reason, /shorter than any Parquet file/);
  assert.match(recovery.quarantined[1]!.reason, /does not end with the Parquet magic/);
  assert.deepEqual(await names(partitionDir), [parquetFileName(0n, 3n), parquetFileName(4n, 7n)]);
  assert.equal((await names(quarantine)).length, 2);

  // Resuming after offset 7 writes 8–11 again; a glob over the output never reads the quarantined files.
  const sink = new ParquetSink(sinkOptions(dir));
  await sink.write(scored(range(8, 11)));
  await sink.close();
  assert.deepEqual(await offsetsOnDisk(dir), range(0, 11));
  assert.equal(await findLastOffsetOnDisk(layout, SOURCE, 0), 11n);
  assert.deepEqual(await recoverPartitionOutput(layout, SOURCE, 0), { lastOffset: 11n, removedTempFiles: [], tempFilesLeft: [], quarantined: [], migrated: [] });
});

void test('should tell a complete Parquet file from a truncated or foreign one by its first and last bytes', async (t) => {
  const { dir } = await tempDir(t);
  const partitionDir = await threeFiles(dir);
  const good = path.join(partitionDir, parquetFileName(0n, 3n));
  assert.equal(await checkParquetFile(good), null);
  const bytes = await readFile(good);
  const variant = async (name: string, content: Buffer): Promise<string | null> => {
    const file = path.join(dir, name);
    await writeFile(file, content);
    return checkParquetFile(file);
  };
  assert.match((await variant('cut', bytes.subarray(0, bytes.length - 1)))!, /does not end with the Parquet magic/);
  assert.match((await variant('tiny', bytes.subarray(0, 8)))!, /8 bytes, shorter/);
  assert.match((await variant('zeros', Buffer.alloc(bytes.length)))!, /does not start with/);
  const badFooter = Buffer.from(bytes);
  badFooter.writeUInt32LE(bytes.length, bytes.length - 8);
  assert.match((await variant('footer', badFooter))!, /footer length \d+ does not fit/);
  await copyFile(good, path.join(dir, 'copy'));
  assert.equal(await checkParquetFile(path.join(dir, 'copy')), null);
  await mkdir(path.join(dir, 'folder'));
  assert.equal(await checkParquetFile(path.join(dir, 'folder')), 'not a regular file');
});
