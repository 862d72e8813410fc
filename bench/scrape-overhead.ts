/**
 * What scraping /metrics costs the pipeline: replays a fixed slice of the bundled corpus
 * (default 1 500 rows, wasm model) several times in one process, alternating runs without
 * scraping and runs while another loop GETs /metrics every second (as Prometheus would),
 * and prints rows/s for both and the relative cost. Alternating pairs (after a warm-up
 * run) keep JIT warm-up and machine drift out of the comparison; the spread between runs
 * of the same kind shows the noise floor. Because that floor (several % on 2 cores) is
 * far above the real cost, it also times the scrape's own work in-process
 * (`serialiseMsPerScrape`: collect + serialise every metric) and reports it as a share of
 * the scrape interval. `meanScrapeMs` is the HTTP round trip from a separate scraper
 * process (as Prometheus is), which mostly waits for the pipeline to yield the event loop.
 *
 *   npx tsc -p . && node dist/bench/scrape-overhead.js [--rows 1500] [--pairs 2] [--interval-ms 1000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { PipelineMetrics, Stages } from '../src/metrics/definitions.js';
import { loadPipeline } from '../src/config/load.js';
import { replay } from '../src/runtime/replay.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1500' },
    pairs: { type: 'string', default: '2' },
    'interval-ms': { type: 'string', default: '1000' },
  },
});
const rows = Number(values.rows);
const pairs = Number(values.pairs);
const intervalMs = Number(values['interval-ms']);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-scrape-bench-'));
const base = await loadPipeline(path.join(repo, 'pipelines', 'spamassassin.yaml'));
const config = {
  ...base,
  source: { ...base.source, path: path.join(repo, 'data', 'spamassassin.parquet') },
  model: { ...base.model, backend: 'wasm' as const, checkpoints: false },
  sink: { ...base.sink, dir: path.join(dir, 'out') },
  deadLetter: { ...base.deadLetter, path: path.join(dir, 'dead-letters.jsonl') },
  metrics: { ...base.metrics, host: '127.0.0.1', port: 0 },
};
const logger = pino({ level: 'warn' });

interface Run {
  scraped: boolean;
  rowsPerSecond: number;
  scrapes: number;
  meanScrapeMs: number;
}

/**
 * The scraper is another process, as Prometheus is: an in-process timer would not fire
 * while the model's synchronous work holds the event loop. It prints "<scrapes> <total ms>"
 * when told to stop.
 */
const SCRAPER = `
let n = 0, ms = 0, stop = false;
process.on('message', () => { stop = true; });
const url = process.argv[1], every = Number(process.argv[2]);
(async () => {
  while (!stop) {
    const t = performance.now();
    try { await (await fetch(url)).text(); n++; ms += performance.now() - t; } catch {}
    await new Promise((r) => setTimeout(r, Math.max(0, every - (performance.now() - t))));
  }
  process.send([n, ms], () => process.exit(0));
})();`;

async function run(scrape: boolean, limit: number): Promise<Run> {
  let scraper: ChildProcess | null = null;
  const summary = await replay(config, {
    limit,
    logger,
    signal: new AbortController().signal,
    onStart: (info) => {
      if (!scrape || info.metricsUrl === null) return;
      scraper = spawn(process.execPath, ['-e', SCRAPER, info.metricsUrl, String(intervalMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    },
  });
  let scrapes = 0;
  let scrapeMs = 0;
  const child = scraper as ChildProcess | null;
  if (child) {
    [scrapes, scrapeMs] = await new Promise<[number, number]>((resolve) => {
      child.once('message', (m) => resolve(m as [number, number]));
      child.send('stop');
    });
  }
  return { scraped: scrape, rowsPerSecond: summary.rowsIn / summary.seconds, scrapes, meanScrapeMs: scrapes ? scrapeMs / scrapes : 0 };
}

/**
 * CPU time of one scrape's work on the worker (collect + serialise every metric), measured
 * directly: the end-to-end comparison above has a noise floor of several percent, far
 * above a 1 s scrape's real cost. Populated like a 16-partition worker.
 */
async function serialiseMs(): Promise<number> {
  const registry = new Registry();
  registry.setDefaultLabels({ pipeline: 'bench' });
  const metrics = new PipelineMetrics(registry, () => ({
    backend: 'wasm', lstm: 'fused', version: 1000, accuracy: 0.9, auc: 0.95, logLoss: 0.3, trainLoss: 0.2,
    liveTensors: 20, meanScore: 0.3, positiveRate: 0.31, checkpointAgeSeconds: 12,
  }));
  metrics.readLagFrom(() => Array.from({ length: 16 }, (_, partition) => ({ topic: 'in', partition, messages: 10, seconds: 1.5 })));
  metrics.readDriftErrorRateFrom(() => 0.1);
  for (const stage of Stages) metrics.observeStage(stage, 100, 100, 0.01);
  for (let i = 0; i < 1000; i++) metrics.endToEndLatency.observe(i / 100);
  for (let i = 0; i < 50; i++) await registry.metrics();
  const n = 500;
  const start = performance.now();
  for (let i = 0; i < n; i++) await registry.metrics();
  return (performance.now() - start) / n;
}

try {
  const perScrapeMs = await serialiseMs();
  await run(false, Math.min(rows, 300)); // warm-up: JIT, wasm compile, dataset build
  const runs: Run[] = [];
  for (let i = 0; i < pairs; i++) {
    // Alternate which kind goes first, so a trend over time favours neither.
    const order = i % 2 === 0 ? [false, true] : [true, false];
    for (const scraped of order) {
      const r = await run(scraped, rows);
      runs.push(r);
      console.error(`${scraped ? 'scraped    ' : 'not scraped'}: ${r.rowsPerSecond.toFixed(1)} rows/s${scraped ? ` (${r.scrapes} scrapes, ${r.meanScrapeMs.toFixed(1)} ms each)` : ''}`);
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const without = runs.filter((r) => !r.scraped).map((r) => r.rowsPerSecond);
  const withScrape = runs.filter((r) => r.scraped).map((r) => r.rowsPerSecond);
  const spread = (xs: number[]): number => (Math.max(...xs) - Math.min(...xs)) / mean(xs);
  console.log(
    JSON.stringify(
      {
        rows,
        pairs,
        scrapeIntervalMs: intervalMs,
        rowsPerSecondWithoutScrape: Number(mean(without).toFixed(1)),
        rowsPerSecondWithScrape: Number(mean(withScrape).toFixed(1)),
        relativeCostPercent: Number((100 * (1 - mean(withScrape) / mean(without))).toFixed(2)),
        noiseSpreadPercent: Number((100 * Math.max(spread(without), spread(withScrape))).toFixed(2)),
        serialiseMsPerScrape: Number(perScrapeMs.toFixed(3)),
        serialiseCostPercentAt1s: Number(((100 * perScrapeMs) / intervalMs).toFixed(3)),
        meanScrapeMs: Number(mean(runs.filter((r) => r.scraped).map((r) => r.meanScrapeMs)).toFixed(2)),
        cores: os.availableParallelism(),
      },
      null,
      2,
    ),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
