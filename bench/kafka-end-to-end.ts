/**
 * End-to-end consumer throughput on the bundled corpus: produce the 6 046 SpamAssassin
 * emails into a fresh 4-partition topic on the local broker, start N `textstream run`
 * workers (the pipeline of pipelines/kafka-spamassassin.yaml, pointed at 127.0.0.1), and
 * time from the first worker's start until every message is a durable row or a dead letter.
 * The measurement itself lives in bench/kafka.ts, shared with `npm run bench`.
 *
 *   bash scripts/kafka.sh start
 *   npm run bench:kafka -- [--workers 1] [--limit 6046]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';
import { measureKafkaEndToEnd } from './kafka.js';
import { parseOrExit, positiveInteger } from './options.js';

const program = new Command('npm run bench:kafka --')
  .description(
    'Kafka end to end on the bundled corpus: produce it into a fresh 4-partition topic on the local broker (127.0.0.1:9092; ' +
      '`bash scripts/kafka.sh start`), start N `textstream run` workers, and time from their start until every message is a ' +
      'durable row or a dead letter. Prints one JSON object.',
  )
  .option('--workers <n>', 'workers sharing the topic', positiveInteger, 1)
  .option('--limit <n>', 'messages of the corpus to produce', positiveInteger, 6046)
  .allowExcessArguments(false)
  .exitOverride();
parseOrExit(program);
const { workers, limit } = program.opts<{ workers: number; limit: number }>();
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-'));
try {
  const dataset = path.join(dir, 'spamassassin.parquet');
  await buildSpamAssassinDataset({ out: dataset, seed: 42 });
  const result = await measureKafkaEndToEnd({
    repo,
    brokers: ['127.0.0.1:9092'],
    dataset,
    workers,
    limit,
    reps: 1,
    backend: 'auto',
    runTimeoutMs: 30 * 60_000,
  });
  const run = result.runs[0]!;
  console.log(
    JSON.stringify(
      {
        workers,
        messages: run.messages,
        seconds: Number(run.seconds.toFixed(1)),
        messagesPerSecond: Math.round(run.messagesPerSecond),
        backend: run.backend,
        accuracyWorker0: run.accuracyWorker0,
        cores: os.availableParallelism(),
        cpu: os.cpus()[0]?.model,
      },
      null,
      2,
    ),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
