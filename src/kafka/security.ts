/**
 * Kafka TLS and SASL: a pipeline's security settings (secrets by reference) resolved into
 * client options at startup, described without secrets, and failed connections explained.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import type { KafkaSaslConfig, KafkaTlsConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/** A Kafka source's security settings as a pipeline states them (secrets by reference). */
export interface KafkaSecurityConfig {
  sasl: KafkaSaslConfig;
  tls: KafkaTlsConfig;
}

/** No SASL, no TLS: what a pipeline without `source.sasl` / `source.tls` means. */
export const NO_KAFKA_SECURITY: KafkaSecurityConfig = Object.freeze({
  sasl: Object.freeze({ mechanism: null, username: null, passwordEnv: null, passwordFile: null }),
  tls: Object.freeze({
    enabled: false,
    caFile: null,
    certFile: null,
    keyFile: null,
    keyPasswordEnv: null,
    keyPasswordFile: null,
    rejectUnauthorized: true,
    servername: null,
  }),
});

/** The kafkajs client options the settings resolve to. Holds secrets: never log it. */
export interface KafkaSecurityOptions {
  sasl?: SASLOptions;
  ssl?: ConnectionOptions;
}

/**
 * Reads the secrets and files the settings refer to, at startup, into kafkajs' `sasl` and
 * `ssl` options. A variable that is unset or empty, or a file that cannot be read, is a
 * ConfigError naming the field (`<prefix>.sasl.passwordEnv`) and the variable or file,
 * never a value. `prefix` says where the settings came from in errors.
 */
export function resolveKafkaSecurity(
  config: KafkaSecurityConfig,
  env: NodeJS.ProcessEnv = process.env,
  prefix = 'source',
): KafkaSecurityOptions {
  const options: KafkaSecurityOptions = {};
  const { sasl, tls } = config;
  if (sasl.mechanism !== null) {
    const field = `${prefix}.sasl`;
    if (sasl.username === null) throw new ConfigError(`${field}.username`, `required with sasl.mechanism ${sasl.mechanism}`);
    const password = readSecret(sasl.passwordEnv, sasl.passwordFile, `${field}.passwordEnv`, `${field}.passwordFile`, 'the SASL password', env);
    if (password === null) throw new ConfigError(`${field}.passwordEnv`, 'name the environment variable (passwordEnv) or the file (passwordFile) that holds the password');
    options.sasl = { mechanism: sasl.mechanism, username: sasl.username, password };
  }
  if (tls.enabled) {
    const field = `${prefix}.tls`;
    const ssl: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
    if (tls.caFile !== null) ssl.ca = [readPem(tls.caFile, `${field}.caFile`)];
    if (tls.certFile !== null) ssl.cert = readPem(tls.certFile, `${field}.certFile`);
    if (tls.keyFile !== null) ssl.key = readPem(tls.keyFile, `${field}.keyFile`);
    const passphrase = readSecret(tls.keyPasswordEnv, tls.keyPasswordFile, `${field}.keyPasswordEnv`, `${field}.keyPasswordFile`, "the key's passphrase", env);
    if (passphrase !== null) ssl.passphrase = passphrase;
    if (tls.servername !== null) ssl.servername = tls.servername;
    options.ssl = ssl;
  }
  return options;
}

/**
 * For logs and errors, with no secret in it: `SASL SCRAM-SHA-256 as "worker" (password
 * from $KAFKA_PASSWORD), TLS` / `no SASL, no TLS`.
 */
export function describeKafkaSecurity(config: KafkaSecurityConfig): string {
  const { sasl, tls } = config;
  const saslText = sasl.mechanism === null ? 'no SASL' : `SASL ${sasl.mechanism.toUpperCase()} as "${sasl.username ?? ''}" (password from ${passwordSource(sasl)})`;
  return `${saslText}, ${tls.enabled ? 'TLS' : 'no TLS'}`;
}

function passwordSource(sasl: KafkaSecurityConfig['sasl']): string {
  return sasl.passwordEnv !== null ? `$${sasl.passwordEnv}` : (sasl.passwordFile ?? 'nowhere');
}

export interface SecurityFailure {
  message: string;
  /** A rejected password stays rejected; a TLS or network problem may pass. */
  canRetry: boolean;
}

/**
 * A first connection that failed because of authentication or TLS, explained in one
 * sentence naming the settings to check (`settings`: what to call source.sasl and
 * source.tls in the message); null for other failures (e.g. nothing listening). kafkajs'
 * reasons name the mechanism, never the password; neither does this.
 */
export function explainSecurityFailure(
  err: unknown,
  brokers: string,
  config: KafkaSecurityConfig,
  settings: { sasl: string; tls: string },
): SecurityFailure | null {
  const chain = errorChain(err);
  const reason = chain[0]?.message ?? String(err);
  const { sasl, tls } = config;
  if (sasl.mechanism !== null && chain.some((e) => e.name === 'KafkaJSSASLAuthenticationError')) {
    return {
      message: `Kafka at ${brokers} rejected SASL ${sasl.mechanism.toUpperCase()} authentication as "${sasl.username ?? ''}" (${settings.sasl}; password from ${passwordSource(sasl)}): ${reason}; check the user name, the password and that the broker enables this mechanism`,
      canRetry: false,
    };
  }
  if (sasl.mechanism !== null && /SASL state|UNSUPPORTED_SASL_MECHANISM/i.test(reason)) {
    return {
      message: `cannot authenticate to Kafka at ${brokers}: ${reason}; that listener does not take SASL: use the broker's SASL listener, or unset ${settings.sasl}.mechanism`,
      canRetry: false,
    };
  }
  if (sasl.mechanism === null && /closed connection/i.test(reason)) {
    return {
      message: `cannot reach Kafka at ${brokers}: ${reason}; the broker closed the connection: does its listener require SASL (${settings.sasl}) or TLS (${settings.tls})?`,
      canRetry: true,
    };
  }
  if (tls.enabled && /disconnected before secure TLS connection|wrong version number|EPROTO/i.test(reason)) {
    return {
      message: `cannot reach Kafka at ${brokers} over TLS: ${reason}; is that a TLS listener (SSL or SASL_SSL)? Else unset ${settings.tls}.enabled`,
      canRetry: true,
    };
  }
  if (tls.enabled && /certificate|self[- ]signed|altnames|hostname|decrypt|PEM|key values mismatch/i.test(reason)) {
    return {
      message: `cannot reach Kafka at ${brokers} over TLS: ${reason}; check ${settings.tls}: caFile (the CA that signed the brokers' certificates), servername, certFile/keyFile and the key's passphrase`,
      canRetry: false,
    };
  }
  return null;
}

/** The error and its causes (kafkajs wraps retried failures), outermost first. */
function errorChain(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 5; ) {
    chain.push(e);
    const wrapped = e as Error & { originalError?: unknown };
    e = wrapped.cause ?? wrapped.originalError;
  }
  return chain;
}

/** The secret from the variable or the file (one trailing newline dropped); null when neither is set. */
function readSecret(
  variable: string | null,
  file: string | null,
  variableField: string,
  fileField: string,
  what: string,
  env: NodeJS.ProcessEnv,
): string | null {
  if (variable !== null) {
    const value = env[variable];
    if (value === undefined) throw new ConfigError(variableField, `the environment variable ${variable} is not set (it must hold ${what})`);
    if (value === '') throw new ConfigError(variableField, `the environment variable ${variable} is empty (it must hold ${what})`);
    return value;
  }
  if (file !== null) {
    const value = readText(file, fileField).replace(/\r?\n$/, '');
    if (value === '') throw new ConfigError(fileField, `${file} is empty (it must hold ${what})`);
    return value;
  }
  return null;
}

function readPem(file: string, field: string): string {
  const text = readText(file, field);
  // Node would only say "unsupported" or "no start line" when connecting; say which file.
  if (!text.includes('-----BEGIN ')) throw new ConfigError(field, `${file} is not a PEM file (no "-----BEGIN" line)`);
  return text;
}

function readText(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(field, `cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code})`, { cause });
  }
}
