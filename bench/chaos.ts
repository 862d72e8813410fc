/**
 * `npm run chaos`: a long stream through several workers on a dedicated local broker with
 * faults injected, then a table of what went in and what came out. Exit 1 when any row
 * is duplicated or missing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseOrExit, positiveInteger } from './options.js';
import { FaultKinds, type FaultKind } from './chaos/faults.js';
import { runChaos, type ChaosResult } from './chaos/harness.js';
import { verificationRows } from './chaos/verify.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function faultList(value: string): FaultKind[] {
  const kinds = value.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !(FaultKinds as readonly string[]).includes(k));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown fault(s) ${unknown.join(', ')}; known: ${FaultKinds.join(', ')}`);
  return kinds as FaultKind[];
}

const program = new Command('npm run chaos --')
  .description('Run a stream through real workers while injecting faults; check every row is written exactly once.')
  .option('--messages <n>', 'messages to produce', positiveInteger, 200_000)
  .option('--workers <n>', 'worker processes', positiveInteger, 3)
  .option('--partitions <n>', 'topic partitions', positiveInteger, 6)
  .option('--faults <n>', 'faults to inject, spread over the run', positiveInteger, 24)
  .option('--kinds <list>', `comma-separated fault kinds (default all: ${FaultKinds.join(', ')})`, faultList, [...FaultKinds])
  .option('--rate <n>', 'messages produced per second while the workers run', positiveInteger, 2000)
  .option('--poison-every <n>', 'one malformed message in this many', positiveInteger, 500)
  .option('--checkpoint-every <rows>', "the workers' model.checkpointEveryRows", positiveInteger, 2000)
  .option('--seed <n>', 'seed of the stream and the fault schedule', positiveInteger, 42)
  .option('--kafka-port <port>', 'port of the dedicated broker (scripts/kafka.sh)', positiveInteger, 9192)
  .option('--timeout <minutes>', 'fail when the run is not complete after this long', positiveInteger, 120)
  .option('--keep', 'keep the run directory (output, checkpoints, worker logs)', false)
  .addOption(new Option('--json', 'print the result as JSON instead of the table').default(false))
  .addHelpText(
    'after',
    `
Examples:
  $ npm run chaos                                     200 000 messages, 3 workers, 24 faults
  $ npm run chaos -- --messages 20000 --faults 6 --kinds kill,broker-restart

Needs the built CLI (npm run chaos builds it) and Java + Maven for scripts/kafka.sh.`,
  )
  .exitOverride();

parseOrExit(program);
const o = program.opts<{
  messages: number;
  workers: number;
  partitions: number;
  faults: number;
  kinds: FaultKind[];
  rate: number;
  poisonEvery: number;
  checkpointEvery: number;
  seed: number;
  kafkaPort: number;
  timeout: number;
  keep: boolean;
  json: boolean;
}>();

const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-chaos-'));
const log = (line: string): void => void process.stderr.write(`chaos: ${line}\n`);
log(`run directory ${dir}`);
let result: ChaosResult;
try {
  result = await runChaos({
    repo,
    dir,
    messages: o.messages,
    workers: o.workers,
    partitions: o.partitions,
    faults: o.faults,
    kinds: o.kinds,
    ratePerSecond: o.rate,
    poisonEvery: o.poisonEvery,
    checkpointEveryRows: o.checkpointEvery,
    seed: o.seed,
    kafkaPort: o.kafkaPort,
    timeoutMs: o.timeout * 60_000,
    log,
  });
} catch (err) {
  const stderr = (err as { stderr?: string }).stderr;
  log(`failed: ${stderr ? stderr.trim() : err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
} finally {
  if (!o.keep) await rm(dir, { recursive: true, force: true });
}
process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : formatChaosResult(result, o));
const v = result.verification;
if (v.duplicateRows > 0 || v.missing > 0 || v.rowAndDeadLetter > 0) process.exitCode = 1;

function formatChaosResult(r: ChaosResult, options: { workers: number; partitions: number; seed: number }): string {
  const v = r.verification;
  const n = (x: number): string => x.toLocaleString('en-US');
  const lines = [
    `# textstream chaos run`,
    '',
    `${options.workers} workers, ${options.partitions} partitions, seed ${options.seed}, ${r.seconds.toFixed(0)} s`,
    '',
    '| fault | injected |',
    '|---|---:|',
    ...Object.entries(r.injected).map(([kind, times]) => `| ${kind} | ${times} |`),
    `| **total** | **${Object.values(r.injected).reduce((a, b) => a + b, 0)}** |`,
    '',
    '| outcome | count |',
    '|---|---:|',
    ...verificationRows(v),
    `| duplicate dead letters (at-least-once topic) | ${n(v.duplicateDeadLetters)} |`,
    `| model checkpoints restored at start | ${n(r.checkpointsRestored)} |`,
    `| damaged checkpoints quarantined | ${n(r.checkpointsQuarantined)} |`,
    `| training steps rejected (NaN loss) | ${n(r.updatesRejected)} |`,
    `| starts that removed temporary files | ${n(r.tempFilesRemoved)} |`,
    `| worker exits nobody asked for | ${n(r.unexpectedExits)} |`,
    `| final SIGTERM exit codes | ${r.finalExitCodes.join(', ')} |`,
  ];
  return `${lines.join('\n')}\n`;
}
