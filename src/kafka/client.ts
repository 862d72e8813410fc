/**
 * Making kafkajs clients: the worker's shared client (its logs into ours, TLS and SASL
 * from the pipeline) and short-lived fast-failing ones for the first contact and
 * `textstream produce`.
 */
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSaslConfig, KafkaTlsConfig } from '../config/schema.js';
import { SourceError } from '../errors.js';
import { describeKafkaSecurity, explainSecurityFailure, resolveKafkaSecurity, type KafkaSecurityOptions } from './security.js';

/** Where a client connects and how it authenticates (`source.sasl`, `source.tls`). */
export interface KafkaConnectionOptions {
  brokers: readonly string[];
  clientId: string;
  logger: Logger;
  /** Secrets are referenced, not held: they are read from the environment or files here. */
  sasl: KafkaSaslConfig;
  tls: KafkaTlsConfig;
}

/** The pipeline settings errors name. */
const SECURITY_SETTINGS = { sasl: 'source.sasl', tls: 'source.tls' };

/**
 * One kafkajs client per worker, shared by the consumer, the admin and the dead-letter
 * producer. kafkajs' own logs go to our structured logger at warn and above. Throws a
 * ConfigError when a referenced secret or file cannot be read.
 */
export function makeKafkaClient(opts: KafkaConnectionOptions): Kafka {
  const security = resolveKafkaSecurity(opts);
  if (opts.sasl.mechanism === 'plain' && !opts.tls.enabled) {
    opts.logger.warn({ setting: 'source.sasl.mechanism' }, 'SASL PLAIN without TLS sends the password unencrypted; set source.tls.enabled on a network you do not trust');
  }
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    ...security,
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...fields } = entry.log;
      const log = { kafkajs: entry.namespace, ...fields };
      // The dead-letter producer caps its retries on purpose (so a write can fail and be
      // retried by the worker); kafkajs warns about that on every start.
      if (message.startsWith('Limiting retries for the idempotent producer')) opts.logger.debug(log, message);
      else if (entry.level === logLevel.ERROR) opts.logger.error(log, message);
      else opts.logger.warn(log, message);
    },
  });
}

/** Two attempts with a short backoff: a wrong address should fail in seconds. */
const FAST_FAIL_RETRY = { retries: 1, initialRetryTime: 250, maxRetryTime: 1000 };

/**
 * A client that gives up after two attempts of `connectionTimeoutMs` (for the first contact
 * and for `textstream produce`). kafkajs logs every retried hiccup as an error; what
 * survives the attempts is reported by the caller in one sentence, so kafkajs' own account
 * goes to --log-level debug.
 */
export function makeFastFailKafkaClient(opts: {
  clientId: string;
  brokers: readonly string[];
  security: KafkaSecurityOptions;
  connectionTimeoutMs: number;
  logger: Logger;
}): Kafka {
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    ...opts.security,
    connectionTimeout: opts.connectionTimeoutMs,
    retry: FAST_FAIL_RETRY,
    logLevel: logLevel.INFO,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...fields } = entry.log;
      opts.logger.debug({ kafkajs: entry.namespace, level: logLevel[entry.level], ...fields }, message);
    },
  });
}

export interface FirstContactOptions extends KafkaConnectionOptions {
  /** Where the addresses came from, for the error: `source.brokers`, `--brokers`. */
  setting: string;
  /** Per connection attempt. */
  connectionTimeoutMs?: number;
}

/**
 * The first contact with a cluster, on a short-lived client of its own: two attempts of
 * `connectionTimeoutMs`, so a wrong address fails within seconds with one sentence that
 * names it and `setting`, rather than after kafkajs' default retries (4 to 20 s of error
 * logs, then a message about whichever component happened to connect first). The shared
 * client keeps kafkajs' patient retries for the brief outages of a running cluster.
 * Returns the cluster's topics, so a caller can check its own exist before creating
 * anything.
 */
export async function listTopicsOnFirstContact(opts: FirstContactOptions): Promise<string[]> {
  const brokers = opts.brokers.join(',');
  // A missing secret is a configuration error, found before any network wait.
  const security = resolveKafkaSecurity(opts);
  opts.logger.debug({ brokers, security: describeKafkaSecurity(opts) }, 'first contact with Kafka');
  const admin = makeFastFailKafkaClient({ ...opts, security, connectionTimeoutMs: opts.connectionTimeoutMs ?? 3000 }).admin();
  try {
    await admin.connect();
    return await admin.listTopics();
  } catch (err) {
    const securityFailure = explainSecurityFailure(err, brokers, opts, SECURITY_SETTINGS);
    if (securityFailure) throw new SourceError(securityFailure.message, { cause: err, canRetry: securityFailure.canRetry });
    const reason = err instanceof Error ? err.message : String(err);
    throw new SourceError(`cannot reach Kafka at ${brokers} (${opts.setting}): ${reason}; is a broker listening there?`, {
      cause: err,
      canRetry: true,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
