/**
 * A worker and `textstream produce` against the local broker in SASL mode
 * (TEXTSTREAM_KAFKA_SASL=1 scripts/kafka.sh: SCRAM-SHA-256/512 and PLAIN, plus a TLS
 * listener with a throwaway CA). Passwords reach the processes only through environment
 * variables, and no run may print one.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runCli, tempDir, type CliRun } from '../helpers/cli.js';
import { ensureSaslBroker, uniqueName, type SaslBroker } from '../helpers/kafka.js';
import { labelledMessage, workerPipelineYaml } from '../helpers/worker.js';

const PARTITIONS = 2;
const MESSAGES = 60;
/** Long enough for a cold wasm start; a healthy run takes ≈ 15 s. */
const RUN_TIMEOUT_MS = 120_000;

let started: SaslBroker | undefined;
after(() => started?.stop());

interface Setup {
  broker: SaslBroker;
  dir: string;
  topic: string;
  /** The labelled messages as a JSONL file for `textstream produce`. */
  input: string;
  /** A worker pipeline for the topic with these SASL / TLS settings, written to `<name>.yaml`. */
  pipeline: (name: string, source: { brokers?: string[]; sasl?: unknown; tls?: unknown }) => Promise<string>;
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }, name: string): Promise<Setup> {
  const broker = await ensureSaslBroker();
  started = broker;
  const topic = uniqueName(name);
  const admin = broker.client().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  t.after(async () => {
    const cleanup = broker.client().admin();
    await cleanup.connect();
    const existing = new Set(await cleanup.listTopics());
    await cleanup.deleteTopics({ topics: [topic, `${topic}.dlq`].filter((x) => existing.has(x)) });
    await cleanup.disconnect();
  });
  const dir = await tempDir(t, 'textstream-security-');
  const input = path.join(dir, 'messages.jsonl');
  await writeFile(input, Array.from({ length: MESSAGES }, (_, i) => `${String(labelledMessage(i, PARTITIONS).value)}\n`).join(''));
  const groupId = uniqueName('group');
  return {
    broker,
    dir,
    topic,
    input,
    async pipeline(file, source) {
      const yaml = workerPipelineYaml({ name: 'w', brokers: broker.brokers, topic, groupId, dir, worker: file, checkpointEveryRows: 0, metricsPort: 0 });
      const config = parseYaml(yaml) as { source: Record<string, unknown> };
      Object.assign(config.source, source);
      const out = path.join(dir, `${file}.yaml`);
      await writeFile(out, stringifyYaml(config));
      return out;
    },
  };
}

/** Rows in the worker's Parquet output, read back by DuckDB. */
async function outputRows(dir: string): Promise<number> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const glob = path.join(dir, 'out', 'w', '**', '*.parquet');
    const reader = await db.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet('${glob}', hive_partitioning = false)`);
    return (reader.getRowObjectsJS()[0] as { n: number }).n;
  } finally {
    db.closeSync();
  }
}

function assertNoSecret(runs: CliRun[], secrets: string[]): void {
  for (const run of runs) {
    for (const secret of secrets) {
      assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), `a password appeared in the output:\n${run.stderr}`);
    }
  }
}

test('should produce over SCRAM-SHA-512 and run a worker over SCRAM-SHA-256 with the password from the environment, writing every row', async (t) => {
  const s = await setUp(t, 'scram');
  const { textstream } = s.broker.users;
  const producer = await s.pipeline('producer', { sasl: { mechanism: 'scram-sha-512', username: textstream.username, passwordEnv: 'PRODUCER_PASSWORD' } });
  const worker = await s.pipeline('worker', { sasl: { mechanism: 'scram-sha-256', username: textstream.username, passwordEnv: 'KAFKA_PASSWORD' } });

  const produced = await runCli(['--log-level', 'debug', 'produce', '--pipeline', producer, '--topic', s.topic, '--json', s.input], s.dir, {
    PRODUCER_PASSWORD: textstream.password,
  });
  assert.equal(produced.code, 0, produced.stderr);
  assert.equal((JSON.parse(produced.stdout) as { messages: number }).messages, MESSAGES);

  const run = await runCli(['--log-level', 'debug', 'run', worker, '--exit-when-idle', '8', '--json'], s.dir, { KAFKA_PASSWORD: textstream.password }, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { rowsIn: number; rowsWritten: number; deadLetters: number };
  assert.deepEqual({ rowsIn: summary.rowsIn, rowsWritten: summary.rowsWritten, deadLetters: summary.deadLetters }, { rowsIn: MESSAGES, rowsWritten: MESSAGES, deadLetters: 0 });
  assert.equal(await outputRows(s.dir), MESSAGES);

  // A wrong password: exit 1, naming the mechanism and the user, not the password. Exit 1,
  // not killed at the run's deadline (code null): the worker gives up on a rejected
  // password rather than retrying it until stopped. How soon is not this test's question.
  const wrongPassword = 'wrong-Pa55word-in-env';
  const rejected = await runCli(['--log-level', 'debug', 'run', worker, '--exit-when-idle', '8'], s.dir, { KAFKA_PASSWORD: wrongPassword }, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(rejected.code, 1, rejected.stderr);
  assert.match(rejected.stderr, /^textstream: Kafka at 127\.0\.0\.1:\d+ rejected SASL SCRAM-SHA-256 authentication as "textstream" \(source\.sasl; password from \$KAFKA_PASSWORD\): /m);

  // The variable unset: a configuration error (exit 2) naming the field and the variable.
  const unset = await runCli(['run', worker], s.dir, {}, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(unset.code, 2, unset.stderr);
  assert.match(unset.stderr, /^textstream: source\.sasl\.passwordEnv: the environment variable KAFKA_PASSWORD is not set/m);

  // No SASL at all against this broker: the hint names the settings.
  const plaintext = await runCli(['produce', '--topic', s.topic, '--brokers', s.broker.brokers, '--connection-timeout', '1000', s.input], s.dir, {}, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(plaintext.code, 1, plaintext.stderr);
  assert.match(plaintext.stderr, /does its listener require SASL \(source\.sasl of a --pipeline\) or TLS/);

  assertNoSecret([produced, run, rejected, unset, plaintext], [textstream.password, wrongPassword]);
});

test('should produce and consume with SASL PLAIN over TLS with a client certificate, and name source.tls when the CA is missing', async (t) => {
  const s = await setUp(t, 'plain-tls');
  const { textstream } = s.broker.users;
  const tls = { enabled: true, caFile: s.broker.tls.caFile, certFile: s.broker.tls.certFile, keyFile: s.broker.tls.keyFile, keyPasswordEnv: 'KAFKA_KEY_PASSWORD' };
  const pipeline = await s.pipeline('tls', {
    brokers: [s.broker.tlsBrokers],
    sasl: { mechanism: 'plain', username: textstream.username, passwordEnv: 'KAFKA_PASSWORD' },
    tls,
  });
  const env = { KAFKA_PASSWORD: textstream.password, KAFKA_KEY_PASSWORD: s.broker.tls.keyPassword };

  const produced = await runCli(['produce', '--pipeline', pipeline, '--topic', s.topic, '--json', s.input], s.dir, env);
  assert.equal(produced.code, 0, produced.stderr);
  const run = await runCli(['run', pipeline, '--exit-when-idle', '8', '--json'], s.dir, env, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { rowsWritten: number }).rowsWritten, MESSAGES);
  assert.equal(await outputRows(s.dir), MESSAGES);

  // Without caFile only Node's bundled CAs are trusted: the throwaway CA is not among them.
  const untrusted = await runCli(['run', pipeline], s.dir, { ...env, TEXTSTREAM_SOURCE_TLS_CA_FILE: 'null' }, { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(untrusted.code, 1, untrusted.stderr);
  assert.match(untrusted.stderr, /^textstream: cannot reach Kafka at 127\.0\.0\.1:\d+ over TLS: .*certificate.*; check source\.tls: caFile/m);

  assertNoSecret([produced, run, untrusted], [textstream.password, s.broker.tls.keyPassword]);
});
