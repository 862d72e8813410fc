/**
 * Every error path of the CLI, one table: the exit code (2 usage or configuration, 1 a
 * failure of the run, see src/cli/exit-codes.ts), a message on stderr that names the
 * problem (the option, the field, the file, the broker), and never a JS stack trace or an
 * ANSI escape when stderr is a pipe.
 *
 * Paths already checked with their exit code and message elsewhere are not repeated:
 *   test/cli/main.test.ts       invalid field value (replay), missing pipeline file, --limit not a number
 *   test/cli/config.test.ts     wrong type, unknown field, bad or misspelt TEXTSTREAM_ variables
 *                               (config show and replay), --readme missing or without markers,
 *                               unknown config command, config show without a file
 *   test/cli/model.test.ts      model export: checkpoint dir missing or holding no checkpoint, --format onnx
 *   test/cli/produce.test.ts    --format text on JSONL, a .csv file, topic missing, no broker listening
 *   test/cli/tokenizer.test.ts  tokenizer fit: no --out, bad --limit, Kafka pipeline without --input
 *   test/cli/inspect.test.ts    inspect: folder missing (2), gaps/overlaps/unreadable files (1)
 *   test/report/report-e2e.test.ts  report: folder missing (2)
 * (test/config/*.test.ts check the same messages at the library level, without exit codes.)
 */
import { after, before, suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { runCli, tempDir, type CliRun } from '../helpers/cli.js';
import { deleteTopic, ensureBroker, uniqueName } from '../helpers/kafka.js';
import { saveSmallCheckpoint } from '../model/helpers.js';

/** Longer than any case should take: a CLI that has not answered by then is a failure. */
const CASE_TIMEOUT_MS = 15_000;
/** Every case is a Node process of about a second of CPU: more at once than cores only contend. */
const CONCURRENCY = Math.max(2, Math.min(8, os.availableParallelism()));

const run = (args: readonly string[], cwd: string): Promise<CliRun> => runCli(args, cwd, {}, { timeoutMs: CASE_TIMEOUT_MS });

/** What every error must look like: its code, its message, no stack frame, no colour. */
function assertError(result: CliRun, code: 1 | 2, message: RegExp): void {
  const shown = `exit ${result.code} after ${result.ms} ms\n--- stderr\n${result.stderr}--- stdout\n${result.stdout}`;
  assert.notEqual(result.code, null, `no exit within ${CASE_TIMEOUT_MS} ms\n${shown}`);
  assert.equal(result.code, code, shown);
  assert.match(result.stderr, message, shown);
  // Logs are JSON lines, so a kafkajs stack inside a log field never starts a line.
  assert.doesNotMatch(result.stderr, /^\s+at \S/m, `a stack trace on stderr\n${shown}`);
  assert.ok(!result.stderr.includes('\x1b[') && !result.stdout.includes('\x1b['), `an ANSI escape on a pipe\n${shown}`);
}

/** Absolute paths of the inputs the cases point at, made once. */
interface Fixtures {
  root: string;
  /** A small Parquet file with id, text and label. */
  mail: string;
  /** A Parquet file with id, body and label: no text column. */
  noText: string;
  /** Text in a .parquet file. */
  notParquet: string;
  /** A regular file, to stand where a directory is needed. */
  aFile: string;
  /** An empty directory. */
  emptyDir: string;
  /** A checkpoint root (LATEST + one checkpoint) written by the learner. */
  checkpoint: string;
  /** A copy of it whose weights.bin has one byte changed. */
  damagedCheckpoint: string;
  /** A directory whose manifest.json is JSON but not a checkpoint manifest. */
  badManifest: string;
  /** A checkpoint root whose LATEST names a directory that does not exist. */
  danglingLatest: string;
  /** An output folder holding a .parquet file that is not Parquet. */
  corruptOutput: string;
  /** The output folder of a real replay of `mail`. */
  output: string;
  /** A copy of `output` with one more, damaged, file in its partition folder. */
  mixedOutput: string;
  /** A TCP port something already listens on. */
  busyPort: number;
}

const fx = {} as Fixtures;
let busy: Server | null = null;

async function writeParquet(file: string, textColumn: string): Promise<void> {
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, [textColumn]: { type: 'UTF8' }, label: { type: 'INT32', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 8 },
  );
  const texts = ['free money now', 'meeting at noon', 'win a prize today', 'lunch tomorrow?'];
  for (const [i, text] of texts.entries()) await writer.append({ id: `m${i}`, [textColumn]: text, label: i % 2 === 0 ? 1 : 0 });
  await writer.finish(file);
}

before(async () => {
  fx.root = await mkdtemp(path.join(os.tmpdir(), 'textstream-errors-'));
  const at = (name: string): string => path.join(fx.root, name);
  fx.mail = at('mail.parquet');
  fx.noText = at('no-text.parquet');
  fx.notParquet = at('notes.parquet');
  fx.aFile = at('a-file');
  fx.emptyDir = at('empty');
  fx.checkpoint = at('checkpoints');
  fx.damagedCheckpoint = at('damaged');
  fx.badManifest = at('bad-manifest');
  fx.danglingLatest = at('dangling');
  fx.corruptOutput = at('corrupt-out');
  fx.output = at('out');
  fx.mixedOutput = at('mixed-out');
  await writeParquet(fx.mail, 'text');
  await writeParquet(fx.noText, 'body');
  await writeFile(fx.notParquet, 'id,text\n1,hello, this is CSV and not Parquet\n');
  await writeFile(fx.aFile, 'a file, not a directory\n');
  await mkdir(fx.emptyDir);
  await mkdir(fx.badManifest);
  await writeFile(path.join(fx.badManifest, 'manifest.json'), '{"format":"something else"}\n');
  await mkdir(fx.danglingLatest);
  await writeFile(path.join(fx.danglingLatest, 'LATEST'), 'ckpt-000000000001-1767225600000\n');
  const partition = path.join(fx.corruptOutput, 'p', 'input=mail', 'partition-0');
  await mkdir(partition, { recursive: true });
  await writeFile(path.join(partition, '00000000000000000000-00000000000000000003.parquet'), 'not Parquet at all, just text\n');

  await writeFile(at('replay.yaml'), parquetPipeline().replace('dir: out', `dir: ${fx.output}`));
  const replayed = await run(['replay', at('replay.yaml'), '--json'], fx.root);
  assert.equal(replayed.code, 0, replayed.stderr);
  await cp(fx.output, fx.mixedOutput, { recursive: true });
  const partitionDir = path.join(fx.mixedOutput, 'p', 'input=mail', 'partition-0');
  await writeFile(path.join(partitionDir, '00000000000000000099-00000000000000000099.parquet'), 'damaged\n');

  await saveSmallCheckpoint(fx.checkpoint);
  await cp(fx.checkpoint, fx.damagedCheckpoint, { recursive: true });
  const latest = (await readFile(path.join(fx.damagedCheckpoint, 'LATEST'), 'utf8')).trim();
  const weights = path.join(fx.damagedCheckpoint, latest, 'weights.bin');
  const bytes = await readFile(weights);
  bytes[0] = bytes[0]! ^ 0xff;
  await writeFile(weights, bytes);

  busy = createServer();
  await new Promise<void>((resolve) => busy!.listen(0, '127.0.0.1', resolve));
  fx.busyPort = (busy.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => (busy ? busy.close(resolve) : resolve(undefined)));
  await rm(fx.root, { recursive: true, force: true });
});

/** A Parquet pipeline over fx.mail writing under the working directory, plus `extra` YAML. */
function parquetPipeline(extra = '', input = fx.mail): string {
  return `name: p\nsource:\n  type: parquet\n  path: ${input}\nsink:\n  dir: out\nmetrics:\n  enabled: false\n${extra}`;
}

function kafkaPipeline(brokers: string, topic: string): string {
  return `name: k\nsource:\n  type: kafka\n  brokers: ["${brokers}"]\n  topic: ${topic}\n  groupId: ${topic}-group\nsink:\n  dir: out\nmetrics:\n  enabled: false\n`;
}

interface ErrorCase {
  /** What is wrong, as the test name says it. */
  what: string;
  args: () => string[];
  /** Files to write into the case's own working directory first (name → text; null: a directory). */
  files?: () => Record<string, string | null>;
  code: 1 | 2;
  stderr: RegExp;
  /** A known gap, not fixed yet: what to change, where. */
}

const pipelineFile = (extra = '', input?: string): Record<string, string> => ({ 'p.yaml': parquetPipeline(extra, input) });

const cases: ErrorCase[] = [
  // Usage: commander's parsing, exit 2.
  { what: 'an unknown command', args: () => ['frobnicate'], code: 2, stderr: /^error: unknown command 'frobnicate'$/m },
  { what: 'an unknown option of a command', args: () => ['replay', 'p.yaml', '--bogus'], code: 2, stderr: /^error: unknown option '--bogus'$/m },
  { what: 'a missing argument', args: () => ['replay'], code: 2, stderr: /^error: missing required argument 'pipeline\.yaml'$/m },
  {
    what: 'one argument too many',
    args: () => ['replay', 'a.yaml', 'b.yaml'],
    code: 2,
    stderr: /^error: too many arguments for 'replay'\. Expected 1 argument but got 2\.$/m,
  },
  { what: 'an option without its value', args: () => ['replay', 'p.yaml', '--limit'], code: 2, stderr: /^error: option '--limit <n>' argument missing$/m },
  {
    what: 'an unknown --log-level',
    args: () => ['--log-level', 'loud', 'replay', 'p.yaml'],
    code: 2,
    stderr: /^error: option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are trace, debug, info, warn, error, fatal, silent\.$/m,
  },
  {
    what: 'no command at all',
    args: () => [],
    code: 2,
    stderr: /^error: missing command: 'textstream' needs one of dataset, config, model, replay, produce, run, report, inspect, tokenizer$/m,
  },
  {
    what: 'a command group without its command',
    args: () => ['tokenizer'],
    code: 2,
    stderr: /Usage: textstream tokenizer[\s\S]*^error: missing command: 'textstream tokenizer' needs one of fit$/m,
  },
  { what: 'help for an unknown command', args: () => ['help', 'frobnicate'], code: 2, stderr: /^error: unknown command 'frobnicate'$/m },
  {
    what: 'dataset without --out',
    args: () => ['dataset', 'spamassassin'],
    code: 2,
    stderr: /^error: required option '--out <file\.parquet>' not specified$/m,
  },
  {
    what: 'a --seed that is not a number',
    args: () => ['dataset', 'spamassassin', '--out', 'x.parquet', '--seed', 'abc'],
    code: 2,
    stderr: /^error: option '--seed <n>' argument 'abc' is invalid\. expected a whole number ≥ 0, got "abc"$/m,
  },
  {
    what: 'run with --exit-when-idle 0',
    args: () => ['run', 'p.yaml', '--exit-when-idle', '0'],
    code: 2,
    stderr: /^error: option '--exit-when-idle <seconds>' argument '0' is invalid\./m,
  },
  {
    what: 'run with an unknown --inject-fault',
    args: () => ['run', 'p.yaml', '--inject-fault', 'kill-now'],
    code: 2,
    stderr: /^error: option '--inject-fault <fault>' argument 'kill-now' is invalid\. expected kill-after-publish\[:N\] or nan-loss\[:N\]/m,
  },
  { what: 'produce without --topic', args: () => ['produce', 'x.parquet'], code: 2, stderr: /^error: required option '--topic <topic>' not specified$/m },
  {
    what: 'produce with an unknown --format',
    args: () => ['produce', '--topic', 't', '--format', 'xml', 'x.parquet'],
    code: 2,
    stderr: /^error: option '--format <format>' argument 'xml' is invalid\. Allowed choices are json, text\.$/m,
  },
  {
    what: 'produce with --batch-size 0',
    args: () => ['produce', '--topic', 't', '--batch-size', '0', 'x.parquet'],
    code: 2,
    stderr: /^error: option '--batch-size <n>' argument '0' is invalid\. expected a whole number ≥ 1, got "0"$/m,
  },
  {
    what: 'produce with an unknown --partitions-by',
    args: () => ['produce', '--topic', 't', '--partitions-by', 'zz', 'x.parquet'],
    code: 2,
    stderr: /^error: option '--partitions-by <how>' argument 'zz' is invalid\. Allowed choices are key, round-robin\.$/m,
  },
  { what: 'produce with an empty --topic', args: () => ['produce', '--topic', '', fx.mail], code: 2, stderr: /^textstream: --topic: must not be empty$/m },
  {
    what: 'produce with no broker in --brokers',
    args: () => ['produce', '--topic', 't', '--brokers', ',', fx.mail],
    code: 2,
    stderr: /^textstream: --brokers: name at least one broker \(host:port\)$/m,
  },
  { what: 'model export without --out', args: () => ['model', 'export', fx.checkpoint], code: 2, stderr: /^error: required option '--out <dir>' not specified$/m },

  // Configuration: the pipeline file and what it points at, exit 2.
  {
    what: 'a pipeline file that is not YAML',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ 'p.yaml': 'name: p\nsource: [unclosed\n' }),
    code: 2,
    stderr: /^textstream: p\.yaml: not valid YAML at line \d+, column \d+: Flow sequence in block collection must be sufficiently indented and end with a \]$/m,
  },
  {
    what: 'an empty pipeline file',
    args: () => ['config', 'show', 'p.yaml'],
    files: () => ({ 'p.yaml': '# nothing yet\n' }),
    code: 2,
    stderr: /^textstream: p\.yaml: the file is empty; a pipeline needs at least name and source$/m,
  },
  {
    what: 'a pipeline without its source',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ 'p.yaml': 'name: p\n' }),
    code: 2,
    stderr: /^textstream: p\.yaml: source: required field is missing \(expected object\)$/m,
  },
  {
    what: 'run on a Parquet pipeline',
    args: () => ['run', 'p.yaml'],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: source\.type: run reads a kafka source, this pipeline has "parquet" \(use `textstream replay`\)$/m,
  },
  {
    what: 'replay on a Kafka pipeline',
    args: () => ['replay', 'k.yaml'],
    files: () => ({ 'k.yaml': kafkaPipeline('127.0.0.1:1', 'emails') }),
    code: 2,
    stderr: /^textstream: source\.type: replay reads a parquet source, this pipeline has "kafka" \(use `textstream run`\)$/m,
  },
  {
    what: 'replay of a source.path that does not exist',
    args: () => ['replay', 'p.yaml'],
    files: () => pipelineFile('', 'missing.parquet'),
    code: 2,
    stderr: /^textstream: source\.path: file not found: missing\.parquet$/m,
  },
  {
    what: 'replay of an --input that does not exist',
    args: () => ['replay', 'p.yaml', '--input', 'missing.parquet'],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --input: file not found: missing\.parquet$/m,
  },
  {
    what: 'replay --resume with model.checkpoints false',
    args: () => ['replay', 'p.yaml', '--resume'],
    files: () => pipelineFile('model:\n  checkpoints: false\n'),
    code: 2,
    stderr: /^textstream: model\.checkpoints: is false: there is no checkpoint to resume from$/m,
  },
  {
    what: 'replay --resume of an input no run has checkpointed',
    args: () => ['replay', 'p.yaml', '--resume'],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --resume: no checkpoint in out\/p\/_checkpoints\/mail to resume from \(a run of this input without --resume saves one\)$/m,
  },
  {
    what: 'replay --resume from a folder without checkpoints',
    args: () => ['replay', 'p.yaml', '--resume'],
    files: () => pipelineFile(`model:\n  checkpointDir: ${fx.emptyDir}\n`),
    code: 2,
    stderr: /^textstream: --resume: no checkpoint in .*empty\/mail to resume from/m,
  },
  {
    what: 'replay --resume-from a folder without checkpoints',
    args: () => ['replay', 'p.yaml', '--resume-from', fx.emptyDir],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --resume-from: \S*empty holds no checkpoint/m,
  },
  {
    what: 'a tokenizer.path that does not exist',
    args: () => ['replay', 'p.yaml'],
    files: () => pipelineFile('tokenizer:\n  path: missing-tokenizer.json\n'),
    code: 2,
    stderr: /^textstream: tokenizer\.path: cannot read missing-tokenizer\.json/m,
  },
  {
    what: 'a tokenizer.path that is not a tokenizer',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ ...pipelineFile('tokenizer:\n  path: tokenizer.json\n'), 'tokenizer.json': '{"vocabulary": []}\n' }),
    code: 2,
    stderr: /^textstream: tokenizer\.path: tokenizer\.json: .*format must be "textstream-tokenizer"/m,
  },
  {
    what: 'a model.initialModel that does not exist',
    args: () => ['replay', 'p.yaml'],
    files: () => pipelineFile('model:\n  initialModel: missing/model.json\n'),
    code: 2,
    stderr: /^textstream: model\.initialModel: missing\/model\.json: cannot read a model\.json \(ENOENT/m,
  },
  {
    what: 'tokenizer fit of a source.path that does not exist',
    args: () => ['tokenizer', 'fit', 'p.yaml', '--out', 'tokenizer.json'],
    files: () => ({ 'p.yaml': 'name: p\nsource:\n  type: parquet\n  path: data/mail.parquet\n  dataset: spamassassin\n' }),
    code: 2,
    stderr: /^textstream: source\.path: file not found: data\/mail\.parquet; build it first: textstream dataset spamassassin --out data\/mail\.parquet$/m,
  },
  {
    what: 'tokenizer fit of an --input that does not exist',
    args: () => ['tokenizer', 'fit', 'p.yaml', '--out', 'tokenizer.json', '--input', 'missing.parquet'],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --input: file not found: missing\.parquet$/m,
  },
  {
    what: 'produce of a file that does not exist',
    args: () => ['produce', '--topic', 't', '--brokers', '127.0.0.1:1', 'missing.parquet'],
    code: 2,
    stderr: /^textstream: <file>: file not found: missing\.parquet$/m,
  },
  {
    what: 'produce of a directory',
    args: () => ['produce', '--topic', 't', '--brokers', '127.0.0.1:1', 'lines.jsonl'],
    files: () => ({ 'lines.jsonl': null }),
    code: 2,
    stderr: /^textstream: <file>: lines\.jsonl is not a file$/m,
  },
  {
    what: 'model export of a file instead of a checkpoint dir',
    args: () => ['model', 'export', fx.aFile, '--out', 'keras'],
    code: 2,
    stderr: /^textstream: <checkpoint dir>: .*a-file is not a directory$/m,
  },
  { what: 'inspect of a file instead of a folder', args: () => ['inspect', fx.aFile], code: 2, stderr: /^textstream: output dir: .*a-file is not a directory$/m },
  { what: 'report of a file instead of a folder', args: () => ['report', fx.aFile], code: 2, stderr: /^textstream: output dir: .*a-file is not a directory$/m },
  {
    what: 'inspect of a folder without output files',
    args: () => ['inspect', fx.emptyDir],
    code: 2,
    stderr: /^textstream: output dir: no Parquet output files under .*empty; give the run's sink\.dir, or one pipeline's folder in it$/m,
  },
  {
    what: 'report of a folder without output files',
    args: () => ['report', fx.emptyDir, '--out', 'r.html'],
    code: 2,
    stderr: /^textstream: output dir: no Parquet output files under .*empty; give the run's sink\.dir, or one pipeline's folder in it$/m,
  },
  {
    what: 'report with a --dead-letters file that does not exist',
    args: () => ['report', fx.emptyDir, '--out', 'r.html', '--dead-letters', 'missing.jsonl'],
    code: 2,
    stderr: /^textstream: --dead-letters: file not found: missing\.jsonl$/m,
  },
  {
    what: 'replay of an --input that is not Parquet',
    args: () => ['replay', 'p.yaml', '--input', fx.notParquet],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --input: .*notes\.parquet is not a Parquet file \(it does not start with PAR1\)$/m,
  },
  {
    what: 'replay of an --input that is a directory',
    args: () => ['replay', 'p.yaml', '--input', fx.emptyDir],
    files: () => pipelineFile(),
    code: 2,
    stderr: /^textstream: --input: .*empty is a directory, not a Parquet file$/m,
  },
  {
    what: 'replay of an --input without the text column',
    args: () => ['replay', 'p.yaml', '--input', fx.noText],
    files: () => pipelineFile(),
    code: 2,
    stderr:
      /^textstream: source\.columns\.text: column "text" not found in .*no-text\.parquet; its columns are: "id", "body", "label"; set source\.columns\.text to the column that holds the text$/m,
  },
  {
    what: 'a source.columns.label the file does not have',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ 'p.yaml': parquetPipeline().replace(`path: ${fx.mail}`, `path: ${fx.mail}\n  columns:\n    label: tag`) }),
    code: 2,
    stderr: /^textstream: source\.columns\.label: column "tag" not found in .*mail\.parquet; .*or to null when the data has no labels$/m,
  },
  {
    what: 'dataset to an --out that is a directory',
    args: () => ['dataset', 'spamassassin', '--out', fx.emptyDir],
    code: 2,
    stderr: /^textstream: --out: .*empty is a directory; give the file to write, e\.g\. .*empty\/spamassassin\.parquet$/m,
  },
  {
    what: 'produce with a broker that is not host:port',
    args: () => ['produce', '--topic', 't', '--brokers', 'notaport', fx.mail],
    code: 2,
    stderr: /^textstream: --brokers: "notaport" is not host:port \(a port 1–65535\), e\.g\. 127\.0\.0\.1:9092$/m,
  },
  {
    what: 'a sink.dir that is a file',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ 'p.yaml': parquetPipeline().replace('dir: out', `dir: ${fx.aFile}`) }),
    code: 2,
    stderr: /^textstream: sink\.dir: .*a-file/m,
  },
  {
    what: 'a metrics.port already in use',
    args: () => ['replay', 'p.yaml'],
    files: () => ({ 'p.yaml': parquetPipeline().replace('enabled: false', `host: 127.0.0.1\n  port: ${fx.busyPort}`) }),
    code: 2,
    stderr: /^textstream: metrics\.port: 127\.0\.0\.1:\d+ is already in use/m,
  },

  // Inputs that exist but cannot be used, and outputs that cannot be written: exit 1.
  {
    what: 'produce of a file that is not Parquet',
    args: () => ['produce', '--topic', 't', '--brokers', '127.0.0.1:1', fx.notParquet],
    code: 1,
    stderr: /^textstream: .*notes\.parquet is not a Parquet file/m,
  },
  {
    what: 'model export of a manifest that is not a checkpoint’s',
    args: () => ['model', 'export', fx.badManifest, '--out', 'keras'],
    code: 1,
    stderr: /^textstream: checkpoint .*bad-manifest is invalid: manifest\.json is not a textstream-checkpoint manifest$/m,
  },
  {
    what: 'model export of a root whose LATEST names no checkpoint',
    args: () => ['model', 'export', fx.danglingLatest, '--out', 'keras'],
    code: 1,
    stderr: /^textstream: checkpoint .*dangling\/ckpt-000000000001-1767225600000 is invalid: manifest\.json is missing$/m,
  },
  {
    what: 'model export of a checkpoint with damaged weights',
    args: () => ['model', 'export', fx.damagedCheckpoint, '--out', 'keras'],
    code: 1,
    stderr: /^textstream: checkpoint .*damaged\/ckpt-[\d-]+ is damaged: weights\.bin does not match its SHA-256 in the manifest$/m,
  },
  {
    what: 'model export to an --out below a file',
    args: () => ['model', 'export', fx.checkpoint, '--out', path.join(fx.aFile, 'keras')],
    code: 1,
    stderr: /^textstream: cannot create the export directory .*a-file\/keras: /m,
  },
  {
    what: 'tokenizer fit to an --out below a file',
    args: () => ['tokenizer', 'fit', 'p.yaml', '--out', path.join(fx.aFile, 'tokenizer.json'), '--json'],
    files: () => pipelineFile(),
    code: 1,
    stderr: /^textstream: cannot write the tokenizer to .*a-file\/tokenizer\.json \(--out\): /m,
  },
  {
    what: 'report of a folder holding a damaged Parquet file',
    args: () => ['report', fx.corruptOutput, '--out', 'r.html'],
    code: 1,
    stderr:
      /^textstream report: 1 output file\(s\) could not be read and are left out of the report: .*corrupt-out\/p\/input=mail\/partition-0\/00000000000000000000-00000000000000000003\.parquet is not a Parquet file/m,
  },
  {
    what: 'report of a run with one damaged file among good ones (the others are reported)',
    args: () => ['report', fx.mixedOutput, '--out', 'r.html', '--json'],
    code: 1,
    stderr: /^textstream report: 1 output file\(s\) could not be read and are left out of the report: .*mixed-out\/.*-0+99\.parquet is not a Parquet file/m,
  },
  {
    what: 'report to an --out below a file',
    args: () => ['report', fx.output, '--out', path.join(fx.aFile, 'r.html')],
    code: 1,
    stderr: /^textstream: cannot write the report to .*a-file\/r\.html: /m,
  },
  {
    what: 'dataset to an --out below a file',
    args: () => ['dataset', 'spamassassin', '--out', path.join(fx.aFile, 'x.parquet'), '--json'],
    code: 1,
    stderr: /^textstream: building the SpamAssassin dataset at .*a-file\/x\.parquet failed: /m,
  },
  {
    what: 'run against a broker address where nothing listens',
    args: () => ['run', 'k.yaml'],
    files: () => ({ 'k.yaml': kafkaPipeline('127.0.0.1:1', 'emails') }),
    code: 1,
    stderr: /^textstream: cannot reach Kafka at 127\.0\.0\.1:1 \(source\.brokers\): .*ECONNREFUSED.*; is a broker listening there\?$/m,
  },
];

suite('CLI errors', { concurrency: CONCURRENCY }, () => {
  for (const c of cases) {
    test(`should exit ${c.code} naming the problem for ${c.what}`, async (t) => {
      const dir = await tempDir(t, 'textstream-error-');
      for (const [name, text] of Object.entries(c.files?.() ?? {})) {
        if (text === null) await mkdir(path.join(dir, name));
        else await writeFile(path.join(dir, name), text);
      }
      assertError(await run(c.args(), dir), c.code, c.stderr);
    });
  }

  test('should exit 1 naming a source topic that does not exist', async (t) => {
    const brokers = await ensureBroker();
    const dir = await tempDir(t, 'textstream-error-');
    const topic = uniqueName('no-such-topic');
    // The worker may create the dead-letter topic before it finds the source missing.
    t.after(() => deleteTopic(brokers, `${topic}.dlq`));
    await writeFile(path.join(dir, 'k.yaml'), kafkaPipeline(brokers, topic));
    assertError(await run(['run', 'k.yaml'], dir), 1, new RegExp(`^textstream: topic "${topic}" does not exist on .* \\(source\\.topic\\); create it first`, 'm'));
  });

  test('should print help for every command, without ANSI escapes when stdout is a pipe', async (t) => {
    const dir = await tempDir(t, 'textstream-error-');
    // Walk the command tree from the top-level help, a level at a time: every entry under
    // "Commands:" but help.
    const seen: string[] = [];
    for (let level: string[][] = [[]]; level.length > 0; ) {
      const helps = await Promise.all(level.map((command) => run([...command, '--help'], dir)));
      const next: string[][] = [];
      for (const [i, help] of helps.entries()) {
        const command = level[i]!;
        assert.equal(help.code, 0, `${command.join(' ')} --help: ${help.stderr}`);
        assert.match(help.stdout, /^Usage: textstream/);
        assert.match(help.stdout, /\nExamples?:\n {2}\$ textstream /, `"${command.join(' ')} --help" shows an example`);
        assert.equal(help.stderr, '');
        assert.ok(!help.stdout.includes('\x1b['), `ANSI escape in the help of "${command.join(' ')}"`);
        // Commander wraps descriptions itself; a newline inside one breaks a sentence mid-way.
        assert.doesNotMatch(help.stdout, /^ \S/m, `a line broken mid-sentence in the help of "${command.join(' ')}"`);
        seen.push(command.join(' '));
        const list = /\nCommands:\n([\s\S]*?)(?:\n\n|$)/.exec(help.stdout)?.[1] ?? '';
        for (const [, name] of list.matchAll(/^ {2}([a-z][\w-]*)/gm)) if (name !== 'help') next.push([...command, name!]);
      }
      level = next;
    }
    assert.deepEqual(
      seen.sort(),
      [
        '',
        'config',
        'config reference',
        'config schema',
        'config show',
        'dataset',
        'dataset spamassassin',
        'inspect',
        'model',
        'model export',
        'produce',
        'replay',
        'report',
        'run',
        'tokenizer',
        'tokenizer fit',
      ],
      'every command has a --help',
    );
  });
});
