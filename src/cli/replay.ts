import type { Command } from 'commander';
import { loadPipeline } from '../config/load.js';
import { DeadLetterReasons } from '../message.js';
import { replay, type ReplaySummary } from '../runtime/replay.js';
import { makeLogger } from './logger.js';
import { parseInteger } from './options.js';
import { makeProgressView, type ProgressView } from './progress.js';
import { formatReplaySummary, replaySummaryJSON } from './summary.js';
import { onShutdownSignal } from './signals.js';

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'Replay a Parquet dataset through the full pipeline (clean → tokenize → Arrow → score, then train → Parquet), without Kafka. Prints a progress bar and a summary.',
    )
    .argument('<pipeline.yaml>', 'the pipeline definition (see pipelines/)')
    .option('--input <file.parquet>', 'replay this file instead of the pipeline’s source.path')
    .option('--limit <n>', 'stop after n records', parseInteger)
    .option(
      '--resume',
      'start from the input’s latest checkpoint and continue the input after the last row it learnt, keeping the output written before',
      false,
    )
    .option(
      '--resume-from <checkpoint>',
      'start from this checkpoint (another input’s: an output folder, a checkpoint folder or one ckpt-… directory) to go on learning on this input; its own checkpoints go to its own folder',
    )
    .option('--json', 'no progress display; print the summary as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream replay pipelines/spamassassin.yaml
  $ textstream replay pipelines/spamassassin.yaml --limit 1000
  $ textstream replay pipelines/spamassassin.yaml --input my-emails.parquet
  $ textstream replay pipelines/spamassassin.yaml --input december.parquet --resume-from out/spamassassin/_checkpoints/november
  $ textstream replay pipelines/spamassassin.yaml --json | jq .evaluation.accuracy

Output: <sink.dir>/<name>/ opens as one dataset in pandas, pyarrow, DuckDB and Spark:
Parquet files under input=<input>/partition-0/ (its name without .parquet), and beside
them, skipped by those readers, checkpoints in _checkpoints/<input>/ and dead letters in
_dead-letters/<input>.jsonl; a run replaces only its own input's. Metrics are served on
http://<metrics.host>:<metrics.port>/metrics while it runs. SIGINT/SIGTERM stop reading,
finish the files and exit non-zero. A run whose every row became a dead letter exits 1
(it says why). A run that read no row saves no checkpoint, so it never replaces the
last real one.`,
    )
    .action(async (file: string, opts: { input?: string; limit?: number; resume: boolean; resumeFrom?: string; json: boolean }, command: Command) => {
      const logger = makeLogger(command.optsWithGlobals<{ logLevel: string }>().logLevel);
      const config = await loadPipeline(file);
      const controller = new AbortController();
      const removeSignals = onShutdownSignal(controller, logger);
      // Held in an object: the view is created in a callback, which TS's narrowing cannot see.
      const ui: { view: ProgressView | null } = { view: null };
      try {
        const summary = await replay(config, {
          input: opts.input ?? null,
          limit: opts.limit ?? null,
          resume: opts.resume,
          resumeFrom: opts.resumeFrom ?? null,
          logger,
          signal: controller.signal,
          onStart: ({ total }) => {
            if (!opts.json) ui.view = makeProgressView(total);
          },
          onProgress: (progress, evaluation) => ui.view?.update(progress, evaluation.accuracy),
        });
        ui.view?.stop();
        ui.view = null;
        process.stdout.write(opts.json ? replaySummaryJSON(summary) : formatReplaySummary(summary));
        // Stopped by a signal: the output is consistent but incomplete, so say so, and how to go on.
        if (summary.aborted) {
          process.exitCode = 1;
          if (summary.checkpointDir !== null) {
            const input = opts.input === undefined ? '' : ` --input ${opts.input}`;
            process.stderr.write(`textstream replay: stopped early; continue where it stopped with: textstream replay ${file}${input} --resume\n`);
          }
        }
        const nothingWritten = nothingWrittenMessage(summary);
        if (nothingWritten !== null) {
          process.stderr.write(`textstream replay: ${nothingWritten}\n`);
          process.exitCode = 1;
        }
      } finally {
        ui.view?.stop();
        removeSignals();
      }
    });
}

/**
 * Every row a dead letter is a failed run, not a quiet one (exit 1): most often the input's
 * labels or text are not what the pipeline expects. Null when some row was written.
 */
export function nothingWrittenMessage(s: Pick<ReplaySummary, 'rowsIn' | 'rowsWritten' | 'deadLettersByReason' | 'deadLetterPath'>): string | null {
  if (s.rowsIn === 0 || s.rowsWritten > 0) return null;
  const reasons = Object.entries(s.deadLettersByReason)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const listed = reasons.map(([reason, n]) => `${reason} ${n}`).join(', ');
  const hint =
    reasons[0]?.[0] === DeadLetterReasons.INVALID_LABEL
      ? '; labels must be 0, 1 or null: map text labels with decode.labels (e.g. {spam: 1, ham: 0}), or set source.columns.label: null for unlabelled data'
      : '';
  return `every one of the ${s.rowsIn} rows became a dead letter (${listed}) and nothing was written; the reasons are in ${s.deadLetterPath}${hint}`;
}
