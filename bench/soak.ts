/**
 * `npm run soak`: a long stream (1 000 000 messages by default) through one real worker on
 * a dedicated local broker, its RSS, heap and live tensors sampled from /metrics, then a
 * table of how they moved after warm-up. Exit 1 when memory grew, tensors leaked, the
 * worker did not drain cleanly, or a row is missing or duplicated.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { parseOrExit, positiveInteger } from './options.js';
import { runSoak, type SoakResult } from './soak/harness.js';
import { formatSoakResult } from './soak/report.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const program = new Command('npm run soak --')
  .description('Run a long stream through one real worker and sample its memory; check nothing grows after warm-up and every row is written exactly once.')
  .option('--messages <n>', 'messages to produce', positiveInteger, 1_000_000)
  .option('--warmup <n>', 'growth is measured after this many messages are committed (default: 10 % of --messages)', positiveInteger)
  .option('--sample-seconds <n>', "how often the worker's /metrics is sampled", positiveInteger, 10)
  .option('--rate <n>', 'messages produced per second (default: as fast as the broker takes them)', positiveInteger)
  .option('--partitions <n>', 'topic partitions', positiveInteger, 4)
  .option('--poison-every <n>', 'one malformed message in this many', positiveInteger, 500)
  .option('--checkpoint-every <rows>', "the worker's model.checkpointEveryRows", positiveInteger, 50_000)
  .option('--seed <n>', 'seed of the stream', positiveInteger, 42)
  // Not 9193: scripts/kafka.sh puts a broker's controller on the next port, and 9193 is
  // the chaos broker's (9192). 9194 and 9195 are nobody else's.
  .option('--kafka-port <port>', 'port of the dedicated broker (scripts/kafka.sh; its controller takes the next one)', positiveInteger, 9194)
  .option('--timeout <minutes>', 'fail when not every message is committed after this long', positiveInteger, 120)
  .option('--keep', 'keep the run directory (samples.csv, worker logs, output, checkpoints) of a passing run too', false)
  .addOption(new Option('--json', 'print the result as JSON instead of the table').default(false))
  .addHelpText(
    'after',
    `
Examples:
  $ npm run soak                                      1 000 000 messages, a sample every 10 s
  $ npm run soak -- --messages 200000 --sample-seconds 5 --rate 3000 --keep

Growth = mean of the samples in the last minute / mean of the samples in the first minute
after warm-up − 1; PASS needs it under 10 % for RSS and heap, and as many live tensors at
the end as at the end of warm-up. A failed run keeps its directory without --keep.
Needs the built CLI (npm run soak builds it) and Java + Maven for scripts/kafka.sh.`,
  )
  .exitOverride();

parseOrExit(program);
const o = program.opts<{
  messages: number;
  warmup?: number;
  sampleSeconds: number;
  rate?: number;
  partitions: number;
  poisonEvery: number;
  checkpointEvery: number;
  seed: number;
  kafkaPort: number;
  timeout: number;
  keep: boolean;
  json: boolean;
}>();
const warmupMessages = o.warmup ?? Math.max(1, Math.round(o.messages / 10));
if (warmupMessages >= o.messages) {
  process.stderr.write(`soak: --warmup (${warmupMessages}) must be below --messages (${o.messages})\n`);
  process.exit(2);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-soak-'));
const log = (line: string): void => void process.stderr.write(`soak: ${line}\n`);
log(`run directory ${dir}`);
let result: SoakResult;
try {
  result = await runSoak({
    repo,
    dir,
    messages: o.messages,
    warmupMessages,
    sampleSeconds: o.sampleSeconds,
    partitions: o.partitions,
    ratePerSecond: o.rate ?? null,
    poisonEvery: o.poisonEvery,
    checkpointEveryRows: o.checkpointEvery,
    seed: o.seed,
    kafkaPort: o.kafkaPort,
    timeoutMs: o.timeout * 60_000,
    log,
  });
} catch (err) {
  const stderr = (err as { stderr?: string }).stderr;
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  log(`failed: ${stderr ? stderr.trim() : err instanceof Error ? `${err.message}${cause}` : String(err)}`);
  // A run that failed half an hour in is worth its logs and samples.
  log(`kept the run directory ${dir}`);
  process.exit(1);
}
const passed = result.failures.length === 0;
if (o.keep || !passed) log(`kept the run directory ${dir} (samples: ${result.csv})`);
else await rm(dir, { recursive: true, force: true });
process.stdout.write(o.json ? `${JSON.stringify({ ...result, dir, kept: o.keep || !passed })}\n` : formatSoakResult(result, { ...o, warmupMessages }));
if (!passed) process.exitCode = 1;
