/**
 * Helpers for the benches that run against the real local broker (scripts/kafka.sh):
 * starting it, producing the corpus, reading a worker's /metrics, cleaning up topics.
 * The Kafka rows of `npm run bench` and `npm run bench:kafka` are measured by
 * bench/kafka-worker.ts.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { pino } from 'pino';
import { produceFile } from '../src/cli/produce.js';

const START_TIMEOUT_MS = 180_000;

/** The local broker's address (scripts/kafka.sh's port). */
export const localBroker = (): string => `127.0.0.1:${process.env.TEXTSTREAM_KAFKA_PORT ?? '9092'}`;

/** Whether a Kafka broker answers at `address` within a few seconds. */
export async function brokerAnswers(address: string): Promise<boolean> {
  const admin = new Kafka({ clientId: 'textstream-bench-probe', brokers: [address], logLevel: logLevel.NOTHING, connectionTimeout: 2000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Uses the broker that already answers on the local port (also one that another checkout's
 * scripts/kafka.sh started, which this checkout's script refuses to adopt), else starts it
 * (the script is idempotent and serialised by a lock); returns host:port. Throws with the
 * script's last stderr line.
 */
export async function ensureBroker(repo: string): Promise<string> {
  if (await brokerAnswers(localBroker())) return localBroker();
  try {
    const { stdout } = await promisify(execFile)('bash', ['scripts/kafka.sh', 'start'], { cwd: repo, timeout: START_TIMEOUT_MS });
    const address = stdout.trim().split('\n').at(-1);
    if (address === undefined || address === '') throw new Error('scripts/kafka.sh start printed no address');
    return address;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    const last = stderr.trim().split('\n').at(-1);
    throw new Error(`scripts/kafka.sh start failed: ${last !== undefined && last !== '' ? last : String(err)}`, { cause: err });
  }
}

/** Produces a corpus file (Parquet or JSON lines with id, text, label) keyed by id, as `textstream produce` does. */
export function produceCorpus(file: string, topic: string, brokers: string[], limit: number | null): ReturnType<typeof produceFile> {
  return produceFile({
    file,
    topic,
    brokers,
    format: 'json',
    limit,
    partitionsBy: 'key',
    columns: { text: 'text', label: 'label', id: 'id' },
    batchSize: 500,
    maxInFlight: 4,
    connectionTimeoutMs: 3000,
    logger: pino({ level: 'warn' }),
  });
}

/** A port nobody listens on right now (the worker binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not find a free port');
  return address.port;
}

/** One worker's /metrics text; empty when it does not answer (not up yet, or gone). */
export async function scrape(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
}

/** Rows written plus dead letters in one worker's /metrics. */
export function finished(metrics: string): number {
  let total = 0;
  for (const m of metrics.matchAll(/^textstream_(?:output_rows_total|dead_letters_total)\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
  return total;
}

export async function deleteTopics(admin: Admin, topics: string[]): Promise<void> {
  try {
    await admin.deleteTopics({ topics, timeout: 10_000 });
  } catch {
    // Cleanup only: a left-over bench topic costs disk, not correctness.
  }
}
