import kafkajs, { type Admin, type IHeaders, type Kafka, type Message, type Producer, type RetryOptions } from 'kafkajs';
import { SinkError } from '../errors.js';
import type { DeadLetter } from '../message.js';
import { KAFKA_DEFAULT_MAX_MESSAGE_BYTES, kafkaErrorType } from '../sources/kafka-client.js';
import type { DeadLetterSink } from './sink.js';

/** Header names of a dead-letter record; values are UTF-8 strings. */
export const DeadLetterHeaders = {
  REASON: 'textstream.reason',
  DETAIL: 'textstream.detail',
  SOURCE_TOPIC: 'textstream.source.topic',
  SOURCE_PARTITION: 'textstream.source.partition',
  SOURCE_OFFSET: 'textstream.source.offset',
  /** Milliseconds since the epoch; absent when the source record had no timestamp. */
  SOURCE_TIMESTAMP: 'textstream.source.timestamp',
} as const;

export interface KafkaDeadLetterSinkOptions {
  /**
   * The kafkajs client (brokers, TLS, SASL, logging set once by the caller). The sink
   * creates and owns its producer from it: acks, idempotence, retries and partitioning
   * are what its guarantee rests on, so they are not left to the caller.
   */
  kafka: Kafka;
  /** The dead-letter topic. Without `createLike`, it must exist. */
  topic: string;
  /**
   * When the dead-letter topic does not exist, create it (one partition, the broker's
   * default replication) with this topic's `max.message.bytes`, as Kafka Connect does for
   * its dead-letter queue: it must accept whatever the source topic accepts.
   */
  createLike?: { topic: string; onCreated?: (maxMessageBytes: number) => void };
  /**
   * Bytes of records per produce request (one record batch per partition, which the
   * broker checks against the topic's `max.message.bytes`). Default: that setting, read
   * from the topic on connect (Kafka's default, 1 048 588, if it cannot be read).
   */
  maxRequestBytes?: number;
  /** kafkajs retries for a failed request before `write` fails. Default 5 (≈ 20 s of backoff). */
  retry?: RetryOptions;
}

/** Record-batch header (61 bytes) plus room, so a full request stays under the limit. */
const BATCH_OVERHEAD = 512;
/** Per record: length, attributes, varint deltas, header counts — generously. */
const RECORD_OVERHEAD = 64;
/** Protocol errors that no retry can fix: the topic or its settings must change. */
const PERMANENT_ERRORS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
]);

/**
 * Dead letters as records of a Kafka topic: the value is the original record's bytes
 * exactly as received (invalid UTF-8 included), the key is its original key, and the
 * reason, detail and source position travel in headers (see `DeadLetterHeaders`).
 *
 * `write` returns only when the broker has acknowledged every letter (acks = -1, an
 * idempotent producer, one request in flight), so the caller may commit the source
 * offsets after it. Letters are split into requests of at most `maxRequestBytes`; one
 * letter larger than that fails with a non-retryable SinkError that says which setting to
 * raise (the dead-letter topic must accept what the source topic accepts, since an
 * oversized message is exactly what lands here). Other failures are retryable SinkErrors.
 *
 * The producer connects on `connect()` or the first `write`, which also check that the
 * topic exists (or create it, with `createLike`); `close()` disconnects it and is safe to call twice.
 */
export class KafkaDeadLetterSink implements DeadLetterSink {
  readonly topic: string;
  readonly #kafka: Kafka;
  readonly #producer: Producer;
  readonly #configuredMaxBytes: number | undefined;
  readonly #createLike: KafkaDeadLetterSinkOptions['createLike'];
  #maxRequestBytes = KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
  #connected = false;
  #closed = false;
  #written = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: KafkaDeadLetterSinkOptions) {
    if (!options.topic) throw new SinkError('dead-letter topic must not be empty', { canRetry: false });
    if (options.maxRequestBytes !== undefined && !(Number.isInteger(options.maxRequestBytes) && options.maxRequestBytes > BATCH_OVERHEAD)) {
      throw new SinkError(`maxRequestBytes must be an integer > ${BATCH_OVERHEAD}, got ${options.maxRequestBytes}`, { canRetry: false });
    }
    this.topic = options.topic;
    this.#kafka = options.kafka;
    this.#configuredMaxBytes = options.maxRequestBytes;
    this.#createLike = options.createLike;
    this.#producer = options.kafka.producer({
      idempotent: true,
      // kafkajs' idempotent producer keeps order only with one request in flight.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Spelled out: it is kafkajs' default, and naming it silences its v2 migration warning.
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
      // The idempotent producer would otherwise retry forever and `write` would never fail.
      retry: options.retry ?? { retries: 5 },
    });
  }

  /** Letters acknowledged by the broker so far. */
  get written(): number {
    return this.#written;
  }

  /** Connects, checks that the topic exists and reads its size limit. `write` calls it too. */
  connect(): Promise<void> {
    return this.#serial(() => this.#connect());
  }

  write(letters: readonly DeadLetter[]): Promise<void> {
    return this.#serial(async () => {
      await this.#connect();
      if (letters.length === 0) return;
      for (const request of this.#requests(letters)) {
        try {
          await this.#producer.send({ topic: this.topic, acks: -1, messages: request.map(deadLetterToKafkaMessage) });
        } catch (err) {
          throw this.#sendError(err, request);
        }
        this.#written += request.length;
      }
    });
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#closed = true;
      if (!this.#connected) return;
      this.#connected = false;
      try {
        await this.#producer.disconnect();
      } catch (err) {
        throw new SinkError(`closing the producer of dead-letter topic ${this.topic} failed: ${message(err)}`, {
          cause: err,
          canRetry: false,
        });
      }
    });
  }

  async #connect(): Promise<void> {
    // A closed client never reopens (its producer is gone), so this must not be retried.
    if (this.#closed) throw new SinkError(`dead-letter sink for topic ${this.topic} is closed`, { canRetry: false });
    if (this.#connected) return;
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      const topics = await admin.listTopics();
      if (!topics.includes(this.topic) && this.#createLike) {
        const maxMessageBytes = await readTopicMaxMessageBytes(admin, this.#createLike.topic);
        // false: another worker created it first, which is just as good.
        const created = await admin.createTopics({
          topics: [{ topic: this.topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }] }],
        });
        if (created) this.#createLike.onCreated?.(maxMessageBytes);
      } else if (!topics.includes(this.topic)) {
        throw new SinkError(
          `dead-letter topic "${this.topic}" does not exist; create it first (with max.message.bytes at least that of the source topic), e.g. kafka-topics.sh --create --topic ${this.topic} --config max.message.bytes=<bytes>`,
          { canRetry: false },
        );
      }
      this.#maxRequestBytes = this.#configuredMaxBytes ?? (await readTopicMaxMessageBytes(admin, this.topic));
      await this.#producer.connect();
      this.#connected = true;
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(`connecting to dead-letter topic ${this.topic} failed: ${message(err)}`, { cause: err });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Groups letters into requests whose records fit in `maxRequestBytes` together. */
  *#requests(letters: readonly DeadLetter[]): Generator<DeadLetter[]> {
    const budget = this.#maxRequestBytes - BATCH_OVERHEAD;
    let request: DeadLetter[] = [];
    let bytes = 0;
    for (const letter of letters) {
      const size = recordBytes(letter);
      if (size > budget) {
        const { source, partition, offset } = letter.position;
        throw new SinkError(
          `dead letter for ${source}/${partition}/${offset} (${letter.reason}) is ${size} bytes, more than dead-letter topic ${this.topic} accepts (max.message.bytes ${this.#maxRequestBytes}); raise it, e.g. kafka-configs.sh --alter --entity-type topics --entity-name ${this.topic} --add-config max.message.bytes=${Math.max(2 * size, size + 2 * BATCH_OVERHEAD)}`,
          { canRetry: false },
        );
      }
      if (request.length > 0 && bytes + size > budget) {
        yield request;
        request = [];
        bytes = 0;
      }
      request.push(letter);
      bytes += size;
    }
    if (request.length > 0) yield request;
  }

  #sendError(err: unknown, request: readonly DeadLetter[]): SinkError {
    const type = kafkaErrorType(err);
    const what = `producing ${request.length} dead letter(s) to ${this.topic} failed`;
    if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') {
      return new SinkError(`${what}: the broker rejected them as too large (${type}); raise max.message.bytes of the topic (and message.max.bytes of the broker)`, {
        cause: err,
        canRetry: false,
      });
    }
    return new SinkError(`${what}: ${message(err)}`, { cause: err, canRetry: type === null || !PERMANENT_ERRORS.has(type) });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** The Kafka record for one dead letter (the bytes are shared, not copied). */
export function deadLetterToKafkaMessage(letter: DeadLetter): Message {
  const { position } = letter;
  const headers: IHeaders = {
    [DeadLetterHeaders.REASON]: letter.reason,
    [DeadLetterHeaders.DETAIL]: letter.detail,
    [DeadLetterHeaders.SOURCE_TOPIC]: position.source,
    [DeadLetterHeaders.SOURCE_PARTITION]: String(position.partition),
    [DeadLetterHeaders.SOURCE_OFFSET]: position.offset.toString(),
  };
  if (position.timestampMs !== null) headers[DeadLetterHeaders.SOURCE_TIMESTAMP] = String(position.timestampMs);
  return {
    key: letter.key ? asBuffer(letter.key) : null,
    // Never null, even for a tombstone: a null value on the dead-letter topic would read as a delete.
    value: asBuffer(letter.original),
    headers,
  };
}

function recordBytes(letter: DeadLetter): number {
  const { position } = letter;
  const headerBytes =
    Buffer.byteLength(letter.reason) +
    Buffer.byteLength(letter.detail) +
    Buffer.byteLength(position.source) +
    48 + // partition, offset and timestamp as decimal strings
    Object.values(DeadLetterHeaders).reduce((sum, name) => sum + name.length + 4, 0);
  return RECORD_OVERHEAD + letter.original.byteLength + (letter.key?.byteLength ?? 0) + headerBytes;
}

/**
 * A topic's `max.message.bytes` (the largest record batch it accepts), or Kafka's default
 * when it cannot be read. Shared with `textstream produce`.
 */
export async function readTopicMaxMessageBytes(admin: Admin, topic: string): Promise<number> {
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
    });
    const value = resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue;
    const bytes = Number(value);
    return Number.isSafeInteger(bytes) && bytes > BATCH_OVERHEAD ? bytes : KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
  } catch {
    // Reading configs may be denied (ACLs); the broker still enforces the real limit.
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
