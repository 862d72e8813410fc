/**
 * The Kafka rows of `npm run bench` against the real local broker, on a small slice of the
 * corpus: one worker of role `all` and one scorer per run, each checked exactly once, and
 * the timed window inside the process's life. No assertion is about speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureBroker } from '../../bench/kafka.js';
import { counterValue, exactlyOnce, KafkaRoles } from '../../bench/kafka-run.js';
import { measureKafkaWorkers } from '../../bench/kafka-worker.js';
import { Workloads } from '../../bench/worker-rows.js';
import { buildSpamAssassinDataset } from '../../src/datasets/spamassassin.js';
import { repoRoot } from '../helpers/paths.js';

test('should read a counter from /metrics text, summed over the series that match', () => {
  const text = [
    '# HELP textstream_stage_input_messages_total x',
    'textstream_stage_input_messages_total{stage="source"} 120',
    'textstream_stage_input_messages_total{stage="clean"} 118',
    'textstream_output_rows_total{partition="0"} 5',
    'textstream_output_rows_total{partition="1"} 7',
  ].join('\n');
  assert.equal(counterValue(text, 'textstream_stage_input_messages_total', 'stage="source"'), 120);
  assert.equal(counterValue(text, 'textstream_output_rows_total'), 12);
  assert.equal(counterValue(text, 'textstream_kafka_rebalances_total'), null);
});

test('should time a role-all worker and a scorer from first record to last row, each exactly once', { timeout: 240_000 }, async () => {
  const broker = await ensureBroker(repoRoot);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-test-bench-kafka-'));
  try {
    const dataset = path.join(dir, 'spamassassin.parquet');
    await buildSpamAssassinDataset({ out: dataset, seed: 42 });
    const result = await measureKafkaWorkers({
      repo: repoRoot,
      brokers: [broker],
      dataset,
      limit: 150,
      repeat: 2,
      reps: 1,
      backend: 'wasm',
      cleanThreads: [0],
      runTimeoutMs: 180_000,
    });
    assert.deepEqual(result.failures, []);
    assert.equal(result.messages, 300);
    assert.deepEqual(
      result.runs.map((r) => r.role),
      [KafkaRoles.ALL, KafkaRoles.SCORE],
      'the all worker runs first: its snapshot is what the scorer loads',
    );
    for (const run of result.runs) {
      assert.equal(run.exitCode, 0, `${run.role} exited 0`);
      assert.ok(exactlyOnce(run.verification), `${run.role}: ${JSON.stringify(run.verification)}`);
      assert.ok(typeof run.verification !== 'string' && run.verification.produced === 300);
      assert.ok(run.startupSeconds > 0 && run.steadySeconds > 0 && run.finishSeconds >= 0);
      // The group join is start-up: the window opens after the assignment (to the 100 ms sampling).
      assert.ok(run.assignedSeconds !== null && run.startupSeconds >= run.assignedSeconds - 0.15, `assigned ${run.assignedSeconds} s, first record ${run.startupSeconds} s`);
      // The steady window lies inside the process's life: spawn → all durable is longer.
      const wall = run.messages / run.wallMessagesPerSecond;
      assert.ok(run.startupSeconds + run.steadySeconds <= wall + 0.01, `${run.startupSeconds} + ${run.steadySeconds} within ${wall}`);
      assert.ok(run.messagesPerSecond > run.wallMessagesPerSecond);
      assert.ok(run.cpu !== null && run.cpu.share > 0 && run.cpu.share <= 1.05, `CPU share ${run.cpu?.share}`);
    }
    assert.deepEqual(
      result.rows.map((r) => [r.workload, r.cleanThreads, r.exactlyOnce]),
      [
        [Workloads.KAFKA_ALL, 0, 'yes (1 of 1 runs)'],
        [Workloads.KAFKA_SCORE, 0, 'yes (1 of 1 runs)'],
      ],
    );
    assert.equal(result.rows[0]!.value, result.runs[0]!.messagesPerSecond);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
