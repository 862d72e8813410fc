/**
 * A small real replay for the tests that read a run's outputs (report, inspect): real
 * emails, spam and ham interleaved (every tenth ham unlabelled), plus three rows that
 * become dead letters, replayed with the wasm backend into a temporary folder.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parsePipeline } from '../../src/config/load.js';
import { replay, type ReplaySummary } from '../../src/runtime/replay.js';
import { ParquetFileWriter } from '../../src/sinks/parquet-writer.js';
import { corpusMessages } from './corpus.js';

export interface MailReplayOptions {
  /** Names the temporary folder. */
  prefix: string;
  /** The pipeline's name (the output folder under `out/`). */
  name: string;
  /** Spam and ham messages each. */
  pairs: number;
  /**
   * Before which pairs the empty-text and the bad-label rows go, so the output has offsets
   * that only a dead letter accounts for; absent: after the last pair. The row without a
   * text is always last.
   */
  badRowsBefore?: { emptyText: number; badLabel: number };
  bootstrapRows: number;
  rotateRows: number;
}

export interface MailReplay {
  /** The temporary folder; the caller removes it. */
  root: string;
  /** The replay's sink.dir. */
  outDir: string;
  summary: ReplaySummary;
}

export async function replayMail(o: MailReplayOptions): Promise<MailReplay> {
  const root = await mkdtemp(path.join(os.tmpdir(), o.prefix));
  const input = path.join(root, 'mail.parquet');
  await writeMail(input, o);
  const outDir = path.join(root, 'out');
  const config = parsePipeline({
    name: o.name,
    source: { type: 'parquet', path: input, batchRows: 20 },
    clean: { email: true },
    tokenizer: { bootstrapRows: o.bootstrapRows },
    batch: { maxRows: 16 },
    model: { backend: 'wasm', seed: 7 },
    sink: { dir: outDir, rotateRows: o.rotateRows },
    metrics: { enabled: false },
  });
  const summary = await replay(config, { logger: pino({ level: 'silent' }), signal: new AbortController().signal });
  return { root, outDir, summary };
}

async function writeMail(file: string, o: MailReplayOptions): Promise<void> {
  const spam = await corpusMessages('spam-2', o.pairs);
  const ham = await corpusMessages('easy-ham-1', o.pairs);
  const writer = await ParquetFileWriter.open(
    `${file}.tmp`,
    { id: { type: 'UTF8' }, text: { type: 'BYTE_ARRAY', optional: true }, label: { type: 'UTF8', optional: true } },
    { compression: 'SNAPPY', rowGroupRows: 64 },
  );
  const at = o.badRowsBefore ?? { emptyText: o.pairs, badLabel: o.pairs };
  for (let i = 0; i <= o.pairs; i++) {
    if (i === at.emptyText) await writer.append({ id: 'bad/empty', text: Buffer.from(''), label: '0' });
    if (i === at.badLabel) await writer.append({ id: 'bad/label', text: Buffer.from('free money now'), label: 'spam' });
    if (i === o.pairs) break;
    await writer.append({ id: spam[i]!.id, text: Buffer.from(spam[i]!.text), label: '1' });
    await writer.append({ id: ham[i]!.id, text: Buffer.from(ham[i]!.text), label: i % 10 === 0 ? null : '0' });
  }
  await writer.append({ id: 'bad/no-text', label: '1' });
  await writer.finish(file);
}
