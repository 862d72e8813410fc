import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { chromium } from 'playwright-core';
import { formatCount } from '../../src/report/html.js';
import type { ReportSummary } from '../../src/report/summary.js';
import type { ReplaySummary } from '../../src/runtime/replay.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { replayMail } from '../helpers/mail-replay.js';

const run = promisify(execFile);
const CHARTS = ['throughput', 'quality', 'scores', 'dead-letters'];

let root = '';
let outDir = '';
let summary: ReplaySummary;

/** One small replay whose outputs every test here reports on; none of them changes it. */
before(async () => {
  ({ root, outDir, summary } = await replayMail({ prefix: 'textstream-report-e2e-', name: 'e2e', pairs: 50, bootstrapRows: 40, rotateRows: 30 }));
});

test.after(() => rm(root, { recursive: true, force: true }));

test('should write a self-contained HTML report of a real replay whose charts render in headless Chromium', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-report-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(summary.deadLetters, 3);

  // The command, as a user runs it.
  const reportFile = path.join(dir, 'report.html');
  const cli = await run(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'report', outDir, '--out', reportFile], {
    cwd: dir,
  });
  assert.match(cli.stdout, /Rows written\s+100\n/);
  assert.doesNotMatch(cli.stderr, /\S/, 'no warnings and no progress bar off a TTY');
  const html = await readFile(reportFile, 'utf8');
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet[^>]+href=/i, 'no external scripts or stylesheets');

  const executablePath = (await run('bash', [path.join(repoRoot, 'scripts', 'chromium.sh')])).stdout.trim();
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const blocked: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  // Self-containment: anything but the file itself (and inline data) is refused.
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(reportFile).href);
  await page.waitForSelector('body[data-rendered="true"]', { timeout: 10_000 });
  assert.deepEqual(problems, []);
  assert.deepEqual(blocked, []);

  // Every chart drew a canvas of non-zero size with more than a background's worth of colours.
  for (const id of CHARTS) {
    const canvas = page.locator(`#chart-${id} canvas`);
    assert.equal(await canvas.count(), 1, `${id}: one canvas`);
    const box = await canvas.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 50, `${id}: canvas size ${JSON.stringify(box)}`);
    // Browser code as text: this project compiles without the DOM library.
    const colours = await page.evaluate<number>(`(() => {
      const c = document.querySelector('#chart-${id} canvas');
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4) seen.add(((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0);
      return seen.size;
    })()`);
    assert.ok(colours > 3, `${id}: ${colours} distinct pixel values`);
    // The same, on what a person would see: a screenshot of the chart is not one colour.
    const shot = path.join(dir, `chart-${id}.png`);
    await page.locator(`#chart-${id}`).screenshot({ path: shot });
    assert.ok(await pngIsNotUniform(context, await readFile(shot)), `${id}: screenshot is uniform`);
  }

  // The header repeats the run's own summary.
  const cell = (key: string): Promise<string> => page.locator(`#summary td[data-key="${key}"]`).innerText();
  assert.equal(await cell('rows'), formatCount(summary.rowsWritten));
  assert.equal(await cell('files'), String(summary.files.length));
  assert.equal(await cell('partitions'), '1');
  const lastOffset = summary.files.reduce((m, f) => (f.lastOffset > m ? f.lastOffset : m), 0n);
  assert.equal(await cell('offsets'), `0 – ${lastOffset}`);
  assert.match(await cell('labelled'), new RegExp(`^${summary.evaluation.count} \\(${summary.evaluation.positives} positive, ${summary.evaluation.negatives} negative\\)$`));
  assert.equal(await cell('unlabelled'), '5');
  assert.equal(await cell('accuracy'), `${(summary.evaluation.accuracy! * 100).toFixed(1)} %`);
  assert.ok((await cell('auc')).startsWith(summary.evaluation.auc!.toFixed(4)), `${await cell('auc')} vs ${summary.evaluation.auc}`);
  assert.equal(await cell('dead-letters'), String(summary.deadLetters));
  const data = JSON.parse(await page.locator('#report-data').textContent() ?? 'null') as { deadLetters: { byReason: Array<[string, number]> } };
  assert.deepEqual(Object.fromEntries(data.deadLetters.byReason), summary.deadLettersByReason);

  await page.screenshot({ path: path.join(dir, 'report.png'), fullPage: true });
  // Set TEXTSTREAM_REPORT_SCREENSHOT=<file.png> to keep the page's picture for a look.
  const keep = process.env.TEXTSTREAM_REPORT_SCREENSHOT;
  if (keep) await copyFile(path.join(dir, 'report.png'), keep);
});

test('should report an empty output folder and a run without labels with a clear message', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-report-empty-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const main = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  // A folder without outputs is the wrong folder: exit 2, and no report of nothing.
  const empty = await run(process.execPath, [main, 'report', dir, '--out', path.join(dir, 'r.html')]).catch((err: { code: number; stderr: string }) => err);
  assert.equal((empty as { code: number }).code, 2);
  assert.match((empty as { stderr: string }).stderr, /^textstream: output dir: no Parquet output files under \S+; give the run's sink\.dir, or one pipeline's folder in it$/m);
  await assert.rejects(readFile(path.join(dir, 'r.html'), 'utf8'), { code: 'ENOENT' });

  const missing = await run(process.execPath, [main, 'report', path.join(dir, 'nope')]).catch((err: { code: number; stderr: string }) => err);
  assert.equal((missing as { code: number }).code, 2);
  assert.match((missing as { stderr: string }).stderr, /does not exist/);

  const help = await run(process.execPath, [main, 'report', '--help']);
  assert.match(help.stdout, /Examples:\n\s+\$ textstream replay/);
  assert.match(help.stdout, /--json +no progress display/);
  assert.match(help.stdout, /\$ textstream report out --out \S+ --json/);
});

test('should print the header figures and the report path as one JSON object with --json, and nothing on stderr', async (t) => {
  const dir = await tempDir(t, 'textstream-report-json-');
  const reportFile = path.join(dir, 'sub', 'report.html');
  // stdout and stderr are pipes here, not a TTY: no bar may be drawn, and --json turns the 5 s progress lines off too.
  const cli = await runCli(['report', outDir, '--out', reportFile, '--json'], dir);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cli.stderr, '');
  assert.match(cli.stdout, /^[^\n]+\n$/, 'exactly one line');
  const report = JSON.parse(cli.stdout) as ReportSummary;
  assert.equal(report.report, reportFile);
  assert.match(await readFile(reportFile, 'utf8'), /^<!doctype html>/);
  assert.equal(report.dir, outDir);

  // The same figures, computed by DuckDB from the same files.
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  t.after(() => db.closeSync());
  const [totals] = (
    await db.runAndReadAll(
      `SELECT count(*)::INTEGER AS n,
              count(DISTINCT filename)::INTEGER AS files,
              count(DISTINCT (source, "partition"))::INTEGER AS partitions,
              min("offset")::VARCHAR AS first, max("offset")::VARCHAR AS last,
              count(label)::INTEGER AS labelled,
              sum(CASE WHEN label = 1 THEN 1 ELSE 0 END)::INTEGER AS positives,
              sum(CASE WHEN label = 0 THEN 1 ELSE 0 END)::INTEGER AS negatives,
              sum(CASE WHEN predicted = label THEN 1 ELSE 0 END)::INTEGER AS correct,
              epoch_ms(min(processed_at))::DOUBLE AS "firstMs", epoch_ms(max(processed_at))::DOUBLE AS "lastMs"
       FROM read_parquet('${path.join(outDir, '**', '*.parquet')}', filename = true)`,
    )
  ).getRowObjectsJS() as unknown as Array<Record<string, number | string>>;
  assert.deepEqual(
    {
      rows: report.rows,
      files: report.files,
      partitions: report.partitions,
      firstOffset: report.firstOffset,
      lastOffset: report.lastOffset,
      labelled: report.labelled,
      positives: report.positives,
      negatives: report.negatives,
      unlabelled: report.unlabelled,
      accuracy: report.accuracy,
      firstProcessedAt: report.firstProcessedAt,
      lastProcessedAt: report.lastProcessedAt,
    },
    {
      rows: totals!.n,
      files: totals!.files,
      partitions: totals!.partitions,
      firstOffset: totals!.first,
      lastOffset: totals!.last,
      labelled: totals!.labelled,
      positives: totals!.positives,
      negatives: totals!.negatives,
      unlabelled: Number(totals!.n) - Number(totals!.labelled),
      accuracy: Number(totals!.correct) / Number(totals!.labelled),
      firstProcessedAt: new Date(Number(totals!.firstMs)).toISOString(),
      lastProcessedAt: new Date(Number(totals!.lastMs)).toISOString(),
    },
  );
  // And the run's own summary: 100 good rows of 103 (see writeInput), 3 dead letters in one file.
  assert.equal(report.rows, summary.rowsWritten);
  assert.equal(report.rows, 100);
  assert.deepEqual([report.deadLetters, report.deadLetterFiles, report.nonFiniteScores], [summary.deadLetters, 1, 0]);
  assert.ok(report.auc !== null && Math.abs(report.auc - summary.evaluation.auc!) <= report.aucMaxError!, `${report.auc} vs ${summary.evaluation.auc}`);
});

/** Decodes a PNG in the browser (no PNG library here) and says whether it has more than one colour. */
async function pngIsNotUniform(context: import('playwright-core').BrowserContext, png: Buffer): Promise<boolean> {
  const page = await context.newPage();
  try {
    const uniform = await page.evaluate(`(async () => {
      const image = new Image();
      image.src = 'data:image/png;base64,${png.toString('base64')}';
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(image, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 4; i < data.length; i += 4) {
        if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) return false;
      }
      return true;
    })()`);
    return uniform === false;
  } finally {
    await page.close();
  }
}
