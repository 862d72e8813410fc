/** The soak run as a markdown table, for the note and the terminal. */
import { verificationRows } from '../chaos/verify.js';
import type { SoakResult } from './harness.js';
import { MAX_GROWTH, type SeriesSummary } from './samples.js';

export function formatSoakResult(r: SoakResult, options: { messages: number; warmupMessages: number; partitions: number; sampleSeconds: number }): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const mib = (x: number | null): string => (x === null ? 'n/a' : `${(x / 2 ** 20).toFixed(1)} MiB`);
  const count = (x: number | null): string => (x === null ? 'n/a' : n(x));
  const growth = (x: number | null): string => (x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
  const row = (name: string, s: SeriesSummary, show: (x: number | null) => string): string =>
    `| ${name} | ${show(s.start)} | ${show(s.warmup)} | ${show(s.end)} | ${show(s.max)} | ${growth(s.growth)} |`;
  const { series, windowSamples } = r.summary;
  const v = r.verification;
  const lines = [
    `# textstream soak run`,
    '',
    `${n(options.messages)} messages, 1 worker, ${options.partitions} partitions, a sample every ${options.sampleSeconds} s ` +
      `(${r.samples.length} samples), warm-up ${n(options.warmupMessages)} messages ` +
      `(committed ${r.summary.warmupSeconds === null ? 'never' : `at ${r.summary.warmupSeconds.toFixed(0)} s`})`,
    '',
    '| series | start | end of warm-up | end | max | growth after warm-up |',
    '|---|---:|---:|---:|---:|---:|',
    row('RSS', series.rssBytes, mib),
    row('heap used', series.heapUsedBytes, mib),
    row('live tensors', series.liveTensors, count),
    '',
    `Growth = the last third of the samples after warm-up over the first third (${windowSamples} samples each) − 1: ` +
      'for heap used their lowest values (after a major collection: the live set), for RSS their means.',
    `PASS needs RSS and heap growth < ${MAX_GROWTH * 100} %, live tensors at the end = at the end of warm-up, exit 0 at SIGTERM, ` +
      'no missing and no duplicate rows.',
    '',
    '| outcome | value |',
    '|---|---:|',
    ...verificationRows(v),
    `| worker exit code at SIGTERM | ${r.exitCode} |`,
    `| worker start → all committed | ${r.processingSeconds.toFixed(0)} s |`,
    `| throughput | ${n(Math.round(r.messagesPerSecond))} messages/s |`,
    `| whole run (broker, verification) | ${r.seconds.toFixed(0)} s |`,
    `| **verdict** | **${r.failures.length === 0 ? 'PASS' : 'FAIL'}** |`,
    ...(r.failures.length === 0 ? [] : ['', ...r.failures.map((f) => `- ${f}`)]),
  ];
  return `${lines.join('\n')}\n`;
}
