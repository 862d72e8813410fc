/**
 * The averaging bench's input: the bundled corpus as `textstream replay` turns it into
 * model input, done once and shared by every configuration. Records in file order,
 * decoded, cleaned by the pipeline's cleaner (a message that cleans to nothing is
 * dropped, as replay dead-letters it), the vocabulary fitted on the first
 * `tokenizer.bootstrapRows` cleaned messages and frozen (through the product's own
 * `makeModelParts` vocabulary, so `tokenizer.path` is honoured as replay honours it),
 * then every message tokenized.
 *
 * Each message also gets the Kafka position it would have on a topic of `partitions`
 * partitions filled round-robin: record i (its row in the file, dropped ones included)
 * goes to partition i mod P at offset ⌊i / P⌋.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { PipelineConfig } from '../../src/config/schema.js';
import type { TokenizedMessage } from '../../src/message.js';
import { makeModelParts, NO_CHECKPOINTS } from '../../src/runtime/components.js';
import { cleanEmail, cleanText } from '../../src/text/clean.js';
import { loadCorpus } from '../corpus.js';

export interface StreamOptions {
  config: Readonly<PipelineConfig>;
  /** Relative `source.path` is resolved against this folder (the repository). */
  repo: string;
  /** First rows of the file only; null: all. */
  rows: number | null;
  partitions: number;
  logger: Logger;
}

export interface PreparedStream {
  input: string;
  /** Tokenized messages in stream order; `position.partition` is the simulated Kafka partition. */
  messages: TokenizedMessage[];
  /** Records the decoder rejected or that cleaned to nothing (replay's dead letters). */
  dropped: number;
  /** Messages the vocabulary was fitted on (0 when `tokenizer.path` gave a fitted one). */
  bootstrapRows: number;
  /** Words in the fitted vocabulary (all of them, not only the `numWords` kept). */
  vocabularyWords: number;
  seconds: number;
}

export async function prepareStream(opts: StreamOptions): Promise<PreparedStream> {
  const started = performance.now();
  const { config } = opts;
  if (config.source.type !== 'parquet') throw new Error(`the averaging bench replays a parquet source; ${config.name} has ${config.source.type}`);
  const input = path.resolve(opts.repo, config.source.path);
  const corpus = await loadCorpus({
    path: input,
    seed: config.source.datasetSeed,
    rows: opts.rows,
    maxMessageBytes: config.decode.maxMessageBytes,
  });
  const clean = config.clean.email ? cleanEmail : cleanText;
  // The corpus decodes cleanly (no rejected record), so a message's index is its row in the file.
  const cleaned: { index: number; text: string; message: (typeof corpus.messages)[number] }[] = [];
  for (const [index, message] of corpus.messages.entries()) {
    let text: string;
    try {
      text = await clean(message.text);
    } catch {
      continue;
    }
    if (text !== '') cleaned.push({ index, text, message });
  }

  // The product's model parts, for the vocabulary only: replay fits and encodes through it.
  const parts = await makeModelParts(config, opts.logger, NO_CHECKPOINTS);
  parts.learner.dispose();
  const bootstrap = parts.vocabulary.frozen ? [] : cleaned.slice(0, config.tokenizer.bootstrapRows).map((c) => c.text);
  if (!parts.vocabulary.frozen) parts.vocabulary.fitAndFreeze(bootstrap);

  const p = opts.partitions;
  const messages = cleaned.map(({ index, text, message }): TokenizedMessage => ({
    ...message,
    text,
    tokens: parts.vocabulary.encode(text),
    position: { ...message.position, partition: index % p, offset: BigInt(Math.floor(index / p)) },
  }));
  return {
    input,
    messages,
    dropped: corpus.deadLetters + corpus.messages.length - cleaned.length,
    bootstrapRows: bootstrap.length,
    vocabularyWords: parts.tokenizer.wordIndex.size,
    seconds: (performance.now() - started) / 1000,
  };
}
