/**
 * What a long run on a dedicated local broker needs besides its workers: the broker's
 * lifecycle (scripts/kafka.sh on its own port), the stream produced onto it, and the
 * committed count that tells how far the workers got. Shared by the chaos run and the
 * soak run (bench/soak).
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Admin, Kafka } from 'kafkajs';
import { chaosMessages } from './messages.js';

const run = promisify(execFile);

/**
 * Runs `use` with the bootstrap address of the broker on `port` (scripts/kafka.sh with
 * TEXTSTREAM_KAFKA_PORT), starting the broker if needed.
 */
export async function withDedicatedBroker<T>(repo: string, port: number, use: (brokers: string[]) => Promise<T>): Promise<T> {
  const broker = { cwd: repo, env: { ...process.env, TEXTSTREAM_KAFKA_PORT: String(port) }, timeout: 180_000 };
  // A broker this run starts, it stops; one already running is left as found.
  const wasRunning = await run('bash', ['scripts/kafka.sh', 'status'], broker).then(
    () => true,
    () => false,
  );
  const { stdout } = await run('bash', ['scripts/kafka.sh', 'start'], broker);
  try {
    return await use([stdout.trim().split('\n').at(-1)!]);
  } finally {
    if (!wasRunning) await run('bash', ['scripts/kafka.sh', 'stop'], broker).catch(() => undefined);
  }
}

export interface ProduceOptions {
  messages: number;
  seed: number;
  /** One malformed JSON message in this many (0: none). */
  poisonEvery: number;
  /** Messages produced per second. */
  ratePerSecond: number;
  log: (line: string) => void;
}

/**
 * Produces the stream (chaosMessages) while the workers run, at `ratePerSecond` (the live
 * traffic the faults meet), one request per tenth of a second. A request that fails (the
 * broker is restarting) is sent again; the idempotent producer keeps that from adding
 * messages.
 */
export async function produce(kafka: Kafka, topic: string, opts: ProduceOptions): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const perTick = Math.max(1, Math.round(opts.ratePerSecond / 10));
    const messages = chaosMessages(opts.messages, opts.seed, opts.poisonEvery);
    for (;;) {
      const batch: { key: string; value: string }[] = [];
      while (batch.length < perTick) {
        const next = messages.next();
        if (next.done) break;
        batch.push(next.value);
      }
      if (batch.length === 0) return;
      const tick = sleep(100);
      for (;;) {
        try {
          await producer.send({ topic, acks: -1, messages: batch });
          break;
        } catch (err) {
          opts.log(`producing failed (${err instanceof Error ? err.message : String(err)}); sending again in 1 s`);
          await sleep(1000);
        }
      }
      await tick;
    }
  } finally {
    await producer.disconnect();
  }
}

/** Offsets the group has committed on `topic`, summed over its partitions. */
export async function committedCount(admin: Admin, groupId: string, topic: string): Promise<number> {
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } catch {
    return 0; // the broker is restarting
  }
}
