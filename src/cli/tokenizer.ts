/**
 * `textstream tokenizer fit`: fits the pipeline's tokenizer on a whole Parquet dataset
 * (decoded and cleaned exactly as the pipeline would) and saves it, so a pipeline can
 * start from a vocabulary of the full corpus (`tokenizer.path`) instead of fitting one on
 * its first `tokenizer.bootstrapRows` messages.
 */
import { Option, type Command } from 'commander';
import { loadPipeline } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { DeadLetterReason } from '../message.js';
import { decodeRecord } from '../sources/decode.js';
import { ParquetSource } from '../sources/parquet.js';
import { cleanEmail, cleanText } from '../text/clean.js';
import { stateFromJSON, stateToKerasJSON } from '../text/tokenizer-json.js';
import { Tokenizer } from '../text/tokenizer.js';
import { makeLogger } from './logger.js';
import { parseInteger, requireInputFile, writeTextFileAtomically } from './options.js';
import { makeCountBar } from './progress.js';

export interface TokenizerFitSummary {
  input: string;
  out: string;
  documents: number;
  /** Distinct words seen; the saved tokenizer keeps indices below numWords. */
  words: number;
  numWords: number;
  skipped: Partial<Record<DeadLetterReason, number>>;
  seconds: number;
}

export function registerTokenizerCommand(program: Command): void {
  const tokenizer = program
    .command('tokenizer')
    .description('Fit and save the Keras-compatible tokenizer a pipeline uses.')
    .addHelpText('after', '\nExample:\n  $ textstream tokenizer fit pipelines/spamassassin.yaml --out tokenizer.json');
  tokenizer
    .command('fit')
    .description(
      'Fit the tokenizer of a pipeline on a whole Parquet dataset, decoded and cleaned as the pipeline does, and save it as JSON for the pipeline’s tokenizer.path.',
    )
    .argument('<pipeline.yaml>', 'the pipeline whose source columns, clean and tokenizer settings to use')
    .requiredOption('--out <tokenizer.json>', 'where to write the tokenizer')
    .option('--input <file.parquet>', 'fit on this file instead of the pipeline’s source.path')
    .option('--limit <n>', 'fit on the first n records only', parseInteger)
    .addOption(
      new Option(
        '--format <format>',
        "textstream: ours (keeps every setting, maxLen included); keras: what tf_keras' tokenizer.to_json() writes, for tokenizer_from_json",
      )
        .choices(['textstream', 'keras'])
        .default('textstream'),
    )
    .option('--json', 'print the summary as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream tokenizer fit pipelines/spamassassin.yaml --out tokenizer.json
  $ textstream tokenizer fit pipelines/spamassassin.yaml --input more.parquet --out tokenizer.json --json
  $ textstream tokenizer fit pipelines/spamassassin.yaml --format keras --out keras-tokenizer.json

Then set tokenizer.path: tokenizer.json in the pipeline: it starts with this vocabulary,
frozen, instead of fitting one on its first tokenizer.bootstrapRows messages. Records
that the pipeline would dead-letter (invalid UTF-8, oversized, empty after cleaning) are
skipped and counted. A tokenizer saved by Keras (tokenizer.to_json()) works there too, and
--format keras writes one that Keras' tokenizer_from_json reads.

Exit codes: 0 ok, 1 an input that is not readable Parquet or --out not writable, 2 usage
or configuration error (e.g. the input file does not exist).`,
    )
    .action(async (file: string, opts: { out: string; input?: string; limit?: number; json: boolean; format: 'textstream' | 'keras' }, command: Command) => {
      const logger = makeLogger(command.optsWithGlobals<{ logLevel: string }>().logLevel);
      const config = await loadPipeline(file);
      if (config.source.type !== 'parquet' && opts.input === undefined) {
        throw new ConfigError('source.type', `tokenizer fit reads Parquet: ${file} has a ${config.source.type} source; pass --input <file.parquet>`);
      }
      const input = opts.input ?? (config.source.type === 'parquet' ? config.source.path : '');
      const columns = config.source.type === 'parquet' ? config.source.columns : {};
      // replay builds a bundled dataset on first use; a fit does not, so say how.
      const dataset = opts.input === undefined && config.source.type === 'parquet' ? config.source.dataset : null;
      await requireInputFile(input, opts.input === undefined ? 'source.path' : '--input', {
        hint: dataset === null ? undefined : `build it first: textstream dataset ${dataset} --out ${input}`,
      });
      const started = performance.now();
      const source = await ParquetSource.open({ path: input, columns: { ...columns, label: null } });
      const total = opts.limit === undefined ? source.size : Math.min(opts.limit, source.size);
      const bar = opts.json ? null : makeCountBar(total, 'records');
      const clean = config.clean.email ? cleanEmail : cleanText;
      const texts: string[] = [];
      const skipped: Partial<Record<DeadLetterReason, number>> = {};
      const skip = (reason: DeadLetterReason): void => void (skipped[reason] = (skipped[reason] ?? 0) + 1);
      let seen = 0;
      try {
        for await (const batch of source.batches(new AbortController().signal)) {
          for (const record of batch.slice(0, total - seen)) {
            const decoded = decodeRecord(record, { maxMessageBytes: config.decode.maxMessageBytes });
            if (!decoded.ok) {
              skip(decoded.deadLetter.reason);
              continue;
            }
            const text = await clean(decoded.message.text);
            if (text === '') skip('empty-text');
            else texts.push(text);
          }
          seen = Math.min(total, seen + batch.length);
          bar?.update(seen);
          if (seen >= total) break;
        }
      } finally {
        bar?.stop();
        await source.close();
      }
      const fitted = new Tokenizer({ numWords: config.tokenizer.numWords, maxLen: config.tokenizer.maxLen, oovToken: config.tokenizer.oovToken })
        .fitOnTexts(texts)
        .freeze();
      const saved = opts.format === 'keras' ? stateToKerasJSON(stateFromJSON(fitted.toJSON())) : JSON.stringify(fitted.toJSON());
      await writeTextFileAtomically(opts.out, `${saved}\n`, `the tokenizer to ${opts.out} (--out)`);
      const summary: TokenizerFitSummary = {
        input,
        out: opts.out,
        documents: texts.length,
        words: fitted.wordIndex.size,
        numWords: config.tokenizer.numWords,
        skipped,
        seconds: Math.round(performance.now() - started) / 1000,
      };
      logger.info(summary, 'tokenizer fitted');
      process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
    });
}

function formatSummary(s: TokenizerFitSummary): string {
  const skipped = Object.entries(s.skipped).map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none';
  return [
    `tokenizer fitted on ${s.input}`,
    `  documents   ${s.documents.toLocaleString('en-US')} (skipped: ${skipped})`,
    `  words       ${s.words.toLocaleString('en-US')} distinct; indices 1–${Math.min(s.words, s.numWords - 1).toLocaleString('en-US')} used (numWords ${s.numWords.toLocaleString('en-US')})`,
    `  saved       ${s.out}`,
    `  wall time   ${s.seconds.toFixed(1)} s`,
    '',
  ].join('\n');
}

