/**
 * A short chaos run (bench/chaos): every fault kind at least once, through real workers
 * on a dedicated local broker, and every offset must end as exactly one row or a dead
 * letter. `npm run chaos` runs the long version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FaultKinds } from '../../bench/chaos/faults.js';
import { runChaos } from '../../bench/chaos/harness.js';
import { repoRoot } from '../helpers/paths.js';

test('should write every message exactly once through every kind of fault', { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-chaos-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runChaos({
    repo: repoRoot,
    dir,
    messages: 6000,
    workers: 2,
    partitions: 4,
    faults: FaultKinds.length,
    kinds: FaultKinds,
    ratePerSecond: 120,
    poisonEvery: 250,
    checkpointEveryRows: 300,
    seed: 7,
    kafkaPort: 9192,
    timeoutMs: 420_000,
    log: (line) => lines.push(line),
  });
  const shown = `${JSON.stringify(result, null, 2)}\n${lines.join('\n')}`;
  const v = result.verification;
  assert.equal(v.produced, 6000, shown);
  assert.equal(v.missing, 0, `missing offsets\n${shown}`);
  assert.equal(v.duplicateRows, 0, `duplicate rows\n${shown}`);
  assert.equal(v.rowAndDeadLetter, 0, shown);
  assert.equal(v.rows + v.deadLetters - v.duplicateDeadLetters, 6000, shown);
  assert.equal(v.deadLetters - v.duplicateDeadLetters, 6000 / 250, 'every malformed message is a dead letter');
  for (const kind of FaultKinds) assert.ok((result.injected[kind] ?? 0) >= 1, `${kind} injected\n${shown}`);
  assert.ok(result.checkpointsQuarantined >= 1, `the damaged checkpoint was moved aside\n${shown}`);
  assert.ok(result.tempFilesRemoved >= 1, `the truncated temporary file was removed\n${shown}`);
  assert.ok(result.updatesRejected >= 1, `the NaN training step was rejected\n${shown}`);
  assert.deepEqual(result.finalExitCodes, [0, 0], `every worker drained and exited 0 at the final SIGTERM\n${shown}`);
});
