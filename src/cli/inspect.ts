import type { Command } from 'commander';
import { formatInspectReport } from '../inspect/format.js';
import { inspectOutput } from '../inspect/inspect.js';
import { ConfigError } from '../errors.js';
import { ExitCodes } from './exit-codes.js';
import { makeCountBar } from './progress.js';

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description(
      'Check a run’s Parquet outputs for offset gaps and overlaps, and sum them up (rows per partition, scores, accuracy, model versions, dead letters, temp files).',
    )
    .argument('<output dir>', 'the run’s output folder (sink.dir, or one pipeline’s folder in it)')
    .option('--json', 'no progress display; print one JSON object instead of tables', false)
    .option(
      '--allow-gaps',
      'list offsets missing without a dead letter as warnings, not problems (Kafka: transaction markers, compaction, dead letters in the topic)',
      false,
    )
    .addHelpText(
      'after',
      `
Examples:
  $ textstream replay pipelines/spamassassin.yaml
  $ textstream inspect out
  $ textstream inspect out/spamassassin --json | jq '.partitions'

Checks, per (topic or file, partition): consecutive files' name ranges must neither
overlap nor leave offsets out, and the offsets inside each file must match its name,
increase, and belong to its folder. Offsets missing because a message went to
dead-letters.jsonl are counted, not reported. Hidden *.parquet.inprogress files (a
writer at work, or stale after a crash) are listed, never read. Files are read one at a
time, only the columns needed.

Exit codes: 0 consistent; 1 gaps, overlaps, mismatches or unreadable files (listed under
"Problems", or in "problems" with --json); 2 usage error (the folder does not exist or
holds no Parquet output files).`,
    )
    .action(async (dir: string, opts: { json: boolean; allowGaps: boolean }) => {
      const bar = opts.json ? null : makeCountBar(null, 'files');
      const report = await inspectOutput({ dir, allowGaps: opts.allowGaps, onFile: (done, total) => bar?.update(done, total) }).finally(() => bar?.stop());
      // Nothing to check is not "consistent": most often the folder is the wrong one.
      if (report.files === 0) throw new ConfigError('output dir', noOutputFiles(dir));
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatInspectReport(report));
      if (!report.consistent) {
        const kinds = [...new Set(report.problems.map((p) => p.kind))].join(', ');
        process.stderr.write(`textstream inspect: ${report.problems.length} problem(s) found (${kinds})\n`);
        process.exitCode = ExitCodes.FAILURE;
      }
    });
}

/** The message for a folder without output files, shared by inspect and report. */
export function noOutputFiles(dir: string): string {
  return `no Parquet output files under ${dir}; give the run's sink.dir, or one pipeline's folder in it`;
}
