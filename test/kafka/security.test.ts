/**
 * Kafka SASL / TLS settings: what the schema accepts (secrets only by reference), how
 * src/kafka/security.ts resolves them into kafkajs options, and that no secret
 * reaches an error message or `config show`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { applyEnvOverrides } from '../../src/config/env.js';
import { parsePipeline } from '../../src/config/load.js';
import type { KafkaSourceConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { describeKafkaSecurity, explainSecurityFailure, resolveKafkaSecurity, type KafkaSecurityConfig } from '../../src/kafka/security.js';
import { runCli, tempDir } from '../helpers/cli.js';

const SECRET = 's3cr3t-Pa55word!';
const base = { name: 'k', source: { type: 'kafka', topic: 't', groupId: 'g' } };

function kafkaSource(source: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): KafkaSourceConfig {
  const { raw, applied } = applyEnvOverrides({ ...base, source: { ...base.source, ...source } }, env);
  const config = parsePipeline(raw, 'x.yaml', applied);
  assert.ok(config.source.type === 'kafka');
  return config.source;
}

function rejects(source: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(() => kafkaSource(source), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(SECRET), 'the error quotes no secret');
    return true;
  });
}

const scram = { mechanism: 'scram-sha-256', username: 'worker', passwordEnv: 'KAFKA_PASSWORD' };

test('should default to no SASL and no TLS, with certificates verified once TLS is on', () => {
  const source = kafkaSource({});
  assert.deepEqual(source.sasl, { mechanism: null, username: null, passwordEnv: null, passwordFile: null });
  assert.equal(source.tls.enabled, false);
  assert.equal(source.tls.rejectUnauthorized, true);
  assert.deepEqual(resolveKafkaSecurity(source), {}, 'kafkajs gets neither sasl nor ssl');
  assert.equal(kafkaSource({ tls: { enabled: true } }).tls.rejectUnauthorized, true);
});

test('should accept each SASL mechanism with the password by environment variable or file', () => {
  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
    assert.equal(kafkaSource({ sasl: { ...scram, mechanism } }).sasl.mechanism, mechanism);
  }
  assert.equal(kafkaSource({ sasl: { mechanism: 'plain', username: 'u', passwordFile: '/run/secrets/kafka' } }).sasl.passwordFile, '/run/secrets/kafka');
});

test('should reject a literal password in the pipeline, saying to use passwordEnv or passwordFile', () => {
  rejects({ sasl: { ...scram, passwordEnv: null, password: SECRET } }, /^x\.yaml: source\.sasl\.password: a password is not accepted in the pipeline; name the environment variable .*\(passwordEnv\) or the file \(passwordFile\)/);
  rejects({ tls: { enabled: true, keyFile: 'k.pem', certFile: 'c.pem', keyPassword: SECRET } }, /source\.tls\.keyPassword: a password is not accepted.*keyPasswordEnv/);
  // A password written where a variable name belongs is refused without being echoed.
  rejects({ sasl: { ...scram, passwordEnv: SECRET } }, /source\.sasl\.passwordEnv: must be an environment variable name/);
});

test('should reject incomplete or contradictory SASL and TLS settings, naming the field', () => {
  rejects({ sasl: { mechanism: 'scram-sha-512', passwordEnv: 'P' } }, /source\.sasl\.username: required with sasl\.mechanism scram-sha-512/);
  rejects({ sasl: { mechanism: 'plain', username: 'u' } }, /source\.sasl\.passwordEnv: required with sasl\.mechanism plain: name the environment variable \(passwordEnv\) or the file \(passwordFile\)/);
  rejects({ sasl: { ...scram, passwordFile: 'f' } }, /source\.sasl\.passwordFile: give passwordEnv or passwordFile, not both/);
  rejects({ sasl: { username: 'u' } }, /source\.sasl\.username: has no effect without sasl\.mechanism/);
  rejects({ sasl: { mechanism: 'gssapi' } }, /source\.sasl\.mechanism: Invalid option/);
  rejects({ sasl: { ...scram, passwordEnv: 'TEXTSTREAM_KAFKA_PASSWORD' } }, /source\.sasl\.passwordEnv: TEXTSTREAM_ variables are pipeline overrides/);
  rejects({ tls: { caFile: 'ca.pem' } }, /source\.tls\.caFile: has no effect unless tls\.enabled is true/);
  rejects({ tls: { rejectUnauthorized: false } }, /source\.tls\.rejectUnauthorized: has no effect unless tls\.enabled/);
  rejects({ tls: { enabled: true, certFile: 'c.pem' } }, /source\.tls\.keyFile: mutual TLS needs both certFile and keyFile/);
  rejects({ tls: { enabled: true, keyPasswordEnv: 'P' } }, /source\.tls\.keyPasswordEnv: a key passphrase needs tls\.keyFile/);
});

test('should set every SASL and TLS field from TEXTSTREAM_SOURCE_SASL_* and TEXTSTREAM_SOURCE_TLS_* variables', () => {
  const source = kafkaSource(
    {},
    {
      TEXTSTREAM_SOURCE_SASL_MECHANISM: 'scram-sha-512',
      TEXTSTREAM_SOURCE_SASL_USERNAME: 'worker',
      TEXTSTREAM_SOURCE_SASL_PASSWORD_ENV: 'KAFKA_PASSWORD',
      TEXTSTREAM_SOURCE_TLS_ENABLED: 'true',
      TEXTSTREAM_SOURCE_TLS_CA_FILE: '/etc/kafka/ca.pem',
      TEXTSTREAM_SOURCE_TLS_REJECT_UNAUTHORIZED: 'false',
      TEXTSTREAM_SOURCE_TLS_SERVERNAME: 'kafka.internal',
    },
  );
  assert.deepEqual(source.sasl, { mechanism: 'scram-sha-512', username: 'worker', passwordEnv: 'KAFKA_PASSWORD', passwordFile: null });
  assert.equal(source.tls.caFile, '/etc/kafka/ca.pem');
  assert.equal(source.tls.rejectUnauthorized, false);
  assert.equal(source.tls.servername, 'kafka.internal');
  // The file's mechanism stays unless overridden; the file may hold the rest.
  assert.equal(kafkaSource({ sasl: scram }, { TEXTSTREAM_SOURCE_SASL_USERNAME: 'other' }).sasl.username, 'other');
});

test('should resolve the SASL password from the named variable or file into kafkajs options', async (t) => {
  const source = kafkaSource({ sasl: scram });
  assert.deepEqual(resolveKafkaSecurity(source, { KAFKA_PASSWORD: SECRET }).sasl, { mechanism: 'scram-sha-256', username: 'worker', password: SECRET });
  const dir = await tempDir(t);
  const file = path.join(dir, 'password');
  await writeFile(file, `${SECRET}\n`);
  const fromFile = kafkaSource({ sasl: { mechanism: 'plain', username: 'u', passwordFile: file } });
  assert.deepEqual(resolveKafkaSecurity(fromFile, {}).sasl, { mechanism: 'plain', username: 'u', password: SECRET }, 'one trailing newline is not part of it');
});

test('should fail with a ConfigError naming the field and the variable or file when the secret is missing', async (t) => {
  const missing = (config: KafkaSecurityConfig, env: NodeJS.ProcessEnv, pattern: RegExp) =>
    assert.throws(() => resolveKafkaSecurity(config, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, pattern);
      return true;
    });
  const source = kafkaSource({ sasl: scram });
  missing(source, {}, /^source\.sasl\.passwordEnv: the environment variable KAFKA_PASSWORD is not set \(it must hold the SASL password\)$/);
  missing(source, { KAFKA_PASSWORD: '' }, /^source\.sasl\.passwordEnv: the environment variable KAFKA_PASSWORD is empty/);
  const dir = await tempDir(t);
  const absent = path.join(dir, 'absent');
  missing(kafkaSource({ sasl: { ...scram, passwordEnv: null, passwordFile: absent } }), {}, new RegExp(`^source\\.sasl\\.passwordFile: cannot read ${absent} \\(no such file\\)$`));
  const empty = path.join(dir, 'empty');
  await writeFile(empty, '\n');
  missing(kafkaSource({ sasl: { ...scram, passwordEnv: null, passwordFile: empty } }), {}, /^source\.sasl\.passwordFile: .*empty is empty/);
  const notPem = path.join(dir, 'ca.txt');
  await writeFile(notPem, 'hello');
  missing(kafkaSource({ tls: { enabled: true, caFile: notPem } }), {}, /^source\.tls\.caFile: .*ca\.txt is not a PEM file/);
  missing(kafkaSource({ tls: { enabled: true, caFile: absent } }), {}, /^source\.tls\.caFile: cannot read .*absent \(no such file\)/);
  const tlsKey = kafkaSource({ tls: { enabled: true, certFile: notPem, keyFile: notPem, keyPasswordEnv: 'KEY_PASS' } });
  missing(tlsKey, {}, /^source\.tls\.certFile: .*not a PEM file/);
  // The prefix says where the settings came from (produce --pipeline names its file).
  assert.throws(() => resolveKafkaSecurity(source, {}, 'p.yaml: source'), /^ConfigError: p\.yaml: source\.sasl\.passwordEnv: /);
});

test('should resolve TLS files and the key passphrase into kafkajs ssl options', async (t) => {
  const dir = await tempDir(t);
  const pem = (name: string) => path.join(dir, name);
  await writeFile(pem('ca.pem'), '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
  await writeFile(pem('client.pem'), '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
  await writeFile(pem('client.key'), '-----BEGIN ENCRYPTED PRIVATE KEY-----\nkey\n-----END ENCRYPTED PRIVATE KEY-----\n');
  const source = kafkaSource({
    tls: { enabled: true, caFile: pem('ca.pem'), certFile: pem('client.pem'), keyFile: pem('client.key'), keyPasswordEnv: 'KEY_PASS', servername: 'kafka.internal' },
  });
  const { ssl, sasl } = resolveKafkaSecurity(source, { KEY_PASS: SECRET });
  assert.equal(sasl, undefined);
  assert.deepEqual(ssl, {
    rejectUnauthorized: true,
    ca: ['-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n'],
    cert: '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n',
    key: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nkey\n-----END ENCRYPTED PRIVATE KEY-----\n',
    passphrase: SECRET,
    servername: 'kafka.internal',
  });
  assert.throws(() => resolveKafkaSecurity(source, {}), /source\.tls\.keyPasswordEnv: the environment variable KEY_PASS is not set \(it must hold the key's passphrase\)/);
  assert.deepEqual(resolveKafkaSecurity(kafkaSource({ tls: { enabled: true, rejectUnauthorized: false } })).ssl, { rejectUnauthorized: false });
});

test('should explain a rejected login naming the mechanism, the user and where the password came from, never the password', () => {
  const source = kafkaSource({ sasl: scram });
  const settings = { sasl: 'source.sasl', tls: 'source.tls' };
  // What kafkajs throws (its reason names the mechanism only).
  const rejected = Object.assign(new Error('SASL SCRAM SHA256 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256'), {
    name: 'KafkaJSSASLAuthenticationError',
  });
  const failure = explainSecurityFailure(rejected, '127.0.0.1:9096', source, settings);
  assert.ok(failure);
  assert.equal(failure.canRetry, false);
  assert.match(failure.message, /^Kafka at 127\.0\.0\.1:9096 rejected SASL SCRAM-SHA-256 authentication as "worker" \(source\.sasl; password from \$KAFKA_PASSWORD\): SASL SCRAM SHA256 authentication failed/);
  // SASL against a listener without it: the broker answers the handshake with a state error.
  const plainListener = explainSecurityFailure(new Error('Request is not valid given the current SASL state'), 'b:1', source, settings);
  assert.match(plainListener?.message ?? '', /that listener does not take SASL: use the broker's SASL listener, or unset source\.sasl\.mechanism$/);
  // No SASL against a listener that requires it: kafkajs only sees the connection close.
  const closed = explainSecurityFailure(new Error('Closed connection'), 'b:1', kafkaSource({}), settings);
  assert.match(closed?.message ?? '', /does its listener require SASL \(source\.sasl\) or TLS \(source\.tls\)\?/);
  const untrusted = explainSecurityFailure(new Error('Connection error: unable to verify the first certificate'), 'b:1', kafkaSource({ tls: { enabled: true } }), settings);
  assert.match(untrusted?.message ?? '', /over TLS: Connection error: unable to verify the first certificate; check source\.tls: caFile/);
  assert.equal(explainSecurityFailure(new Error('connect ECONNREFUSED 127.0.0.1:1'), 'b:1', source, settings), null, 'not a security problem');
  assert.equal(describeKafkaSecurity(source), 'SASL SCRAM-SHA-256 as "worker" (password from $KAFKA_PASSWORD), no TLS');
});

test('should show passwordEnv names in `config show`, never the secret it points to', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'k.yaml');
  await writeFile(file, `name: k\nsource:\n  type: kafka\n  topic: t\n  groupId: g\n  sasl:\n    mechanism: scram-sha-512\n    username: worker\n    passwordEnv: KAFKA_PASSWORD\n`);
  const shown = await runCli(['config', 'show', file], dir, { KAFKA_PASSWORD: SECRET });
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /passwordEnv: KAFKA_PASSWORD/);
  assert.ok(!shown.stdout.includes(SECRET) && !shown.stderr.includes(SECRET), 'the secret is not printed');
  await writeFile(file, `name: k\nsource:\n  type: kafka\n  topic: t\n  groupId: g\n  sasl:\n    mechanism: plain\n    username: worker\n    password: ${SECRET}\n`);
  const literal = await runCli(['config', 'show', file], dir);
  assert.equal(literal.code, 2);
  assert.match(literal.stderr, /k\.yaml: source\.sasl\.password: a password is not accepted in the pipeline; .*passwordEnv.*passwordFile/);
  assert.ok(!literal.stderr.includes(SECRET), 'the rejected literal is not echoed');
});
