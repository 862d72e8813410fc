import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReportData } from './aggregate.js';
import { AUC_BINS } from '../model/auc.js';

/*
 * The report is one HTML file that needs no network: uPlot's script and stylesheet are
 * inlined, and the aggregated data is embedded as JSON. Charts are drawn in the browser
 * from that JSON; the header tables are rendered here, so they read without JavaScript.
 */

const require = createRequire(import.meta.url);

function uplotAssets(): { js: string; css: string } {
  return {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(n: number): string {
  return int.format(n);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that cannot end a <script> element or open a comment inside it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function percent(x: number | null): string {
  return x === null ? 'no labelled rows' : `${(x * 100).toFixed(1)} %`;
}

function isoTime(ms: number | null): string {
  return ms === null ? '–' : new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** The header rows: [key for tests, label, value]. */
export function headerRows(data: ReportData): Array<[key: string, label: string, value: string]> {
  const auc =
    data.auc === null
      ? data.labelled === 0
        ? 'no labelled rows'
        : 'needs both classes'
      : `${data.auc.toFixed(4)} (± ${data.aucMaxError!.toPrecision(2)} from binning)`;
  const span =
    data.firstProcessedMs === null || data.lastProcessedMs === null
      ? '–'
      : `${isoTime(data.firstProcessedMs)} → ${isoTime(data.lastProcessedMs)} (${duration(data.lastProcessedMs - data.firstProcessedMs)})`;
  const letters = data.deadLetters.total;
  return [
    ['rows', 'Rows written', formatCount(data.rows)],
    ['files', 'Parquet files', formatCount(data.files)],
    ['partitions', 'Partitions', formatCount(data.partitions.length)],
    ['offsets', 'Offset range', data.firstOffset === null ? '–' : `${data.firstOffset} – ${data.lastOffset}`],
    [
      'labelled',
      'Labelled rows',
      data.labelled === 0
        ? 'no labelled rows'
        : `${formatCount(data.labelled)} (${formatCount(data.positives)} positive, ${formatCount(data.negatives)} negative)`,
    ],
    ['unlabelled', 'Unlabelled rows', formatCount(data.unlabelled)],
    ['accuracy', 'Prequential accuracy', percent(data.accuracy)],
    ['auc', 'Prequential AUC', auc],
    ['dead-letters', 'Dead letters', letters === 0 && data.deadLetters.files.length === 0 ? '0 (no dead-letter file)' : formatCount(letters)],
    ['processed', 'Processed', span],
    ...(data.nonFiniteScores > 0 ? [['non-finite', 'Non-finite scores', formatCount(data.nonFiniteScores)] as [string, string, string]] : []),
  ];
}

function table(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

/** The whole report page. */
export function renderReport(data: ReportData, options: { generatedAt?: Date } = {}): string {
  const { js, css } = uplotAssets();
  const generated = (options.generatedAt ?? new Date()).toISOString();
  const header = headerRows(data)
    .map(([key, label, value]) => `<tr><th>${escapeHtml(label)}</th><td data-key="${key}">${escapeHtml(value)}</td></tr>`)
    .join('\n');
  const partitions =
    data.partitions.length === 0
      ? ''
      : `<h2>Partitions</h2>\n${table(
          ['Pipeline', 'Source', 'Partition', 'Files', 'Rows', 'Offsets'],
          data.partitions.map((p) => [
            p.pipeline,
            p.source,
            String(p.partition),
            formatCount(p.files),
            formatCount(p.rows),
            p.firstOffset === null ? '–' : `${p.firstOffset} – ${p.lastOffset}`,
          ]),
        )}`;
  const unreadable =
    data.unreadableFiles.length === 0
      ? ''
      : `<p class="notice" id="unreadable">${data.unreadableFiles.length} output file(s) could not be read and are left out of every figure: ${data.unreadableFiles
          .map((u) => escapeHtml(u.reason))
          .join('; ')}</p>`;
  const notice =
    data.files === 0
      ? `<p class="notice" id="empty">No Parquet output files were found under ${escapeHtml(data.dir)}.</p>`
      : data.labelled === 0
        ? '<p class="notice" id="unlabelled">No labelled rows: accuracy and AUC cannot be computed.</p>'
        : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>textstream report: ${escapeHtml(data.dir)}</title>
<style>${css}</style>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1040px; padding: 0 16px; color: #222; }
  h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
  .sub { color: #666; margin: 0 0 16px; }
  table { border-collapse: collapse; margin: 8px 0; }
  th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
  thead th { border-bottom: 1px solid #bbb; }
  .notice { background: #fff7e0; border: 1px solid #f0d080; padding: 8px 12px; }
  .chart { margin: 6px 0 4px; min-height: 40px; }
  .note { color: #666; font-size: 12px; margin: 0; }
  .empty { color: #666; font-style: italic; }
</style>
</head>
<body>
<h1>textstream run report</h1>
<p class="sub">${escapeHtml(data.dir)} · generated ${escapeHtml(generated)}</p>
${notice}
${unreadable}
<table id="summary"><tbody>
${header}
</tbody></table>
${partitions}
<h2>Throughput</h2>
<div class="chart" id="chart-throughput"></div>
<p class="note">Rows written per second, by processed_at in buckets of <span id="bucket-width"></span>.</p>
<h2>Prequential accuracy and AUC</h2>
<div class="chart" id="chart-quality"></div>
<p class="note">Every row is scored before the model trains on it. Cumulative figures cover all labelled rows
processed up to the end of each time bucket (rows ordered by processed_at); “bucket accuracy” covers that bucket
alone. AUC comes from a ${AUC_BINS}-bin histogram of score logits per class: pairs in the same bin count ½, so the
final AUC is within the stated bound of the exact (tie-corrected) value.</p>
<h2>Scores by label</h2>
<div class="chart" id="chart-scores"></div>
<p class="note">Rows per score bin of width ${data.scoreHistogram.binWidth}, by label.</p>
<h2>Dead letters by reason</h2>
<div class="chart" id="chart-dead-letters"></div>
<p class="note">${data.deadLetters.files.length === 0 ? 'No dead-letter file found.' : `From ${data.deadLetters.files.map(escapeHtml).join(', ')}.`}</p>
<script>${js}</script>
<script id="report-data" type="application/json">${scriptJson(data)}</script>
<script>
${CLIENT}
</script>
</body>
</html>
`;
}

/** Draws the charts from the embedded JSON (runs in the browser). */
const CLIENT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var width = function (el) { return Math.max(320, Math.min(1000, el.clientWidth || 1000)); };
  var empty = function (el, text) { el.innerHTML = '<p class="empty"></p>'; el.firstChild.textContent = text; el.dataset.empty = 'true'; };
  var bars = uPlot.paths.bars({ size: [0.9, 100] });
  var points = data.timeline.points;
  var ms = data.timeline.widthMs;
  document.getElementById('bucket-width').textContent = ms < 1000 ? ms + ' ms' : (ms / 1000) + ' s';
  var xs = points.map(function (p) { return p.startMs / 1000; });

  var el = document.getElementById('chart-throughput');
  if (points.length === 0) empty(el, 'No rows.');
  else new uPlot({
    width: width(el), height: 240,
    series: [{}, { label: 'rows/s', stroke: '#1f77b4', fill: 'rgba(31,119,180,0.35)', paths: bars, points: { show: false } }],
    axes: [{}, { label: 'rows/s' }],
    scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.05]; } } },
  }, [xs, points.map(function (p) { return p.rowsPerSecond; })], el);

  el = document.getElementById('chart-quality');
  if (data.labelled === 0) empty(el, 'No labelled rows: accuracy and AUC cannot be computed.');
  else new uPlot({
    width: width(el), height: 260,
    series: [{},
      { label: 'cumulative accuracy', stroke: '#2ca02c', width: 2, spanGaps: true },
      { label: 'cumulative AUC', stroke: '#d62728', width: 2, spanGaps: true },
      { label: 'bucket accuracy', stroke: '#9467bd', dash: [4, 4], spanGaps: true }],
    axes: [{}, { label: 'fraction' }],
    scales: { y: { range: [0, 1] } },
  }, [xs,
      points.map(function (p) { return p.cumulativeAccuracy; }),
      points.map(function (p) { return p.cumulativeAuc; }),
      points.map(function (p) { return p.bucketAccuracy; })], el);

  el = document.getElementById('chart-scores');
  var h = data.scoreHistogram;
  if (data.rows === 0) empty(el, 'No rows.');
  else {
    var edges = h.negative.map(function (_, i) { return i * h.binWidth; });
    var close = function (a) { return a.concat([a[a.length - 1]]); };
    var stepped = uPlot.paths.stepped({ align: 1 });
    new uPlot({
      width: width(el), height: 240,
      scales: { x: { time: false, range: [0, 1] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.05]; } } },
      series: [{ label: 'score' },
        { label: 'label 0', stroke: '#1f77b4', fill: 'rgba(31,119,180,0.25)', paths: stepped, points: { show: false } },
        { label: 'label 1', stroke: '#d62728', fill: 'rgba(214,39,40,0.25)', paths: stepped, points: { show: false } },
        { label: 'unlabelled', stroke: '#7f7f7f', fill: 'rgba(127,127,127,0.2)', paths: stepped, points: { show: false } }],
      axes: [{ label: 'score' }, { label: 'rows' }],
    }, [edges.concat([1]), close(h.negative), close(h.positive), close(h.unlabelled)], el);
  }

  el = document.getElementById('chart-dead-letters');
  var reasons = data.deadLetters.byReason;
  if (reasons.length === 0) empty(el, data.deadLetters.files.length === 0 ? 'No dead letters (no dead-letter file).' : 'No dead letters.');
  else new uPlot({
    width: width(el), height: 220,
    scales: { x: { time: false, range: [-0.5, reasons.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
    series: [{ label: 'reason', value: function (u, i) { return i == null || reasons[i] == null ? '' : reasons[i][0]; } },
      { label: 'dead letters', stroke: '#ff7f0e', fill: 'rgba(255,127,14,0.5)', paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    axes: [{ splits: function () { return reasons.map(function (_, i) { return i; }); },
             values: function (u, splits) { return splits.map(function (i) { return reasons[i] ? reasons[i][0] : ''; }); } },
           { label: 'letters' }],
  }, [reasons.map(function (_, i) { return i; }), reasons.map(function (r) { return r[1]; })], el);

  document.body.dataset.rendered = 'true';
})();
`;
