#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { registerConfigCommand } from './config.js';
import { registerDatasetCommand } from './dataset.js';
import { registerInspectCommand } from './inspect.js';
import { registerModelCommand } from './model.js';
import { registerProduceCommand } from './produce.js';
import { registerReplayCommand } from './replay.js';
import { registerReportCommand } from './report.js';
import { registerRunCommand } from './run.js';
import { registerTokenizerCommand } from './tokenizer.js';
import { ExitCodes, exitCodeFor } from './exit-codes.js';
import { LogLevels } from './logger.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

// `textstream … | head` closes stdout early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(ExitCodes.OK);
  throw err;
});

const program = new Command()
  .name('textstream')
  .description('Score and continuously train an LSTM text classifier on a stream; Parquet out, Prometheus metrics.')
  .version(pkg.version)
  .addOption(new Option('--log-level <level>', 'level of the JSON logs on stderr').choices(LogLevels).default('info'))
  .exitOverride()
  .showHelpAfterError('(add --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  $ textstream replay pipelines/spamassassin.yaml             replay the bundled corpus
  $ textstream replay pipelines/spamassassin.yaml --limit 500 a quick look
  $ textstream dataset spamassassin --out data/spamassassin.parquet

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.`,
  );

registerDatasetCommand(program);
registerConfigCommand(program);
registerModelCommand(program);
registerReplayCommand(program);
registerProduceCommand(program);
registerRunCommand(program);
registerReportCommand(program);
registerInspectCommand(program);
registerTokenizerCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version arrive here too, with exit code 0. Commander has already
    // printed its message, except when it answers a missing or unknown command with the
    // help alone: then say what was wrong below it.
    if (err.code === 'commander.help' && err.exitCode !== 0) process.stderr.write(`error: ${describeHelpError(program)}\n`);
    process.exitCode = err.exitCode === 0 ? ExitCodes.OK : ExitCodes.USAGE;
  } else {
    process.stderr.write(`textstream: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

/**
 * Why commander showed help as an error: `textstream config` (a command group without one
 * of its commands) or `textstream help frobnicate` (help for a command that does not exist).
 * Each parsed command keeps its operands in `args`; they lead to the command it stopped at.
 */
function describeHelpError(program: Command): string {
  const path = [program];
  for (;;) {
    const command = path.at(-1)!;
    const next = command.commands.find((c) => c.name() === command.args[0]);
    if (!next) break;
    path.push(next);
  }
  const command = path.at(-1)!;
  if (command.args[0] === 'help' && command.args[1] !== undefined) return `unknown command '${command.args[1]}'`;
  return `missing command: '${path.map((c) => c.name()).join(' ')}' needs one of ${command.commands.map((c) => c.name()).join(', ')}`;
}
