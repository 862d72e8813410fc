/**
 * The scaling bench's input: the bundled corpus produced into a fresh topic, several
 * times over. Copy k > 0 of a message gets the id `<id>#<k>`, so every message has its
 * own key (and the key spreads the copies over the partitions as the originals are).
 */
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { ParquetSource } from '../../src/sources/parquet.js';
import { produceCorpus } from '../kafka.js';

export interface CorpusTopic {
  topic: string;
  partitions: number;
  /** Messages in the topic. */
  messages: number;
  /** Copies of the corpus in the topic. */
  repeat: number;
  /** Producing every copy, summed. */
  produceSeconds: number;
}

export interface CorpusRow {
  id: string;
  text: string;
  label: unknown;
}

/** The corpus rows as `textstream produce` would send them (`{"id","text","label"}`). */
export async function readCorpus(dataset: string): Promise<CorpusRow[]> {
  const source = await ParquetSource.open({ path: dataset, columns: { text: 'text', label: 'label', id: 'id' }, batchRows: 512 });
  const rows: CorpusRow[] = [];
  try {
    for await (const batch of source.batches(new AbortController().signal)) {
      for (const r of batch) {
        const bytes = typeof r.text === 'string' ? Buffer.from(r.text, 'utf8') : r.text;
        // The corpus is read from JSON files, so every text is valid UTF-8; a JSON line
        // could not carry one that is not (produce would send it as raw bytes instead).
        if (bytes === null || !isUtf8(bytes) || r.id === null) throw new Error(`corpus row ${String(r.position.offset)} has no id or no UTF-8 text`);
        rows.push({ id: r.id, text: Buffer.from(bytes).toString('utf8'), label: typeof r.label === 'bigint' ? Number(r.label) : (r.label ?? null) });
      }
    }
  } finally {
    await source.close();
  }
  return rows;
}

export async function createTopic(brokers: string[], topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ clientId: 'textstream-bench-scorers', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

export interface ProduceCopiesOptions {
  brokers: string[];
  topic: string;
  rows: readonly CorpusRow[];
  /** Copies `from` (inclusive) to `to` (exclusive); copy 0 keeps the corpus ids. */
  from: number;
  to: number;
  /** Where the messages are staged as JSON lines for `produceFile`. */
  jsonl: string;
}

/** Produces copies of the corpus, keyed by id; returns the messages and seconds. */
export async function produceCopies(opts: ProduceCopiesOptions): Promise<{ messages: number; seconds: number }> {
  const file = createWriteStream(opts.jsonl);
  let lines = 0;
  for (let copy = opts.from; copy < opts.to; copy++) {
    for (const row of opts.rows) {
      const line = `${JSON.stringify({ id: copy === 0 ? row.id : `${row.id}#${copy}`, text: row.text, label: row.label })}\n`;
      if (!file.write(line)) await once(file, 'drain');
      lines++;
    }
  }
  file.end();
  await once(file, 'finish');
  if (lines === 0) return { messages: 0, seconds: 0 };
  const produced = await produceCorpus(opts.jsonl, opts.topic, opts.brokers, null);
  if (produced.messages !== lines) throw new Error(`produced ${produced.messages} messages of ${lines}`);
  return { messages: produced.messages, seconds: produced.seconds };
}
