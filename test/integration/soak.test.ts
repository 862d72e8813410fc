/**
 * A short soak run (bench/soak): one real worker on a dedicated local broker, sampled
 * from its /metrics. What must hold at any length is asserted here; the 10 % growth limit
 * is not (a minute after warm-up is too noisy for it): `npm run soak` judges that.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runSoak } from '../../bench/soak/harness.js';
import { repoRoot } from '../helpers/paths.js';

test('should sample a worker through a stream and end with the tensors of the end of warm-up', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-soak-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runSoak({
    repo: repoRoot,
    dir,
    messages: 20_000,
    warmupMessages: 5000,
    sampleSeconds: 1,
    partitions: 4,
    // A stream, not a backlog: all at once, the worker takes the 20 000 messages in a few
    // seconds and commits them in one go, leaving no sample between warm-up and the end.
    ratePerSecond: 1500,
    poisonEvery: 500,
    // Checkpoints during the run, so their tensors are part of what must not leak.
    checkpointEveryRows: 5000,
    seed: 7,
    kafkaPort: 9194,
    timeoutMs: 180_000,
    log: (line) => lines.push(line),
  });
  const { samples, ...rest } = result;
  const shown = `${JSON.stringify(rest, null, 2)}\n${lines.join('\n')}`;

  assert.equal(result.exitCode, 0, `the worker drained and exited 0 at SIGTERM\n${shown}`);
  const v = result.verification;
  assert.equal(v.produced, 20_000, shown);
  assert.equal(v.missing, 0, `missing offsets\n${shown}`);
  assert.equal(v.duplicateRows, 0, `duplicate rows\n${shown}`);
  assert.equal(v.rowAndDeadLetter, 0, shown);
  assert.equal(v.deadLetters - v.duplicateDeadLetters, 20_000 / 500, 'every malformed message is a dead letter');

  assert.ok(samples.length >= 3, `samples taken\n${shown}`);
  assert.equal(samples.at(-1)!.committed, 20_000, 'the last sample is taken once everything is committed');
  for (const s of samples) {
    assert.ok(s.rssBytes !== null && s.rssBytes > 0, `RSS in every sample\n${shown}`);
    assert.ok(s.heapUsedBytes !== null && s.heapUsedBytes > 0, `heap in every sample\n${shown}`);
  }
  const warm = result.summary.series.liveTensors.warmup;
  assert.ok(warm !== null && warm > 0, `live tensors at the end of warm-up\n${shown}`);
  const afterWarmup = samples.filter((s) => s.committed >= 5000);
  assert.ok(afterWarmup.length >= 2, `samples after warm-up\n${shown}`);
  assert.deepEqual(
    afterWarmup.map((s) => s.liveTensors),
    afterWarmup.map(() => warm),
    `live tensors stay at their end-of-warm-up count\n${shown}`,
  );
  assert.deepEqual(result.failures.filter((f) => !/grew/.test(f)), [], `nothing but growth may fail at this length\n${shown}`);

  const csv = (await readFile(result.csv, 'utf8')).trim().split('\n');
  assert.equal(csv.length, samples.length + 1, 'one CSV line per sample under the header');
});
