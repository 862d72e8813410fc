import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import type { InspectReport } from '../../src/inspect/inspect.js';
import type { ReplaySummary } from '../../src/runtime/replay.js';
import { parquetFileName } from '../../src/sinks/parquet-layout.js';
import { ParquetFileWriter, type ParquetColumn } from '../../src/sinks/parquet-writer.js';
import { CLI, runCli as run } from '../helpers/cli.js';
import { replayMail } from '../helpers/mail-replay.js';


async function inspectJson(dir: string, ...extra: string[]): Promise<{ code: number | null; report: InspectReport; stderr: string }> {
  const result = await run(['inspect', dir, '--json', ...extra]);
  return { code: result.code, report: JSON.parse(result.stdout) as InspectReport, stderr: result.stderr };
}

let root = '';
let outDir = '';
let summary: ReplaySummary;

// Bad rows in the middle, so the output has offsets that only a dead letter accounts for.
before(async () => {
  ({ root, outDir, summary } = await replayMail({
    prefix: 'textstream-inspect-',
    name: 'insp',
    pairs: 40,
    badRowsBefore: { emptyText: 15, badLabel: 27 },
    bootstrapRows: 30,
    rotateRows: 15,
  }));
});

test.after(() => rm(root, { recursive: true, force: true }));

interface Totals {
  n: number;
  files: number;
  first: number;
  last: number;
  labelled: number;
  unlabelled: number;
  correct: number;
  positives: number;
  vmin: number;
  vmax: number;
  mean: number;
}

/** A copy of the replay's output to damage. */
async function copyOutput(): Promise<string> {
  const copy = path.join(root, `copy-${randomUUID()}`);
  await cp(outDir, copy, { recursive: true });
  return copy;
}

test('should report a clean replay with the figures DuckDB computes from the same files, and exit 0', async () => {
  assert.equal(summary.deadLetters, 3);
  // A stale temporary file from a crashed writer: listed, never read as data.
  const stale = `.${'0'.repeat(20)}-${randomUUID()}.parquet.inprogress`;
  const copy = await copyOutput();
  const copyPartition = path.join(copy, 'insp', 'input=mail', 'partition-0');
  await writeFile(path.join(copyPartition, stale), 'PAR1 half a file');

  const { code, report, stderr } = await inspectJson(copy);
  assert.equal(code, 0, stderr);
  assert.equal(report.consistent, true);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.tempFiles.map((t) => t.path), [path.join('insp', 'input=mail', 'partition-0', stale)]);

  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const glob = path.join(copy, '**', '*.parquet');
  const [totals] = (
    await db.runAndReadAll(
      `SELECT count(*)::INTEGER AS n,
              count(DISTINCT filename)::INTEGER AS files,
              min("offset")::INTEGER AS first, max("offset")::INTEGER AS last,
              count(label)::INTEGER AS labelled,
              sum(CASE WHEN label IS NULL THEN 1 ELSE 0 END)::INTEGER AS unlabelled,
              sum(CASE WHEN predicted = label THEN 1 ELSE 0 END)::INTEGER AS correct,
              sum(CASE WHEN label = 1 THEN 1 ELSE 0 END)::INTEGER AS positives,
              min(model_version)::INTEGER AS vmin, max(model_version)::INTEGER AS vmax,
              avg(score::DOUBLE) AS mean
       FROM read_parquet('${glob}', filename = true)`,
    )
  ).getRowObjectsJS() as unknown as Totals[];
  const bins = (
    await db.runAndReadAll(
      `SELECT least(9, floor(score::DOUBLE * 10))::INTEGER AS bin, count(*)::INTEGER AS n
       FROM read_parquet('${glob}') GROUP BY 1 ORDER BY 1`,
    )
  ).getRowObjectsJS() as Array<{ bin: number; n: number }>;
  db.closeSync();

  assert.equal(report.rows, totals!.n);
  assert.equal(report.rows, summary.rowsWritten);
  assert.equal(report.files, totals!.files);
  assert.equal(report.labels.labelled, totals!.labelled);
  assert.equal(report.labels.unlabelled, totals!.unlabelled);
  assert.equal(report.labels.accuracy, totals!.correct / totals!.labelled);
  assert.equal(report.labels.byLabel.find((l) => l.label === 1)?.rows, totals!.positives);
  assert.deepEqual(report.modelVersions, { min: totals!.vmin, max: totals!.vmax });
  assert.ok(Math.abs(report.scores.mean! - totals!.mean) < 1e-9);
  const expectedBins = new Array<number>(10).fill(0);
  for (const b of bins) expectedBins[b.bin] = b.n;
  assert.deepEqual(report.scores.histogram.map((b) => b.rows), expectedBins);

  assert.equal(report.partitions.length, 1);
  const [p] = report.partitions;
  assert.deepEqual(
    [p!.pipeline, p!.legacy, p!.source, p!.partition, p!.files, p!.rows, p!.firstOffset, p!.lastOffset],
    ['insp', false, 'mail', 0, totals!.files, totals!.n, String(totals!.first), String(totals!.last)],
  );
  // Two bad rows in the middle: their offsets are missing and each has a dead letter.
  assert.equal(p!.missingOffsets, 2);
  assert.equal(p!.deadLetteredOffsets, 2);
  assert.equal(report.deadLetters.total, summary.deadLetters);
  assert.deepEqual(report.deadLetters.byReason, summary.deadLettersByReason);
  assert.equal(report.deadLetters.note, null);

  const text = await run(['inspect', copy]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, new RegExp(`rows +${summary.rowsWritten}\\n`));
  assert.match(text.stdout, /insp +mail +0 +\d+ +\d+ +0 +\d+ +2 +2 +ok/);
  assert.match(text.stdout, /Temporary files/);
  assert.match(text.stdout, /Consistent: no gaps, overlaps or mismatches\./);
});

test('should exit 1 and name the partition and ranges when a middle file is missing', async () => {
  const copy = await copyOutput();
  const dir = path.join(copy, 'insp', 'input=mail', 'partition-0');
  const files = (await readdir(dir)).sort();
  assert.ok(files.length >= 3, `${files.length} files`);
  const range = (name: string): [bigint, bigint] => name.replace('.parquet', '').split('-').map(BigInt) as [bigint, bigint];
  await rm(path.join(dir, files[1]!));
  const [, prevLast] = range(files[0]!);
  const [nextFirst] = range(files[2]!);

  const { code, report, stderr } = await inspectJson(copy);
  assert.equal(code, 1);
  assert.match(stderr, /1 problem\(s\) found \(gap\)/);
  assert.equal(report.consistent, false);
  assert.equal(report.problems.length, 1);
  const [gap] = report.problems;
  assert.equal(gap!.kind, 'gap');
  assert.equal(gap!.partition, 'insp/input=mail/partition-0');
  assert.deepEqual([gap!.from, gap!.to], [String(prevLast + 1n), String(nextFirst - 1n)]);
  assert.deepEqual(gap!.files.map((f) => path.basename(f)), [files[0], files[2]]);

  const text = await run(['inspect', copy]);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /Problems: 1/);
  assert.match(
    text.stdout,
    new RegExp(`gap +insp/input=mail/partition-0: offsets ${prevLast + 1n}–${nextFirst - 1n} are missing between ${files[0]}`),
  );
  assert.match(text.stdout, / 1 problem$/m);

  // Accepted with --allow-gaps, but still listed.
  const allowed = await inspectJson(copy, '--allow-gaps');
  assert.equal(allowed.code, 0);
  assert.equal(allowed.report.warnings.length, 1);
});

test('should exit 1 on overlapping files and on a file whose rows do not match its name', async () => {
  const copy = await copyOutput();
  const dir = path.join(copy, 'insp', 'input=mail', 'partition-0');
  const files = (await readdir(dir)).sort();
  const [first, last] = files[1]!.replace('.parquet', '').split('-').map(BigInt) as [bigint, bigint];
  // The same rows again under a name shifted by 3: it overlaps both neighbours' ranges.
  const shifted = parquetFileName(first + 3n, last + 3n);
  await copyFile(path.join(dir, files[1]!), path.join(dir, shifted));

  const { code, report } = await inspectJson(copy);
  assert.equal(code, 1);
  const kinds = report.problems.map((p) => p.kind);
  assert.ok(kinds.includes('overlap'), kinds.join());
  assert.ok(kinds.includes('name-mismatch'), kinds.join());
  const overlap = report.problems.find((p) => p.kind === 'overlap' && p.files.some((f) => f.endsWith(shifted)))!;
  assert.match(overlap.message, new RegExp(`${files[1]} \\(${first}–${last}\\) and ${shifted} \\(${first + 3n}–${last + 3n}\\) overlap on offsets ${first + 3n}–${last}`));
  const mismatch = report.problems.find((p) => p.kind === 'name-mismatch')!;
  assert.match(mismatch.message, new RegExp(`its name says offsets ${first + 3n}–${last + 3n}, its rows hold offsets ${first}–${last}`));
  const text = await run(['inspect', copy]);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /^ {2}overlap +insp\/input=mail\/partition-0: /m);
});

test('should exit 2 naming a missing folder, and document its exit codes in --help', async () => {
  const missing = path.join(root, 'no-such-dir');
  const result = await run(['inspect', missing]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`));
  const usage = await run(['inspect']);
  assert.equal(usage.code, 2);
  const help = await run(['inspect', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n\s+\$ textstream replay/);
  assert.match(help.stdout, /\$ textstream inspect out\n/);
  assert.match(help.stdout, /--json +no progress display/);
  assert.match(help.stdout, /\$ textstream inspect out\/spamassassin --json/);
  assert.match(help.stdout, /Exit codes: 0 consistent; 1 gaps, overlaps, mismatches/);
});

/** Terminal control sequences: cli-progress draws, erases and hides the cursor with them. */
const ESCAPE = /\u001b[[78]/u;

/**
 * Runs `textstream <args>` with a terminal as its stdout and stderr, through util-linux
 * `script` (which merges both into `output`, with CRLF line ends); null where there is none.
 */
async function runInTerminal(args: string[]): Promise<{ code: number; output: string } | null> {
  const exec = promisify(execFile);
  const version = await exec('script', ['--version']).catch(() => null);
  if (!version?.stdout.includes('util-linux')) return null;
  const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  try {
    const { stdout } = await exec('script', ['--quiet', '--return', '--command', command, '/dev/null']);
    return { code: 0, output: stdout.replace(/\r\n/g, '\n') };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, output: e.stdout.replace(/\r\n/g, '\n') };
  }
}

test('should draw a files bar only on a terminal and never with --json', async (t) => {
  // Off a terminal (pipes): no bar, and a run this short prints no 5 s progress line either.
  const piped = await run(['inspect', outDir]);
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr, ESCAPE);
  assert.doesNotMatch(piped.stderr, /progress:/);
  const pipedJson = await run(['inspect', outDir, '--json']);
  assert.equal(pipedJson.stderr, '');
  assert.equal((JSON.parse(pipedJson.stdout) as InspectReport).rows, summary.rowsWritten);

  const tty = await runInTerminal(['inspect', outDir]);
  if (tty === null) return t.skip('no util-linux `script` to provide a terminal');
  assert.equal(tty.code, 0, tty.output);
  const files = (JSON.parse(pipedJson.stdout) as InspectReport).files;
  assert.match(tty.output, new RegExp(`100% \\| ${files}/${files} files`));
  assert.match(tty.output, /Consistent: no gaps, overlaps or mismatches\./);

  // On a terminal with --json: the JSON alone, not one control sequence around it.
  const ttyJson = await runInTerminal(['inspect', outDir, '--json']);
  assert.equal(ttyJson!.code, 0, ttyJson!.output);
  assert.doesNotMatch(ttyJson!.output, ESCAPE);
  assert.deepEqual(JSON.parse(ttyJson!.output), JSON.parse(pipedJson.stdout));
});

/** Output columns as the sink writes them (sinks/parquet-rows.ts outputSchema, without text). */
const OUTPUT_COLUMNS: Record<string, ParquetColumn> = {
  id: { type: 'UTF8' },
  score: { type: 'FLOAT' },
  predicted: { type: 'INT32' },
  label: { type: 'INT32', optional: true },
  model_version: { type: 'INT64' },
  source: { type: 'UTF8' },
  partition: { type: 'INT32' },
  offset: { type: 'INT64' },
  timestamp: { type: 'TIMESTAMP_MILLIS', optional: true },
  processed_at: { type: 'TIMESTAMP_MILLIS' },
};

async function writeKafkaFile(dir: string, topic: string, partition: number, offsets: number[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, parquetFileName(BigInt(offsets[0]!), BigInt(offsets.at(-1)!)));
  const writer = await ParquetFileWriter.open(`${file}.tmp`, OUTPUT_COLUMNS, { compression: 'SNAPPY', rowGroupRows: 64 });
  for (const offset of offsets) {
    const score = (offset % 10) / 10 + 0.05;
    await writer.append({
      id: `m${offset}`,
      score,
      predicted: score > 0.5 ? 1 : 0,
      label: offset % 3 === 0 ? null : offset % 2,
      model_version: offset - 100,
      source: topic,
      partition,
      offset,
      timestamp: 1_700_000_000_000 + offset,
      processed_at: 1_700_000_100_000,
    });
  }
  await writer.finish(file);
}

test('should check a Kafka layout and say its dead letters live in a topic', async () => {
  const dir = path.join(root, `kafka-${randomUUID()}`);
  const part = path.join(dir, 'worker', 'input=emails', 'partition-1');
  const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
  await writeKafkaFile(part, 'emails', 1, range(100, 109));
  await writeKafkaFile(part, 'emails', 1, range(110, 119));
  await writeKafkaFile(part, 'emails', 1, range(125, 129));

  const { code, report } = await inspectJson(dir);
  assert.equal(code, 1);
  assert.equal(report.rows, 25);
  assert.deepEqual(
    report.partitions.map((p) => [p.legacy, p.source, p.partition, p.files, p.rows, p.firstOffset, p.lastOffset, p.missingOffsets]),
    [[false, 'emails', 1, 3, 25, '100', '129', 5]],
  );
  assert.deepEqual(report.modelVersions, { min: 0, max: 29 });
  assert.match(report.deadLetters.note ?? '', /dead-letter topic/);
  assert.deepEqual(
    report.problems.map((p) => [p.kind, p.from, p.to]),
    [['gap', '120', '124']],
  );
  assert.equal((await inspectJson(dir, '--allow-gaps')).code, 0);

  // A file copied into another partition's folder: its rows say where they belong.
  const other = path.join(dir, 'worker', 'input=emails', 'partition-2');
  await mkdir(other);
  await copyFile(path.join(part, parquetFileName(100n, 109n)), path.join(other, parquetFileName(100n, 109n)));
  const moved = await inspectJson(dir, '--allow-gaps');
  assert.equal(moved.code, 1);
  assert.deepEqual(moved.report.problems.map((p) => [p.kind, p.partition]), [['wrong-partition', 'worker/input=emails/partition-2']]);
});
