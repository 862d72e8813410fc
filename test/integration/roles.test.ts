/**
 * Trainer and scorer roles against the real local broker: a trainer publishes snapshots
 * while two scorers score every message exactly once with the latest one, the model
 * version in the output advances, and a scorer killed mid-stream resumes from the latest
 * snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { trainerGroupId } from '../../src/runtime/worker.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { runCli } from '../helpers/cli.js';
import { committedOffsets, createTopic, deleteTopic, ensureBroker, produceMessages, uniqueName } from '../helpers/kafka.js';
import { assertExactlyOnce, labelledMessage, outputPositions, startWorker, waitFor, workerPipelineYaml, type RunningWorker } from '../helpers/worker.js';

const PARTITIONS = 4;
const PER_ROUND = 400;

test('should score every message exactly once with a trainer’s latest snapshot, through a scorer restart', { timeout: 300_000 }, async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('roles');
  const groupId = uniqueName('group');
  await createTopic(brokers, topic, PARTITIONS);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-roles-'));
  const running: RunningWorker[] = [];
  t.after(async () => {
    for (const w of running) w.child.kill('SIGKILL');
    await deleteTopic(brokers, topic, `${topic}.dlq`, `${topic}.model`);
    await rm(dir, { recursive: true, force: true });
  });
  const pipeline = async (worker: string): Promise<string> => {
    const file = path.join(dir, `${worker}.yaml`);
    const yaml = workerPipelineYaml({ name: 'w', brokers, topic, groupId, dir, worker, checkpointEveryRows: 0, metricsPort: 0 });
    await writeFile(file, `${yaml}snapshots:\n  topic: ${topic}.model\n  everyRows: 100\n  everySeconds: 2\n  producerId: trainer\n`);
    return file;
  };
  const messages = (round: number) => Array.from({ length: PER_ROUND }, (_, k) => labelledMessage(round * PER_ROUND + k, PARTITIONS));
  const scored = async (): Promise<number> => [...(await committedOffsets(brokers, groupId, topic)).values()].reduce((n, o) => n + Math.max(0, Number(o)), 0);
  const start = (file: string): RunningWorker => {
    const worker = startWorker(file, dir, ['--role', 'score']);
    running.push(worker);
    return worker;
  };

  await produceMessages(brokers, topic, messages(0));
  const trainer = runCli(['run', await pipeline('trainer'), '--role', 'train', '--exit-when-idle', '25', '--json'], dir, {}, { timeoutMs: 240_000 });
  const scorerA = start(await pipeline('scorer-a'));
  const scorerB = start(await pipeline('scorer-b'));
  await waitFor('both scorers loaded a snapshot', () => [scorerA, scorerB].every((w) => /model snapshot/.test(w.stderr())), 120_000);
  await waitFor('half of the first round scored', async () => (await scored()) >= PER_ROUND / 2, 120_000);

  // Killed mid-stream, then started again: it must begin from the latest snapshot.
  scorerA.child.kill('SIGKILL');
  await scorerA.exited;
  await produceMessages(brokers, topic, messages(1));
  const restarted = start(await pipeline('scorer-a'));
  await waitFor('every message scored', async () => (await scored()) >= 2 * PER_ROUND, 180_000);

  const trained = await trainer;
  assert.equal(trained.code, 0, trained.stderr);
  const trainerSummary = JSON.parse(trained.stdout) as { role: string; rowsTrained: number; snapshots: number };
  assert.equal(trainerSummary.role, 'train');
  assert.equal(trainerSummary.rowsTrained, 2 * PER_ROUND, 'the trainer learnt from every message, in its own group');
  assert.ok(trainerSummary.snapshots >= 4, `snapshots published: ${trainerSummary.snapshots}`);

  for (const w of [scorerB, restarted]) w.child.kill('SIGTERM');
  assert.deepEqual(await Promise.all([scorerB.exited, restarted.exited]), [0, 0], `${scorerB.stderr()}\n${restarted.stderr()}`);
  assert.match(restarted.stderr(), /"msg":"loaded the latest model snapshot"/);
  const loaded = JSON.parse(restarted.stderr().split('\n').find((l) => l.includes('"msg":"loaded the latest model snapshot"'))!) as { modelVersion: number };
  assert.ok(loaded.modelVersion > 0, 'a trained model');

  // Each partition got 2 × PER_ROUND / PARTITIONS messages, at offsets from 0.
  const expected = Array.from({ length: PARTITIONS }, (_, p) => Array.from({ length: (2 * PER_ROUND) / PARTITIONS }, (_, o) => `${p}/${o}`)).flat();
  assertExactlyOnce(await outputPositions(dir), expected);

  // The version in the rows: all from snapshots (a trained model), advancing over the stream.
  const versions = await modelVersionsByRound(path.join(dir, 'out', 'w'));
  assert.ok(versions.first.min > 0, 'no row scored by an untrained model');
  assert.ok(versions.second.max > versions.first.min, `the model version advances: ${JSON.stringify(versions)}`);
  assert.ok(versions.distinct >= 2, `rows carry ${versions.distinct} model versions`);
});

test('should score with the declared untrained model until the first snapshot, then with it (scorerStart: untrained)', { timeout: 240_000 }, async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('untrained');
  const groupId = uniqueName('group');
  const partitions = 2;
  const perRound = 100;
  await createTopic(brokers, topic, partitions);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-untrained-'));
  let scorer: RunningWorker | null = null;
  t.after(async () => {
    scorer?.child.kill('SIGKILL');
    await deleteTopic(brokers, topic, `${topic}.dlq`, `${topic}.model`);
    await rm(dir, { recursive: true, force: true });
  });
  const round = (r: number) => Array.from({ length: perRound }, (_, k) => labelledMessage(r * perRound + k, partitions));
  // The trainer's vocabulary is not the one the scorer fits on its first rows (the last
  // messages first: other word ids), so the swap has rows to tokenize again.
  const tokenizer = new Tokenizer({ numWords: 10_000, maxLen: 100 });
  tokenizer.fitOnTexts(round(0).reverse().map((m) => (JSON.parse(String(m.value)) as { text: string }).text)).freeze();
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  const pipeline = async (worker: string): Promise<string> => {
    const file = path.join(dir, `${worker}.yaml`);
    let yaml = workerPipelineYaml({ name: 'w', brokers, topic, groupId, dir, worker, checkpointEveryRows: 0, metricsPort: 0 });
    if (worker === 'trainer') yaml = yaml.replace('tokenizer:\n', `tokenizer:\n  path: ${path.join(dir, 'tokenizer.json')}\n`);
    await writeFile(file, `${yaml}snapshots:\n  topic: ${topic}.model\n  everyRows: 50\n  scorerStart: untrained\n  producerId: trainer\n`);
    return file;
  };
  const scored = async (): Promise<number> => [...(await committedOffsets(brokers, groupId, topic)).values()].reduce((n, o) => n + Math.max(0, Number(o)), 0);

  // No trainer yet: the scorer starts at once, with the seed's model, version 0.
  await produceMessages(brokers, topic, round(0));
  scorer = startWorker(await pipeline('scorer'), dir, ['--role', 'score']);
  await waitFor('the first round scored', async () => (await scored()) >= perRound, 120_000);
  assert.match(scorer.stderr(), /scoring with the untrained model \(version 0\)/);

  // A trainer learns the first round and publishes; the second round comes after.
  const trained = await runCli(['run', await pipeline('trainer'), '--role', 'train', '--exit-when-idle', '5', '--json'], dir, {}, { timeoutMs: 120_000 });
  assert.equal(trained.code, 0, trained.stderr);
  await produceMessages(brokers, topic, round(1));
  await waitFor('the second round scored', async () => (await scored()) >= 2 * perRound, 120_000);
  scorer.child.kill('SIGTERM');
  assert.equal(await scorer.exited, 0, scorer.stderr());
  assert.match(scorer.stderr(), /"msg":"swapped to a newer model snapshot"/);
  assert.match(scorer.stderr(), /"msg":"the new snapshot has another vocabulary/);
  assert.match(scorer.stderr(), /"msg":"tokenized rows again with the new snapshot’s vocabulary"/);

  const expected = Array.from({ length: partitions }, (_, p) => Array.from({ length: (2 * perRound) / partitions }, (_, o) => `${p}/${o}`)).flat();
  assertExactlyOnce(await outputPositions(dir), expected);
  const versions = await modelVersionsByRound(path.join(dir, 'out', 'w'), perRound / partitions);
  assert.deepEqual(versions.first, { min: 0, max: 0 }, 'the first round was scored by the declared untrained model');
  assert.ok(versions.second.min > 0, `the second round was scored by the trainer's snapshot: ${JSON.stringify(versions)}`);
});

/** Min and max model_version of the rows of each round (the first `perRound` offsets of each partition, then the rest). */
async function modelVersionsByRound(outDir: string, perRound = PER_ROUND / PARTITIONS): Promise<{ first: { min: number; max: number }; second: { min: number; max: number }; distinct: number }> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const reader = await db.runAndReadAll(
      `SELECT ("offset" >= ${perRound})::INTEGER AS round, min(model_version)::DOUBLE AS lo, max(model_version)::DOUBLE AS hi,
              (SELECT count(DISTINCT model_version) FROM read_parquet('${outDir}/**/*.parquet'))::DOUBLE AS distinct_versions
       FROM read_parquet('${outDir}/**/*.parquet') GROUP BY 1 ORDER BY 1`,
    );
    const rows = reader.getRowObjectsJS() as Array<{ round: number; lo: number; hi: number; distinct_versions: number }>;
    return {
      first: { min: rows[0]!.lo, max: rows[0]!.hi },
      second: { min: rows[1]!.lo, max: rows[1]!.hi },
      distinct: rows[0]!.distinct_versions,
    };
  } finally {
    db.closeSync();
  }
}

test('should average two trainers’ models through the snapshot topic, each with half of one trainer’s batch', { timeout: 180_000 }, async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('averaging');
  const groupId = uniqueName('group');
  await createTopic(brokers, topic, 2);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-averaging-'));
  const trainers: RunningWorker[] = [];
  t.after(async () => {
    for (const w of trainers) w.child.kill('SIGKILL');
    await deleteTopic(brokers, topic, `${topic}.model`);
    await rm(dir, { recursive: true, force: true });
  });
  const messages = Array.from({ length: 600 }, (_, i) => labelledMessage(i, 2));
  // One vocabulary for both, as snapshots.average requires.
  const tokenizer = new Tokenizer({ numWords: 10_000, maxLen: 100 });
  tokenizer.fitOnTexts(messages.map((m) => (JSON.parse(String(m.value)) as { text: string }).text)).freeze();
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  for (const name of ['t1', 't2']) {
    const file = path.join(dir, `${name}.yaml`);
    const yaml = workerPipelineYaml({ name: 'w', brokers, topic, groupId, dir, worker: name, checkpointEveryRows: 0, metricsPort: 0 }).replace(
      'tokenizer:\n',
      `tokenizer:\n  path: ${path.join(dir, 'tokenizer.json')}\n`,
    );
    await writeFile(file, `${yaml}snapshots:\n  topic: ${topic}.model\n  everyRows: 64\n  average: true\n  producerId: ${name}\n`);
    trainers.push(startWorker(file, dir, ['--role', 'train']));
  }
  // Messages only once each trainer owns one partition: a rebalance mid-stream would have
  // the new owner train again what the old one had not committed yet (at least once).
  const halved = /"msg":"averaging trainer with 1 of 2 partitions: batches of 16 rows, optimiser steps of 16"/;
  await waitFor('each trainer with one of the two partitions', () => trainers.every((w) => halved.test(w.stderr())), 120_000);
  await produceMessages(brokers, topic, messages);
  const trained = async (): Promise<number> =>
    [...(await committedOffsets(brokers, trainerGroupId(groupId), topic)).values()].reduce((n, o) => n + Math.max(0, Number(o)), 0);
  await waitFor('every message trained on', async () => (await trained()) >= messages.length, 120_000);
  for (const w of trainers) w.child.kill('SIGTERM');
  assert.deepEqual(await Promise.all(trainers.map((w) => w.exited)), [0, 0], trainers.map((w) => w.stderr()).join('\n'));

  const rowsIn = trainers.map((w) => (JSON.parse(w.stderr().split('\n').find((l) => l.includes('"msg":"worker stopped"'))!) as { rowsIn: number }).rowsIn);
  assert.deepEqual(rowsIn, [300, 300], 'each trainer trained on its own partition');
  const averaged = trainers.map((w) => w.stderr().split('\n').filter((l) => l.includes('other trainer(s)"')).length);
  assert.ok(averaged[0]! + averaged[1]! >= 1, `averages: ${averaged.join(', ')}`);
  // Every assignment resizes a trainer's batches to its share of one trainer's (split-batch.ts):
  // batch.maxRows 32 and model.trainBatchSize 32 (the default), halved with 1 of the 2 partitions.
  const resized = trainers.flatMap((w) =>
    w
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"averaging trainer with'))
      .map((l) => JSON.parse(l) as { partitions: number[]; topicPartitions: number; maxRows: number; trainBatchSize: number }),
  );
  for (const r of resized) {
    assert.equal(r.topicPartitions, 2);
    assert.deepEqual({ maxRows: r.maxRows, trainBatchSize: r.trainBatchSize }, { maxRows: 16 * r.partitions.length, trainBatchSize: 16 * r.partitions.length });
  }
});
