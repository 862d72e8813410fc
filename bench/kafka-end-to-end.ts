/**
 * End-to-end consumer throughput on the bundled corpus: produce the 6 046 SpamAssassin
 * emails into a fresh 4-partition topic on the local broker, start N `textstream run`
 * workers (the pipeline of pipelines/kafka-spamassassin.yaml, pointed at 127.0.0.1), and
 * time from the first worker's start until every message is a durable row or a dead letter.
 *
 *   bash scripts/kafka.sh start
 *   npx tsc -p . && node dist/bench/kafka-end-to-end.js [--workers 1] [--limit 6046]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { produceFile } from '../src/cli/produce.js';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';

const { values } = parseArgs({ options: { workers: { type: 'string', default: '1' }, limit: { type: 'string', default: '6046' } } });
const workers = Number(values.workers);
const limit = Number(values.limit);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const brokers = ['127.0.0.1:9092'];
const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-bench-'));
const topic = `bench-${Date.now()}`;
const admin = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING }).admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 4 }, { topic: `${topic}.dlq`, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2097152' }] }], waitForLeaders: true });

const dataset = path.join(dir, 'spamassassin.parquet');
await buildSpamAssassinDataset({ out: dataset, seed: 42 });
const produced = await produceFile({
  file: dataset, topic, brokers, format: 'json', limit, partitionsBy: 'key',
  columns: { text: 'text', label: 'label', id: 'id' }, batchSize: 500, maxInFlight: 4, connectionTimeoutMs: 3000,
  logger: pino({ level: 'warn' }),
});

const pipeline = parseYaml(await readFile(path.join(repo, 'pipelines', 'kafka-spamassassin.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
pipeline.source = { ...pipeline.source, brokers, topic, groupId: `bench-${topic}` };
pipeline.deadLetter = { topic: `${topic}.dlq` };
pipeline.sink = { ...pipeline.sink, dir: path.join(dir, 'out') };
const ports = Array.from({ length: workers }, (_, i) => 9480 + i);
const started = Date.now();
const children = ports.map((port, i) => {
  const file = path.join(dir, `worker-${i}.yaml`);
  return writeFile(file, toYaml({ ...pipeline, metrics: { host: '127.0.0.1', port } })).then(() =>
    spawn(process.execPath, [path.join(repo, 'dist', 'src', 'cli', 'main.js'), 'run', file, '--log-level', 'warn'], { stdio: 'inherit' }),
  );
});
const procs = await Promise.all(children);

/** Rows written plus dead letters, summed over the workers' /metrics. */
async function done(): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
    for (const m of text.matchAll(/^textstream_(?:output_rows_total|dead_letters_total)\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
  }
  return total;
}
let backend = '?';
while ((await done()) < produced.messages) await sleep(200);
const seconds = (Date.now() - started) / 1000;
const metrics = await fetch(`http://127.0.0.1:${ports[0]}/metrics`).then((r) => r.text());
backend = /textstream_model_backend_info\{backend="([^"]+)"/.exec(metrics)?.[1] ?? backend;
const accuracy = /^textstream_model_prequential_accuracy\{[^}]*\} ([\d.]+)/m.exec(metrics)?.[1];
for (const p of procs) p.kill('SIGTERM');
await Promise.all(procs.map((p) => new Promise((resolve) => p.on('close', resolve))));
console.log(JSON.stringify({ workers, messages: produced.messages, seconds: Number(seconds.toFixed(1)), messagesPerSecond: Math.round(produced.messages / seconds), backend, accuracyWorker0: accuracy === undefined ? null : Number(accuracy), cores: os.availableParallelism(), cpu: os.cpus()[0]?.model }, null, 2));
await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] });
await admin.disconnect();
await rm(dir, { recursive: true, force: true });
