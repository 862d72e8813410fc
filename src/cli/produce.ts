/**
 * `textstream produce`: loads a Parquet or JSONL file into a Kafka topic, with a progress
 * bar and a summary (the input is read by produce/readers.ts).
 */
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { loadPipeline } from '../config/load.js';
import { ConfigError, SinkError } from '../errors.js';
import { makeFastFailKafkaClient } from '../kafka/client.js';
import { DefaultPartitioner } from '../kafka/producer.js';
import { kafkaErrorType } from '../kafka/protocol-errors.js';
import { explainSecurityFailure, NO_KAFKA_SECURITY, resolveKafkaSecurity, type KafkaSecurityConfig } from '../kafka/security.js';
import { RECORD_BATCH_OVERHEAD, readTopicMaxMessageBytes } from '../kafka/topics.js';
import type { Kafka, Message, Producer } from '../kafka/types.js';
import { makeLogger } from './logger.js';
import { parseInteger } from './options.js';
import { PartitionStrategies, roundRobin, type PartitionStrategy } from './produce/partitioners.js';
import { openInput, ProduceFormats, type Input, type InputCounters, type Item, type ProduceFormat } from './produce/readers.js';
import { onShutdownSignal } from './signals.js';

export interface ProduceOptions {
  /** A `.parquet` file, or a `.jsonl` / `.ndjson` file with one message per line. */
  file: string;
  topic: string;
  brokers: readonly string[];
  /** Create the topic with this many partitions when it does not exist; null: it must exist. */
  createPartitions?: number | null;
  /** Parquet rows only: json → `{"id","text","label"}` values; text → the raw text bytes. */
  format: ProduceFormat;
  /** Stop after this many messages; null: the whole file. */
  limit: number | null;
  /** key: Kafka's default (murmur2 of the key, as the Java client); round-robin: one partition after another. */
  partitionsBy: PartitionStrategy;
  /** Parquet columns; label/id null when the file has none. */
  columns: { text: string; label: string | null; id: string | null };
  /** Messages per produce request (requests are also kept under the topic's max.message.bytes). */
  batchSize: number;
  /** Produce requests awaiting their acknowledgement at once. */
  maxInFlight: number;
  /** Per connection attempt; there are two attempts before giving up. */
  connectionTimeoutMs: number;
  /**
   * SASL and TLS as a pipeline's source.sasl / source.tls state them (secrets by
   * reference, read when connecting); `origin` (the pipeline file) names them in errors.
   * Absent: plaintext, no authentication.
   */
  security?: { config: KafkaSecurityConfig; origin: string };
  logger: Logger;
  signal?: AbortSignal;
  /** Called once the topic is checked: `total` is in rows (Parquet) or bytes (JSONL). */
  onStart?: (info: { total: number; unit: 'messages' | 'bytes' }) => void;
  /** Called after every acknowledged request. */
  onProgress?: (progress: ProduceProgress) => void;
}

export interface ProduceProgress {
  /** Messages acknowledged by the broker. */
  messages: number;
  /** Key and value bytes acknowledged. */
  bytes: number;
  /** How far into the input the acknowledged messages reach, in `onStart`'s unit. */
  done: number;
}

export interface ProduceSummary extends ProduceProgress {
  file: string;
  topic: string;
  /** From the first request to the last acknowledgement. */
  seconds: number;
  /** Parquet + json: rows whose text is not valid UTF-8, sent as their raw bytes. */
  rawTextRows: number;
  /** JSONL: empty lines, which are not messages. */
  emptyLines: number;
  /** Stopped by a signal before the input (or --limit) was exhausted. */
  aborted: boolean;
}

const DEFAULT_BROKERS = '127.0.0.1:9092';
/** Per record: lengths, attributes, varint deltas — generously. */
const RECORD_OVERHEAD = 64;

export function registerProduceCommand(program: Command): void {
  program
    .command('produce')
    .description(
      'Load a dataset into a Kafka topic: Parquet rows as JSON values {"id","text","label"} (or raw text), JSONL lines byte for byte. Prints a progress bar on a terminal and a summary.',
    )
    .argument('<file>', 'a .parquet file, or a .jsonl/.ndjson file (one message per line)')
    .requiredOption('--topic <topic>', 'the topic to write to')
    .option('--partitions <n>', 'create the topic with n partitions when it does not exist (else it must exist)', parsePositive)
    .option('--brokers <host:port,...>', 'bootstrap brokers, comma-separated', DEFAULT_BROKERS)
    .option(
      '--pipeline <pipeline.yaml>',
      "connect as this pipeline's Kafka source does: its source.brokers (unless --brokers is given) and its SASL and TLS settings",
    )
    .addOption(
      new Option('--format <format>', 'Parquet: json values {"id","text","label"}, or text (the value is the raw text bytes)')
        .choices(Object.values(ProduceFormats))
        .default(ProduceFormats.JSON),
    )
    .option('--limit <n>', 'stop after n messages', parseInteger)
    .addOption(
      new Option('--partitions-by <how>', 'key: murmur2 of the key (as the Java client); round-robin: one partition after another')
        .choices(Object.values(PartitionStrategies))
        .default(PartitionStrategies.KEY),
    )
    .option('--text-column <name>', 'Parquet text column', 'text')
    .option('--label-column <name>', 'Parquet label column', 'label')
    .option('--no-label-column', 'the Parquet file has no labels (label null)')
    .option('--id-column <name>', 'Parquet id column; the id is also the message key', 'id')
    .option('--no-id-column', 'the Parquet file has no ids (no keys; the worker uses topic/partition/offset)')
    .option('--batch-size <n>', 'messages per produce request', parsePositive, 500)
    .option('--max-in-flight <n>', 'produce requests awaiting their acknowledgement at once', parsePositive, 4)
    .option('--connection-timeout <ms>', 'per connection attempt (2 attempts)', parsePositive, 3000)
    .option('--json', 'no progress display; print the summary as one JSON object', false)
    .addHelpText(
      'after',
      `
Examples:
  $ textstream dataset spamassassin --out data/spamassassin.parquet
  $ textstream produce --topic mail --partitions 4 data/spamassassin.parquet
  $ textstream produce --topic mail --limit 1000 --partitions-by round-robin data/spamassassin.parquet
  $ textstream produce --topic mail-text --format text --no-label-column emails.parquet
  $ textstream produce --topic mail poison.jsonl        every line as it is, malformed JSON too
  $ KAFKA_SASL_PASSWORD=… textstream produce --pipeline pipelines/prod.yaml --topic mail data.parquet

A cluster that requires SASL (PLAIN, SCRAM-SHA-256/512) or TLS: give --pipeline the
pipeline file your workers run, and produce connects with its source.brokers,
source.sasl and source.tls (TEXTSTREAM_* overrides apply, as for \`run\`). The password
comes from the variable or file the pipeline names (passwordEnv, passwordFile), never
from the command line, where other users could read it in the process list.

Parquet rows become {"id","text","label"} JSON values keyed by id (--format text: the
value is the text's bytes). A row whose text is not valid UTF-8 cannot be JSON: it is
sent as its raw bytes, so the worker dead-letters it as invalid-utf8 just as replay does,
and the summary counts it. JSONL lines are sent byte for byte (empty lines are skipped);
the key is the line's "id" when the line parses as JSON.

Requests hold up to --batch-size messages and never more than the topic's
max.message.bytes; a single message above that limit stops the run (raise the topic's
max.message.bytes). Delivery is acknowledged by all in-sync replicas (acks=all).
Connecting gives up after 2 attempts of --connection-timeout each, so a wrong --brokers
fails in seconds instead of after kafkajs' default retries.

Exit codes: 0 ok; 1 broker unreachable, authentication failed, topic missing, a file that
is not Parquet, a send failed, or stopped by a signal (the summary says how far it got);
2 usage error (e.g. the file does not exist, a password variable is not set).`,
    )
    .action(async (file: string, opts: ProduceCommandOptions, command: Command) => {
      const logger = makeLogger(command.optsWithGlobals<{ logLevel: string }>().logLevel);
      const controller = new AbortController();
      const removeSignals = onShutdownSignal(controller, logger);
      const ui: { bar: cliProgress.SingleBar | null } = { bar: null };
      const startedAt = Date.now();
      try {
        const connection = await connectionFromOptions(opts, command.getOptionValueSource('brokers') === 'cli');
        const summary = await produceFile({
          file,
          topic: opts.topic,
          createPartitions: opts.partitions ?? null,
          ...connection,
          format: opts.format,
          limit: opts.limit ?? null,
          partitionsBy: opts.partitionsBy,
          columns: {
            text: opts.textColumn,
            label: opts.labelColumn === false ? null : opts.labelColumn,
            id: opts.idColumn === false ? null : opts.idColumn,
          },
          batchSize: opts.batchSize,
          maxInFlight: opts.maxInFlight,
          connectionTimeoutMs: opts.connectionTimeout,
          logger,
          signal: controller.signal,
          // JSONL progress is in bytes of the file (its line count is unknown up front).
          onStart: ({ total }) => {
            if (!process.stderr.isTTY || opts.json) return;
            ui.bar = new cliProgress.SingleBar(
              {
                stream: process.stderr,
                format: ` produce {bar} {percentage}% | {messages} messages | {rate} msg/s | eta {eta_formatted}`,
                hideCursor: true,
                etaBuffer: 20,
              },
              cliProgress.Presets.shades_classic,
            );
            ui.bar.start(total, 0, { messages: 0, rate: '0' });
          },
          onProgress: (p) => {
            const seconds = (Date.now() - startedAt) / 1000;
            ui.bar?.update(p.done, { messages: p.messages, rate: seconds > 0 ? (p.messages / seconds).toFixed(0) : '0' });
          },
        });
        ui.bar?.stop();
        ui.bar = null;
        process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : formatProduceSummary(summary));
        if (summary.aborted) process.exitCode = 1;
      } finally {
        ui.bar?.stop();
        removeSignals();
      }
    });
}

interface ProduceCommandOptions {
  topic: string;
  partitions?: number;
  brokers: string;
  pipeline?: string;
  format: ProduceFormat;
  limit?: number;
  partitionsBy: PartitionStrategy;
  textColumn: string;
  labelColumn: string | false;
  idColumn: string | false;
  batchSize: number;
  maxInFlight: number;
  connectionTimeout: number;
  json: boolean;
}

/** Brokers and security from --brokers, or from --pipeline's Kafka source. */
async function connectionFromOptions(
  opts: ProduceCommandOptions,
  brokersGiven: boolean,
): Promise<Pick<ProduceOptions, 'brokers' | 'security'>> {
  if (opts.pipeline === undefined) return { brokers: parseBrokers(opts.brokers) };
  const config = await loadPipeline(opts.pipeline);
  if (config.source.type !== 'kafka') {
    throw new ConfigError(`${opts.pipeline}: source.type`, `--pipeline needs a kafka source, this pipeline has "${config.source.type}"`);
  }
  return {
    brokers: brokersGiven ? parseBrokers(opts.brokers) : config.source.brokers,
    security: { config: { sasl: config.source.sasl, tls: config.source.tls }, origin: opts.pipeline },
  };
}

/**
 * Loads a Parquet or JSONL file into a topic (see the command's help for the format).
 * Requests are sent with at most `maxInFlight` awaiting acknowledgement; it returns after
 * the last acknowledgement. Fails with a SinkError naming the problem when the broker
 * cannot be reached, the topic is missing, a message exceeds the topic's size limit or a
 * send fails after kafkajs' retries; with a ConfigError on bad options.
 */
export async function produceFile(options: ProduceOptions): Promise<ProduceSummary> {
  const { topic } = options;
  const signal = options.signal ?? new AbortController().signal;
  if (!topic) throw new ConfigError('--topic', 'must not be empty');
  if (options.brokers.length === 0) throw new ConfigError('--brokers', 'name at least one broker (host:port)');
  const counters: InputCounters = { rawTextRows: 0, emptyLines: 0 };
  // The input first: a wrong file name is found before any network wait.
  const input = await openInput(options, counters);
  const brokers = options.brokers.join(',');
  const kafka = makeClient(options);
  let producer: Producer | null = null;
  try {
    const maxMessageBytes = await checkTopic(kafka, topic, brokers, options);
    const budget = maxMessageBytes - RECORD_BATCH_OVERHEAD;
    producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: options.partitionsBy === PartitionStrategies.ROUND_ROBIN ? roundRobin : DefaultPartitioner,
      retry: { retries: 5 },
    });
    await producer.connect().catch((err: unknown) => {
      throw unreachable(err, brokers, options.connectionTimeoutMs, options.security);
    });
    options.onStart?.({ total: options.limit === null || input.kind === 'jsonl' ? input.total : Math.min(options.limit, input.total), unit: input.kind === 'parquet' ? 'messages' : 'bytes' });

    const acked: ProduceProgress = { messages: 0, bytes: 0, done: 0 };
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    const send = async (messages: Message[], bytes: number, done: number): Promise<void> => {
      while (inFlight.size >= options.maxInFlight) await Promise.race(inFlight);
      if (failure !== null) return;
      const request: Promise<void> = producer!
        .send({ topic, acks: -1, messages })
        .then(
          () => {
            acked.messages += messages.length;
            acked.bytes += bytes;
            acked.done = Math.max(acked.done, done);
            options.onProgress?.({ ...acked });
          },
          (err: unknown) => {
            failure ??= err;
          },
        )
        .finally(() => inFlight.delete(request));
      inFlight.add(request);
    };

    const startedAt = performance.now();
    let queued = 0;
    let pending: Message[] = [];
    let pendingBytes = 0; // key and value bytes, for the summary
    let pendingSize = 0; // the same with per-record overhead, against the topic's limit
    let pendingDone = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const messages = pending;
      const bytes = pendingBytes;
      pending = [];
      pendingBytes = 0;
      pendingSize = 0;
      await send(messages, bytes, pendingDone);
    };
    const limit = options.limit ?? Infinity;
    try {
      reading: for await (const items of input.items(signal)) {
        for (const item of items) {
          if (queued >= limit || signal.aborted || failure !== null) break reading;
          const bytes = (item.key?.byteLength ?? 0) + (item.value?.byteLength ?? 0);
          const size = bytes + RECORD_OVERHEAD;
          if (size > budget) throw tooLarge(item, input.kind, bytes, topic, maxMessageBytes);
          if (pending.length >= options.batchSize || pendingSize + size > budget) await flush();
          pending.push({ key: item.key, value: item.value });
          pendingBytes += bytes;
          pendingSize += size;
          pendingDone = item.done;
          queued++;
        }
        if (queued >= limit) break;
      }
      await flush();
    } catch (err) {
      failure ??= err;
    } finally {
      // Whatever happened, every request sent is awaited before the producer goes away.
      await Promise.all(inFlight);
    }
    if (failure !== null) {
      const error = failure instanceof SinkError ? failure : sendFailed(failure, topic, brokers);
      // Say how far it got: the topic now holds that many messages from this run.
      throw new SinkError(`${error.message}\n(${acked.messages} message(s) of this run were acknowledged before that)`, {
        cause: error.cause ?? error,
        canRetry: error.canRetry,
      });
    }
    const seconds = (performance.now() - startedAt) / 1000;
    return {
      file: options.file,
      topic,
      ...acked,
      seconds,
      rawTextRows: counters.rawTextRows,
      emptyLines: counters.emptyLines,
      aborted: signal.aborted && queued < limit,
    };
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await input.close();
  }
}

/** The end-of-run summary: one line, plus a note for rows sent as raw bytes or lines skipped. */
export function formatProduceSummary(s: ProduceSummary): string {
  const rate = s.seconds > 0 ? s.messages / s.seconds : 0;
  const lines = [
    `produced ${s.messages.toLocaleString('en-US')} messages (${formatBytes(s.bytes)}) from ${s.file} to topic ${s.topic} in ${s.seconds.toFixed(2)} s: ${rate.toFixed(0)} msg/s${s.aborted ? ' (stopped early)' : ''}`,
  ];
  if (s.rawTextRows > 0) {
    lines.push(`  ${s.rawTextRows} row(s) with text that is not valid UTF-8 were sent as raw bytes (a json worker dead-letters them as invalid-utf8)`);
  }
  if (s.emptyLines > 0) lines.push(`  ${s.emptyLines} empty line(s) skipped`);
  return `${lines.join('\n')}\n`;
}

/** A fast-failing client (two attempts, short backoff): a wrong --brokers fails in seconds. */
function makeClient(options: ProduceOptions): Kafka {
  const { security } = options;
  return makeFastFailKafkaClient({
    clientId: 'textstream-produce',
    brokers: options.brokers,
    // A variable that is not set or a file that cannot be read: a ConfigError naming the field.
    security: security ? resolveKafkaSecurity(security.config, process.env, `${security.origin}: source`) : {},
    connectionTimeoutMs: options.connectionTimeoutMs,
    logger: options.logger,
  });
}

/**
 * Checks the broker answers and the topic exists, creating it with `createPartitions`
 * partitions if asked; returns the topic's max.message.bytes.
 */
async function checkTopic(kafka: Kafka, topic: string, brokers: string, options: ProduceOptions): Promise<number> {
  const createPartitions = options.createPartitions ?? null;
  const { logger } = options;
  const admin = kafka.admin();
  try {
    let topics: string[];
    try {
      await admin.connect();
      topics = await admin.listTopics();
    } catch (err) {
      throw unreachable(err, brokers, null, options.security);
    }
    if (!topics.includes(topic) && createPartitions !== null) {
      // false: someone else created it in the meantime, which is just as good.
      if (await admin.createTopics({ topics: [{ topic, numPartitions: createPartitions }] })) {
        logger.info({ topic, partitions: createPartitions }, 'created the topic');
      }
    } else if (!topics.includes(topic)) {
      throw new SinkError(
        `topic "${topic}" does not exist on ${brokers}; create it with --partitions <n>, or with your cluster's tooling, e.g.\n  kafka-topics.sh --bootstrap-server ${brokers} --create --topic ${topic} --partitions 4`,
        { canRetry: false },
      );
    }
    return await readTopicMaxMessageBytes(admin, topic);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function unreachable(err: unknown, brokers: string, connectionTimeoutMs: number | null, security: ProduceOptions['security']): SinkError {
  const settings = security
    ? { sasl: `source.sasl in ${security.origin}`, tls: `source.tls in ${security.origin}` }
    : { sasl: 'source.sasl of a --pipeline', tls: 'source.tls of a --pipeline' };
  const failure = explainSecurityFailure(err, brokers, security?.config ?? NO_KAFKA_SECURITY, settings);
  if (failure) return new SinkError(failure.message, { cause: err, canRetry: failure.canRetry });
  const timeout = connectionTimeoutMs === null ? '' : `; gave up after 2 attempts of ${connectionTimeoutMs} ms`;
  return new SinkError(`cannot reach Kafka at ${brokers} (${describe(err)}); is a broker listening there? (--brokers)${timeout}`, {
    cause: err,
  });
}

function tooLarge(item: Item, kind: Input['kind'], bytes: number, topic: string, maxMessageBytes: number): SinkError {
  const where = kind === 'parquet' ? `row index ${item.ordinal}` : `line ${item.ordinal}`;
  return new SinkError(
    `${where} is a ${bytes}-byte message, more than topic ${topic} accepts (max.message.bytes ${maxMessageBytes}); raise it, e.g. kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=${2 * bytes}`,
    { canRetry: false },
  );
}

function sendFailed(err: unknown, topic: string, brokers: string): SinkError {
  const type = kafkaErrorType(err);
  if (type === 'UNKNOWN_TOPIC_OR_PARTITION') {
    return new SinkError(`topic "${topic}" does not exist on ${brokers} (any more); create it first`, { cause: err, canRetry: false });
  }
  if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') {
    return new SinkError(`the broker rejected a request to ${topic} as too large (${type}); raise max.message.bytes of the topic or lower --batch-size`, {
      cause: err,
      canRetry: false,
    });
  }
  return new SinkError(`producing to topic ${topic} failed: ${describe(err)}`, { cause: err });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `host:port,…`; an entry that is not host:port with a port 1–65535 is a usage error. */
function parseBrokers(value: string): string[] {
  const brokers = value
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  for (const broker of brokers) {
    const port = Number(/:(\d+)$/.exec(broker)?.[1]);
    if (!/^[^\s:]+:\d+$|^\[[0-9a-fA-F:.]+\]:\d+$/.test(broker) || !(port >= 1 && port <= 65_535)) {
      throw new ConfigError('--brokers', `"${broker}" is not host:port (a port 1–65535), e.g. 127.0.0.1:9092`);
    }
  }
  return brokers;
}

function parsePositive(value: string): number {
  const n = parseInteger(value);
  if (n === 0) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  return n;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}
