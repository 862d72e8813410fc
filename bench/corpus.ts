/**
 * The bench's input: the bundled SpamAssassin corpus, read and decoded once, exactly as
 * the replay source hands it to the pipeline (raw RFC 822 text, 0/1 labels, ids).
 */
import { access } from 'node:fs/promises';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';
import type { Message } from '../src/message.js';
import { decodeRecord } from '../src/sources/decode.js';
import { ParquetSource } from '../src/sources/parquet.js';

export interface Corpus {
  path: string;
  /** True when this run had to build the Parquet file first. */
  built: boolean;
  messages: Message[];
  /** Records the decoder rejected (none in the bundled corpus; counted so it would show). */
  deadLetters: number;
}

export interface LoadCorpusOptions {
  path: string;
  /** Shuffle seed used when the file has to be built (the pipeline's source.datasetSeed). */
  seed: number;
  /** First rows only; null: all. */
  rows: number | null;
  maxMessageBytes: number;
}

export async function loadCorpus(opts: LoadCorpusOptions): Promise<Corpus> {
  let built = false;
  try {
    await access(opts.path);
  } catch {
    await buildSpamAssassinDataset({ out: opts.path, seed: opts.seed });
    built = true;
  }
  const source = await ParquetSource.open({ path: opts.path });
  const messages: Message[] = [];
  let deadLetters = 0;
  const limit = opts.rows ?? Number.POSITIVE_INFINITY;
  const stop = new AbortController();
  try {
    for await (const records of source.batches(stop.signal)) {
      for (const record of records) {
        if (messages.length + deadLetters >= limit) break;
        const decoded = decodeRecord(record, { maxMessageBytes: opts.maxMessageBytes });
        if (decoded.ok) messages.push(decoded.message);
        else deadLetters++;
      }
      if (messages.length + deadLetters >= limit) stop.abort();
    }
  } finally {
    await source.close();
  }
  return { path: opts.path, built, messages, deadLetters };
}
