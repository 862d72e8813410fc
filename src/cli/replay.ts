import type { Command } from 'commander';
import { loadPipeline } from '../config/load.js';
import { replay } from '../runtime/replay.js';
import { makeLogger } from './logger.js';
import { parseInteger } from './options.js';
import { makeProgressView, type ProgressView } from './progress.js';
import { formatReplaySummary, replaySummaryJSON } from './summary.js';
import { onShutdownSignal } from './signals.js';

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'Replay a Parquet dataset through the full pipeline (clean → tokenize → Arrow → score,\n then train → Parquet), without Kafka. Prints a progress bar and a summary.',
    )
    .argument('<pipeline.yaml>', 'the pipeline definition (see pipelines/)')
    .option('--input <file.parquet>', 'replay this file instead of the pipeline’s source.path')
    .option('--limit <n>', 'stop after n records', parseInteger)
    .option('--resume', 'start from the latest checkpoint in model.checkpointDir', false)
    .option('--json', 'no progress display; print the summary as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream replay pipelines/spamassassin.yaml
  $ textstream replay pipelines/spamassassin.yaml --limit 1000
  $ textstream replay pipelines/spamassassin.yaml --input my-emails.parquet
  $ textstream replay pipelines/spamassassin.yaml --json | jq .evaluation.accuracy

Output: Parquet files under <sink.dir>/<name>/file=<input>/partition=0/, dead letters in
<sink.dir>/<name>/dead-letters.jsonl, metrics on http://<metrics.host>:<metrics.port>/metrics
while it runs. SIGINT/SIGTERM stop reading, finish the files and exit non-zero.`,
    )
    .action(async (file: string, opts: { input?: string; limit?: number; resume: boolean; json: boolean }, command: Command) => {
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
        // Stopped by a signal: the output is consistent but incomplete, so say so.
        if (summary.aborted) process.exitCode = 1;
      } finally {
        ui.view?.stop();
        removeSignals();
      }
    });
}
