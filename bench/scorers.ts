/**
 * `npm run bench:scorers`: how scoring scales with scorer processes (issue 7). The bundled
 * corpus, `--repeat` times with distinct keys, is produced into a fresh 4-partition topic
 * on the local broker; one `textstream run --role train --exit-when-idle` leaves a model
 * snapshot on `<topic>.model`; then, for each N of --scorers and each LSTM thread setting,
 * N `--role score` processes start at once in a fresh consumer group and are timed until
 * the group has committed every message, then stopped with SIGTERM (each must exit 0), and
 * their Parquet output is checked to hold every offset exactly once.
 *
 *   bash scripts/kafka.sh start
 *   npm run bench:scorers -- [--scorers 1,2,4] [--reps 1] [--repeat 3] [--threads unset,1] [--json]
 *
 * Progress goes to stderr; the table (or, with --json, the result object) to stdout.
 * Figures are printed, never asserted; the exit code is 1 only when a run failed (a scorer
 * that did not start, did not exit 0, or output that is not exactly once).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import { parseOrExit, positiveInteger, positiveIntegers } from './options.js';
import { Kafka, logLevel } from 'kafkajs';
import { loadPipeline } from '../src/config/load.js';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';
import { deleteTopics, ensureBroker } from './kafka.js';
import { readMachine } from './machine.js';
import { reasonOf } from './result.js';
import { runScorers, trainOnce, type BenchTarget, type LstmThreads, type ScorerRun } from './scorers/run.js';
import { renderScorersTable, type ScorersBenchResult } from './scorers/table.js';
import { createTopic, produceCopies, readCorpus, type CorpusTopic } from './scorers/topic.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PARTITIONS = 4;
/**
 * With the corpus once (6 046 messages), 4 scorers spent 10–13 s of a 32–35 s run starting
 * (tfjs, the snapshot, joining the group through rebalances) and up to commitIntervalMs
 * (5 s) waiting for the last commit; three copies make the scoring itself most of the run.
 */
const DEFAULT_REPEAT = 3;

function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return n;
}

function threadSettings(value: string): LstmThreads[] {
  return [...new Set(value.split(',').map((v) => (v.trim() === 'unset' ? 'unset' : positiveInteger(v.trim()))))];
}

const program = new Command('npm run bench:scorers --')
  .description(
    `Throughput of 1, 2, 4… \`textstream run --role score\` processes sharing a ${PARTITIONS}-partition topic and one trained snapshot, ` +
      'on the local broker, with the LSTM on every core and on one thread per scorer.',
  )
  .option('--scorers <n[,n…]>', 'scorer counts to time (comma-separated; the first should be 1, the base of the speed-up)', positiveIntegers, [1, 2, 4])
  .option('--reps <n>', 'timed runs per configuration; the table prints the median', positiveInteger, 1)
  .option(
    '--repeat <k>',
    "produce the corpus k times (distinct keys), so that the timed phase outweighs the scorers' start-up (the trainer learns from the first copy only)",
    positiveInteger,
    DEFAULT_REPEAT,
  )
  .option(
    '--threads <t[,t…]>',
    'TEXTSTREAM_MODEL_LSTM_THREADS per scorer: "unset" (the fused LSTM uses every core) or a number (comma-separated: one series each)',
    threadSettings,
    ['unset', 1] as LstmThreads[],
  )
  .option('--brokers <host:port>', 'the broker (scripts/kafka.sh is started when it is the default and not running)', '127.0.0.1:9092')
  .option(
    '--max-buffered-messages <n>',
    "the scorers' source.maxBufferedMessages (default: the pipeline's): fetched messages waiting above which fetching pauses",
    positiveInteger,
  )
  .option('--quiet-wait <s>', 'before each run, wait up to this long for other processes to use fewer than --quiet-cores (a shared machine)', nonNegative, 60)
  .option('--quiet-cores <c>', 'see --quiet-wait', nonNegative, 0.3)
  .option('--timeout <s>', 'a run (or the trainer) not finished after this long fails', positiveInteger, 600)
  .option('--json', 'print the result object as JSON instead of the table', false)
  .addHelpText(
    'after',
    `
Examples:
  $ npm run bench:scorers                                     1, 2 and 4 scorers; threads unset and 1
  $ npm run bench:scorers -- --scorers 1,2 --threads unset --repeat 1
  $ npm run bench:scorers -- --reps 3 --json > scorers.json

Needs the local broker (bash scripts/kafka.sh start). With the defaults (18 138 messages)
the whole run took 5 minutes on 2 cores: the trainer 30 s, each scorer run 33–47 s plus
the output check; longer while other processes load the machine (--quiet-wait). The
topics it creates are deleted at the end.`,
  )
  .allowExcessArguments(false)
  .exitOverride();

parseOrExit(program);
const o = program.opts<{
  scorers: number[];
  reps: number;
  repeat: number;
  threads: LstmThreads[];
  brokers: string;
  maxBufferedMessages?: number;
  quietWait: number;
  quietCores: number;
  timeout: number;
  json: boolean;
}>();

const began = performance.now();
const log = (line: string): void => void process.stderr.write(`scorers [${((performance.now() - began) / 1000).toFixed(0)} s]: ${line}\n`);

const DEFAULT_BROKER = '127.0.0.1:9092';
const local = o.brokers === DEFAULT_BROKER;
const brokers = local ? [await ensureBroker(repo)] : [o.brokers];
const brokerPid = local ? await localBrokerPid() : null;
const pipelineFile = path.join(repo, 'pipelines', 'kafka-spamassassin.yaml');
const base = await loadPipeline(pipelineFile);
const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-scorers-'));
const topic = `bench-scorers-${Date.now()}-${process.pid}`;
const admin = new Kafka({ clientId: 'textstream-bench-scorers', brokers, logLevel: logLevel.NOTHING }).admin();
await admin.connect();
const created: string[] = [];
let failed = false;
try {
  log('building the corpus');
  const dataset = path.join(dir, 'spamassassin.parquet');
  await buildSpamAssassinDataset({ out: dataset, seed: 42 });
  const rows = await readCorpus(dataset);
  created.push(topic);
  await createTopic(brokers, topic, PARTITIONS);
  const jsonl = path.join(dir, 'messages.jsonl');
  const first = await produceCopies({ brokers, topic, rows, from: 0, to: 1, jsonl });
  log(`produced ${first.messages} messages to ${topic} in ${first.seconds.toFixed(1)} s`);

  // The trainer learns from one copy of the corpus (more would only make the model see the
  // same emails again); the other copies are produced once its snapshot is out.
  const snapshotTopic = `${topic}.model`;
  created.push(snapshotTopic);
  log('training once: one --role train --exit-when-idle worker over the corpus');
  const train = await trainOnce({ repo, brokers, topic, messages: first.messages, snapshotTopic, base, dir, brokerPid, maxBufferedMessages: null }, admin, 5, o.timeout * 1000);
  log(`trained ${train.rowsTrained ?? '?'} rows in ${train.seconds.toFixed(1)} s; ${train.snapshotMessages} chunk(s) on ${snapshotTopic}`);

  const more = await produceCopies({ brokers, topic, rows, from: 1, to: o.repeat, jsonl });
  if (more.messages > 0) log(`produced ${o.repeat - 1} more cop${o.repeat === 2 ? 'y' : 'ies'}: ${more.messages} messages in ${more.seconds.toFixed(1)} s`);
  const corpus: CorpusTopic = {
    topic,
    partitions: PARTITIONS,
    messages: first.messages + more.messages,
    repeat: o.repeat,
    produceSeconds: first.seconds + more.seconds,
  };
  const target: BenchTarget = { repo, brokers, topic, messages: corpus.messages, snapshotTopic, base, dir, brokerPid, maxBufferedMessages: o.maxBufferedMessages ?? null };

  const runs: ScorerRun[] = [];
  const failures: ScorersBenchResult['failures'] = [];
  // Thread settings alternate within each scorer count, so that a change in the machine's
  // other load does not fall on one series only.
  for (let rep = 0; rep < o.reps; rep++) {
    for (const scorers of o.scorers) {
      for (const threads of o.threads) {
        log(`${scorers} scorer(s), TEXTSTREAM_MODEL_LSTM_THREADS ${threads}, run ${rep + 1}/${o.reps}`);
        const name = `s${scorers}-t${threads}-r${rep}`;
        created.push(`${topic}.dlq.${name}`);
        try {
          const run = await runScorers(target, admin, { scorers, threads, rep, timeoutMs: o.timeout * 1000, quietWaitMs: o.quietWait * 1000, quietCores: o.quietCores, log });
          runs.push(run);
          log(`  ${run.messagesPerSecond.toFixed(0)} messages/s; ${describeOutput(run)}`);
          if (!cleanRun(run)) failed = true;
        } catch (err) {
          failures.push({ scorers, threads, rep, error: reasonOf(err) });
          log(`  FAILED: ${reasonOf(err)}`);
          failed = true;
        }
      }
    }
  }
  const result: ScorersBenchResult = {
    machine: readMachine(),
    pipeline: path.relative(process.cwd(), pipelineFile) || pipelineFile,
    brokers,
    maxBufferedMessages: o.maxBufferedMessages ?? (base.source.type === 'kafka' ? base.source.maxBufferedMessages : null),
    corpus,
    train,
    runs,
    failures,
  };
  process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : renderScorersTable(result));
} finally {
  await deleteTopics(admin, created);
  await admin.disconnect();
  await rm(dir, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;

/** Every scorer exited 0 and every offset is exactly one row or one dead letter. */
function cleanRun(run: ScorerRun): boolean {
  const v = run.verification;
  return (
    run.perScorer.every((s) => s.exitCode === 0) &&
    typeof v !== 'string' &&
    v.duplicateRows === 0 &&
    v.missing === 0 &&
    v.rowAndDeadLetter === 0 &&
    v.rows + v.deadLetters === v.produced
  );
}

function describeOutput(run: ScorerRun): string {
  const exits = run.perScorer.map((s) => s.exitCode ?? s.exitSignal).join(',');
  const v = run.verification;
  if (typeof v === 'string') return `exits ${exits}; ${v}`;
  return `exits ${exits}; ${v.rows} rows, ${v.deadLetters} dead letters, ${v.duplicateRows} duplicate(s), ${v.missing} missing of ${v.produced}`;
}

/** The pid scripts/kafka.sh reports for the local broker, to read its CPU time; null when it says none. */
async function localBrokerPid(): Promise<number | null> {
  try {
    // It prints the address on stdout and "kafka: running (pid N) on …" on stderr.
    const { stdout, stderr } = await promisify(execFile)('bash', ['scripts/kafka.sh', 'status'], { cwd: repo, timeout: 10_000 });
    const pid = /\(pid (\d+)\)/.exec(`${stderr}\n${stdout}`)?.[1];
    return pid === undefined ? null : Number(pid);
  } catch {
    return null;
  }
}
