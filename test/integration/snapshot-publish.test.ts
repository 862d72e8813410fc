/**
 * A worker with `snapshots.topic` publishes its model to the compacted snapshot topic on
 * the real local broker, at its cadence and when it stops; what a reader gets back is
 * exactly the model the worker ended with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { loadLatestCheckpoint } from '../../src/model/checkpoint-recovery.js';
import { readLatestSnapshots } from '../../src/snapshots/reader.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import type { TokenizerJSON } from '../../src/text/tokenizer-json.js';
import { runCli } from '../helpers/cli.js';
import { createTopic, deleteTopic, ensureBroker, produceMessages, uniqueName } from '../helpers/kafka.js';
import { labelledMessage, workerPipelineYaml } from '../helpers/worker.js';

const PARTITIONS = 2;
const MESSAGES = 300;

test('should publish the model to the snapshot topic every snapshots.everyRows and when the worker stops', { timeout: 180_000 }, async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('snapshots-src');
  const snapshotTopic = `${topic}.model`;
  await createTopic(brokers, topic, PARTITIONS);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-snapshot-publish-'));
  t.after(async () => {
    await deleteTopic(brokers, topic, `${topic}.dlq`, snapshotTopic);
    await rm(dir, { recursive: true, force: true });
  });
  await produceMessages(brokers, topic, Array.from({ length: MESSAGES }, (_, i) => labelledMessage(i, PARTITIONS)));
  const pipeline = path.join(dir, 'trainer.yaml');
  const yaml = workerPipelineYaml({ name: 'w', brokers, topic, groupId: uniqueName('group'), dir, worker: 'trainer', checkpointEveryRows: 0, metricsPort: 0 });
  await writeFile(pipeline, `${yaml}snapshots:\n  topic: ${snapshotTopic}\n  everyRows: 100\n  producerId: trainer-a\n`);

  const run = await runCli(['run', pipeline, '--exit-when-idle', '5', '--json'], dir, {}, { timeoutMs: 150_000 });
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { rowsTrained: number; modelVersion: number };
  assert.equal(summary.rowsTrained, MESSAGES);
  const published = run.stderr.split('\n').filter((line) => line.includes('"msg":"model snapshot published"'));
  // 300 trained rows at every 100 (batches of up to 32 rows overshoot a little), and the last ones at the stop.
  assert.ok(published.length >= 3, `published ${published.length} snapshots:\n${run.stderr}`);
  assert.match(run.stderr, /created the snapshot topic/);

  const kafka = new Kafka({ clientId: 'snapshot-publish-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  const read = await readLatestSnapshots(kafka, snapshotTopic, { timeoutMs: 30_000 });
  assert.equal(read.snapshots.length, 1, 'one producer, its latest snapshot');
  const [snapshot] = read.snapshots;
  assert.equal(snapshot!.producer, 'trainer-a');
  assert.equal(snapshot!.modelVersion, summary.modelVersion, 'the model the worker stopped with');
  assert.equal(snapshot!.metrics?.trainedRows, MESSAGES);
  assert.deepEqual(Object.keys(snapshot!.trainedThrough?.[topic] ?? {}).sort(), ['0', '1'], 'offsets learnt, per partition');
  const vocabulary = Tokenizer.fromJSON(snapshot!.tokenizer as TokenizerJSON);
  assert.ok(vocabulary.frozen && vocabulary.wordIndex.size > 0, 'the fitted vocabulary travels with it');

  // The checkpoint written at the stop holds the same weights, byte for byte.
  const checkpoint = await loadLatestCheckpoint(path.join(dir, 'trainer-checkpoint', topic));
  assert.ok(checkpoint);
  assert.equal(checkpoint.modelVersion, snapshot!.modelVersion);
  assert.deepEqual(bytesOf(snapshot!.artifacts.weightData), bytesOf(checkpoint.artifacts.weightData));
});

function bytesOf(data: ArrayBuffer | ArrayBuffer[] | undefined): Buffer {
  return Buffer.concat((Array.isArray(data) ? data : data ? [data] : []).map((b) => Buffer.from(b)));
}
