import { SinkError } from '../errors.js';
import { makeIdempotentProducer } from '../kafka/producer.js';
import { canRetryKafkaError, isTooLargeError, kafkaErrorType } from '../kafka/protocol-errors.js';
import { ensureTopic, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, readTopicMaxMessageBytes, RECORD_BATCH_OVERHEAD } from '../kafka/topics.js';
import type { IHeaders, Kafka, Message, Producer, RetryOptions } from '../kafka/types.js';
import type { DeadLetter } from '../message.js';
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

/** Per record: length, attributes, varint deltas, header counts — generously. */
const RECORD_OVERHEAD = 64;

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
    if (options.maxRequestBytes !== undefined && !(Number.isInteger(options.maxRequestBytes) && options.maxRequestBytes > RECORD_BATCH_OVERHEAD)) {
      throw new SinkError(`maxRequestBytes must be an integer > ${RECORD_BATCH_OVERHEAD}, got ${options.maxRequestBytes}`, { canRetry: false });
    }
    this.topic = options.topic;
    this.#kafka = options.kafka;
    this.#configuredMaxBytes = options.maxRequestBytes;
    this.#createLike = options.createLike;
    // Idempotent, one request in flight, bounded retries: otherwise `write` would never fail.
    this.#producer = makeIdempotentProducer(options.kafka, options.retry);
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
      const createLike = this.#createLike;
      let maxMessageBytes = 0;
      const presence = await ensureTopic(
        admin,
        this.topic,
        createLike
          ? async () => {
              maxMessageBytes = await readTopicMaxMessageBytes(admin, createLike.topic);
              return { numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }] };
            }
          : null,
      );
      if (presence === 'created') createLike?.onCreated?.(maxMessageBytes);
      else if (presence === 'missing') {
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
    const budget = this.#maxRequestBytes - RECORD_BATCH_OVERHEAD;
    let request: DeadLetter[] = [];
    let bytes = 0;
    for (const letter of letters) {
      const size = recordBytes(letter);
      if (size > budget) {
        const { source, partition, offset } = letter.position;
        throw new SinkError(
          `dead letter for ${source}/${partition}/${offset} (${letter.reason}) is ${size} bytes, more than dead-letter topic ${this.topic} accepts (max.message.bytes ${this.#maxRequestBytes}); raise it, e.g. kafka-configs.sh --alter --entity-type topics --entity-name ${this.topic} --add-config max.message.bytes=${Math.max(2 * size, size + 2 * RECORD_BATCH_OVERHEAD)}`,
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
    if (isTooLargeError(type)) {
      return new SinkError(`${what}: the broker rejected them as too large (${type}); raise max.message.bytes of the topic (and message.max.bytes of the broker)`, {
        cause: err,
        canRetry: false,
      });
    }
    return new SinkError(`${what}: ${message(err)}`, { cause: err, canRetry: canRetryKafkaError(type) });
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

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
