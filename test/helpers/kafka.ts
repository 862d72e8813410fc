import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SASLOptions } from 'kafkajs';
import { Kafka, logLevel, type IHeaders, type RecordMetadata } from 'kafkajs';
import { repoRoot } from './paths.js';

/**
 * Integration-test helpers for the real local broker (scripts/kafka.sh). Every test makes
 * its own topics and groups with `uniqueName`, so tests never see each other's data.
 */

export interface TestMessage {
  key?: string | Buffer | null;
  value: Buffer | string | null;
  partition?: number;
  headers?: IHeaders;
}

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** Large enough for the 10 MB round trip; the broker still enforces each topic's limit. */
const MAX_FETCH_BYTES = 32 * 1024 * 1024;

let broker: Promise<string> | undefined;

/**
 * Starts the local broker unless one started by scripts/kafka.sh already answers (the
 * script is idempotent and serialised by a lock), once per process. Returns host:port.
 * A cold machine downloads the jars first, hence the generous timeout.
 */
export function ensureBroker(): Promise<string> {
  broker ??= promisify(execFile)('bash', ['scripts/kafka.sh', 'start'], { cwd: repoRoot, timeout: 600_000 }).then(
    ({ stdout }) => stdout.trim().split('\n').at(-1)!,
    (err: Error & { stderr?: string }) => {
      broker = undefined;
      throw new Error(`scripts/kafka.sh start failed: ${err.message}\n${err.stderr ?? ''}`, { cause: err });
    },
  );
  return broker;
}

/** The SASL broker's port: its controller takes the next one, its TLS listener the one after. */
export const SASL_BROKER_PORT = 9096;

/**
 * The local broker in SASL mode (`TEXTSTREAM_KAFKA_SASL=1 scripts/kafka.sh`): SASL_PLAINTEXT
 * with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 on `brokers`, the same over TLS on
 * `tlsBrokers`. Its users and the client key's passphrase are the script's fixed, public
 * local test credentials.
 */
export interface SaslBroker {
  brokers: string;
  tlsBrokers: string;
  users: { admin: { username: string; password: string }; textstream: { username: string; password: string } };
  tls: { caFile: string; certFile: string; keyFile: string; keyPassword: string };
  /** An admin client (SCRAM-SHA-512 as admin, plaintext listener) for test set-up. */
  client: () => Kafka;
  /** Stops the broker if this process started it (else leaves it to whoever did). */
  stop: () => Promise<void>;
}

let saslBroker: Promise<SaslBroker> | undefined;

/**
 * Starts the SASL broker on SASL_BROKER_PORT unless it already runs, once per process,
 * like ensureBroker. Unlike the default broker it is only needed by a few tests, so
 * `stop()` (call it in an `after` hook) stops it again when this process started it.
 */
export function ensureSaslBroker(): Promise<SaslBroker> {
  saslBroker ??= (async () => {
    const env = { ...process.env, TEXTSTREAM_KAFKA_SASL: '1', TEXTSTREAM_KAFKA_PORT: String(SASL_BROKER_PORT) };
    const script = (command: string) => promisify(execFile)('bash', ['scripts/kafka.sh', command], { cwd: repoRoot, env, timeout: 600_000 });
    const wasRunning = await script('status').then(
      () => true,
      () => false,
    );
    let brokers: string;
    try {
      brokers = (await script('start')).stdout.trim().split('\n').at(-1)!;
    } catch (err) {
      saslBroker = undefined;
      const { message, stderr } = err as Error & { stderr?: string };
      throw new Error(`TEXTSTREAM_KAFKA_SASL=1 scripts/kafka.sh start failed: ${message}\n${stderr ?? ''}`, { cause: err });
    }
    const tlsDir = path.join(repoRoot, '.cache', 'kafka', `broker-${SASL_BROKER_PORT}`, 'tls');
    const admin = { username: 'admin', password: 'admin-secret' };
    const sasl: SASLOptions = { mechanism: 'scram-sha-512', ...admin };
    return {
      brokers,
      tlsBrokers: `127.0.0.1:${SASL_BROKER_PORT + 2}`,
      users: { admin, textstream: { username: 'textstream', password: 'textstream-secret' } },
      tls: {
        caFile: path.join(tlsDir, 'ca.pem'),
        certFile: path.join(tlsDir, 'client.crt'),
        keyFile: path.join(tlsDir, 'client.key'),
        keyPassword: 'client-key-secret',
      },
      client: () =>
        new Kafka({ clientId: 'textstream-test', brokers: [brokers], sasl, logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 } }),
      stop: async () => {
        if (!wasRunning) await script('stop');
      },
    };
  })();
  return saslBroker;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

function client(brokers: string): Kafka {
  return new Kafka({
    clientId: 'textstream-test',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    // Fail within seconds, not minutes, when something is wrong.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/** Creates a topic and waits for its partition leaders (auto-create is off on our broker). */
export async function createTopic(
  brokers: string,
  topic: string,
  partitions: number,
  configs: Record<string, string> = {},
): Promise<void> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
        },
      ],
      waitForLeaders: true,
    });
    if (!created) throw new Error(`topic ${topic} already exists`);
  } finally {
    await admin.disconnect();
  }
}

/** Deletes topics; one that is already gone is not an error (cleanup may run twice). */
export async function deleteTopic(brokers: string, ...topics: string[]): Promise<void> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const doomed = topics.filter((t) => existing.has(t));
    if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}

/** Produces the messages in order, acknowledged by the broker (acks=all). */
export async function produceMessages(
  brokers: string,
  topic: string,
  messages: readonly TestMessage[],
): Promise<RecordMetadata[]> {
  const producer = client(brokers).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    return await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m })) });
  } finally {
    await producer.disconnect();
  }
}

/** Where the broker put one produced message. */
export interface ProducedPosition {
  partition: number;
  offset: string;
}

/**
 * Produces the messages in order, one request each (acks=all), and returns where each one
 * went. Slower than `produceMessages`, but every message is its own record batch, so each
 * large one only has to fit the topic's max.message.bytes on its own.
 */
export async function produceEach(brokers: string, topic: string, messages: readonly TestMessage[]): Promise<ProducedPosition[]> {
  const producer = client(brokers).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const positions: ProducedPosition[] = [];
  try {
    for (const message of messages) {
      const [meta] = await producer.send({ topic, acks: -1, messages: [{ ...message }] });
      positions.push({ partition: meta!.partition, offset: meta!.baseOffset! });
    }
  } finally {
    await producer.disconnect();
  }
  return positions;
}

/** Messages ever written to a topic: the sum of its partitions' high watermarks. */
/** The group's committed offset per partition of a topic (decimal strings; "-1": none). */
export async function committedOffsets(brokers: string, groupId: string, topic: string): Promise<Map<number, string>> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(offsets!.partitions.map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

export async function topicMessageCount(brokers: string, topic: string): Promise<number> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads a topic from the beginning with a fresh consumer group until `expectedCount`
 * messages arrived; rejects after `timeoutMs` saying how many did.
 */
export async function readTopic(
  brokers: string,
  topic: string,
  expectedCount: number,
  timeoutMs = 30_000,
): Promise<ReadMessage[]> {
  const consumer = client(brokers).consumer({
    groupId: uniqueName('test-reader'),
    maxBytes: MAX_FETCH_BYTES,
    maxBytesPerPartition: MAX_FETCH_BYTES,
    maxWaitTimeInMs: 100,
  });
  const received: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${expectedCount} messages from ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = (): void => {
        if (received.length >= expectedCount) {
          clearTimeout(timer);
          resolve();
        }
      };
      check();
      consumer
        .run({
          eachMessage: ({ topic: t, partition, message }) => {
            received.push({
              topic: t,
              partition,
              offset: message.offset,
              timestamp: message.timestamp,
              key: message.key,
              value: message.value,
              headers: message.headers ?? {},
            });
            check();
            return Promise.resolve();
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}
