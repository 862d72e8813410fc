import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { noOutputFiles } from './inspect.js';
import { buildReportData } from '../report/build.js';
import { headerRows, renderReport } from '../report/html.js';
import { makeReportSummary } from '../report/summary.js';
import { requireInputFile, writeTextFileAtomically } from './options.js';
import { makeCountBar } from './progress.js';

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'Write a self-contained HTML report of a run from its Parquet outputs: throughput, prequential accuracy and AUC over time, scores by label, dead letters by reason.',
    )
    .argument('<output dir>', 'the run’s output folder (sink.dir, or one pipeline’s folder in it)')
    .option('--out <file.html>', 'where to write the report', 'report.html')
    .option(
      '--dead-letters <file.jsonl>',
      'read dead letters from this file instead of the dead-letters.jsonl files under <output dir> (repeatable)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--json', 'no progress display; print the header figures and the report path as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream replay pipelines/spamassassin.yaml
  $ textstream report out --out spamassassin-report.html
  $ textstream report out --out spamassassin-report.html --json | jq .accuracy

The page needs no network (the chart library is inlined); open it in any browser.
Memory stays bounded on large outputs: files are read one at a time and rows are folded
into time buckets and fixed histograms. AUC comes from a 4096-bin histogram of score logits
per class; the header states its worst-case error.`,
    )
    .action(async (dir: string, opts: { out: string; deadLetters?: string[]; json: boolean }) => {
      for (const file of opts.deadLetters ?? []) await requireInputFile(file, '--dead-letters');
      const bar = opts.json ? null : makeCountBar(null, 'files');
      const data = await buildReportData({ dir, deadLetters: opts.deadLetters ?? null, onFile: (done, total) => bar?.update(done, total) }).finally(
        () => bar?.stop(),
      );
      if (data.files === 0 && data.unreadableFiles.length === 0) throw new ConfigError('output dir', noOutputFiles(dir));
      const html = renderReport(data);
      const out = path.resolve(opts.out);
      await writeTextFileAtomically(out, html, `the report to ${out}`);
      if (data.unreadableFiles.length > 0) {
        // The report is written for the files that could be read; the run still fails.
        process.stderr.write(
          `textstream report: ${data.unreadableFiles.length} output file(s) could not be read and are left out of the report: ${data.unreadableFiles.map((u) => u.reason).join('; ')}\n`,
        );
        process.exitCode = 1;
      }
      if (data.labelled === 0) process.stderr.write('textstream report: no labelled rows; accuracy and AUC are not shown\n');
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(makeReportSummary(data, out))}\n`);
        return;
      }
      const width = 22;
      const lines = headerRows(data).map(([, label, value]) => `  ${label.padEnd(width)}${value}`);
      process.stdout.write(`textstream report of ${dir}\n${lines.join('\n')}\n  report                ${out}\n`);
    });
}
