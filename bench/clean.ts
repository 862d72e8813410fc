/**
 * The clean stage alone, single-threaded, on the bundled corpus: the loop of `npm run
 * bench`'s clean row (bench/stages.ts), runnable on its own so that two builds can be
 * timed alternately with the same command, and profiled (`node --cpu-prof`).
 *
 *   node dist/bench/clean.js [--impl path/to/clean.js] [--reps 3] [--rows N]
 *
 * Prints the median wall-clock rows/s of the repetitions and rows per CPU-second of the
 * process over all of them (GC threads included). `--impl` loads `cleanEmail` from another build's dist (e.g. the main checkout's), so
 * "before" and "after" run through this one script. Prints one JSON line to stdout.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { loadPipeline } from '../src/config/load.js';
import { loadCorpus } from './corpus.js';
import { parseOrExit, positiveInteger } from './options.js';
import { median, measureRate } from './stats.js';

const program = new Command('node dist/bench/clean.js')
  .description('cleanEmail rows/s over the bundled corpus, on this thread')
  .addOption(new Option('--impl <file>', 'a compiled clean.js to load cleanEmail from (default: this build)'))
  .option('--reps <n>', 'timed repetitions; each is at least one full pass', positiveInteger, 3)
  .option('--rows <n>', 'first rows of the corpus only', positiveInteger)
  .exitOverride();
parseOrExit(program);
const opts = program.opts<{ impl?: string; reps: number; rows?: number }>();

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const implFile = path.resolve(opts.impl ?? path.join(here, '../src/text/clean.js'));
const { cleanEmail } = (await import(pathToFileURL(implFile).href)) as {
  cleanEmail: (raw: string | Uint8Array) => Promise<string>;
};

const config = await loadPipeline(path.join(repo, 'pipelines', 'spamassassin.yaml'));
if (config.source.type !== 'parquet') throw new Error('pipelines/spamassassin.yaml must replay a parquet source');
const corpus = await loadCorpus({
  path: path.resolve(repo, config.source.path),
  seed: config.source.datasetSeed,
  rows: opts.rows ?? null,
  maxMessageBytes: config.decode.maxMessageBytes,
});
const texts = corpus.messages.map((m) => m.text);

// As bench/stages.ts: 200 untimed rows, then repetitions of at least 0.5 s of full passes.
for (const t of texts.slice(0, 200)) await cleanEmail(t);
const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
let cleaned = 0;
const runs = await measureRate(
  async () => {
    for (const t of texts) await cleanEmail(t);
    cleaned += texts.length;
    return texts.length;
  },
  { reps: opts.reps, seconds: 0.5, warmup: 0 },
);
// On a shared machine wall time includes waiting for a core; CPU time is this thread's own
// work, so rows per CPU-second is the per-core figure whatever the neighbours do.
const cpu = process.cpuUsage(cpuBefore);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const wallSeconds = (performance.now() - wallBefore) / 1000;
process.stdout.write(
  `${JSON.stringify({
    impl: path.relative(process.cwd(), implFile),
    rows: texts.length,
    rowsPerSecond: Math.round(median(runs)),
    runs: runs.map(Math.round),
    rowsPerCpuSecond: Math.round(cleaned / cpuSeconds),
    cpuShare: Number((cpuSeconds / wallSeconds).toFixed(2)),
  })}\n`,
);
