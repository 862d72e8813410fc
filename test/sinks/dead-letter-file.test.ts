import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SinkError } from '../../src/errors.js';
import { DeadLetterReasons, type DeadLetter } from '../../src/message.js';
import { DeadLetterFileSink, type DeadLetterLine } from '../../src/sinks/dead-letter-file.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-dlq-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function letter(offset: bigint, original: Uint8Array, timestampMs: number | null = null): DeadLetter {
  return {
    position: { source: 'corpus.parquet', partition: 0, offset, timestampMs },
    reason: DeadLetterReasons.INVALID_UTF8,
    detail: `row ${offset} is not valid UTF-8`,
    original,
  };
}

async function lines(file: string): Promise<DeadLetterLine[]> {
  const text = await readFile(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as DeadLetterLine);
}

void test('should append one JSON line per letter with the original bytes as base64, creating folders', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'a', 'b', 'dead-letters.jsonl');
  const sink = new DeadLetterFileSink({ path: file });
  const bad = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0xff]);
  await sink.write([letter(3n, bad), letter(2n ** 62n, new Uint8Array(), 1_700_000_000_000)]);
  await sink.write([]);
  await sink.write([letter(9n, new TextEncoder().encode('ok "quoted"\n'))]);
  assert.equal(sink.written, 3);
  await sink.close();
  assert.deepEqual(await lines(file), [
    {
      reason: 'invalid-utf8',
      detail: 'row 3 is not valid UTF-8',
      source: 'corpus.parquet',
      partition: 0,
      offset: '3',
      timestamp: null,
      original_base64: Buffer.from(bad).toString('base64'),
    },
    {
      reason: 'invalid-utf8',
      detail: `row ${2n ** 62n} is not valid UTF-8`,
      source: 'corpus.parquet',
      partition: 0,
      offset: '4611686018427387904',
      timestamp: 1_700_000_000_000,
      original_base64: '',
    },
    {
      reason: 'invalid-utf8',
      detail: 'row 9 is not valid UTF-8',
      source: 'corpus.parquet',
      partition: 0,
      offset: '9',
      timestamp: null,
      original_base64: Buffer.from('ok "quoted"\n').toString('base64'),
    },
  ]);
});

void test('should encode only the bytes of a view into a larger buffer', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'view.jsonl');
  const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const sink = new DeadLetterFileSink({ path: file });
  await sink.write([letter(0n, backing.subarray(2, 4))]);
  await sink.close();
  assert.equal((await lines(file))[0]!.original_base64, Buffer.from([3, 4]).toString('base64'));
});

void test('should append to an existing file across sinks', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'dlq.jsonl');
  for (const offset of [1n, 2n]) {
    const sink = new DeadLetterFileSink({ path: file });
    await sink.write([letter(offset, new Uint8Array([0xff]))]);
    await sink.close();
  }
  assert.deepEqual((await lines(file)).map((l) => l.offset), ['1', '2']);
});

void test('should keep lines whole when writes overlap', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'overlap.jsonl');
  const sink = new DeadLetterFileSink({ path: file });
  await Promise.all(Array.from({ length: 20 }, (_, i) => sink.write([letter(BigInt(i), new Uint8Array(1000).fill(i))])));
  await sink.close();
  assert.deepEqual(
    (await lines(file)).map((l) => l.offset),
    Array.from({ length: 20 }, (_, i) => String(i)),
  );
});

void test('should create no file without letters, close twice safely and refuse writes after close', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'none.jsonl');
  const sink = new DeadLetterFileSink({ path: file });
  await sink.close();
  await sink.close();
  await assert.rejects(stat(file), { code: 'ENOENT' });
  await assert.rejects(sink.write([letter(0n, new Uint8Array())]), (e: unknown) => e instanceof SinkError && !e.canRetry);
});
