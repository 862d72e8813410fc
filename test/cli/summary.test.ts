import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatWorkerSummary } from '../../src/cli/summary.js';
import { OnlineEvaluator } from '../../src/model/evaluation.js';
import type { WorkerRole, WorkerSummary } from '../../src/runtime/worker.js';

function summaryOf(role: WorkerRole): WorkerSummary {
  const evaluator = new OnlineEvaluator();
  evaluator.observe(Float32Array.from([0.9, 0.2, 0.7]), [0, 1, 2], [1, 0, 0]);
  return {
    rowsIn: 3,
    rowsScored: 3,
    rowsTrained: role === 'score' ? 0 : 3,
    rowsWritten: 3,
    deadLetters: 0,
    modelVersion: 7,
    rowsReplayed: 0,
    rowsRetrained: 0,
    deadLettersByReason: {},
    files: [],
    stages: new Map(),
    seconds: 1,
    aborted: false,
    backend: { name: 'wasm', requested: 'wasm', reason: 'asked for', simd: true },
    lstm: 'fused',
    evaluation: evaluator.snapshot(),
    role,
    topic: 'emails',
    groupId: 'g',
    deadLetterTopic: role === 'train' ? null : 'emails.dlq',
    checkpointDir: null,
    snapshots: 2,
  };
}

test('should say that a scorer’s model figures are the trainer’s, from its snapshot', () => {
  const scorer = formatWorkerSummary(summaryOf('score'));
  assert.match(scorer, /textstream scorer on topic emails/);
  assert.match(scorer, /prequential accuracy {2}66\.7 % on 3 labelled rows \(majority class 66\.7 %; the trainer's, from the snapshot in use\)/);
  assert.match(scorer, /model snapshots swapped in: 2/);
  for (const role of ['all', 'train'] as const) {
    assert.doesNotMatch(formatWorkerSummary(summaryOf(role)), /the trainer's/, role);
  }
});
