import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../../src/errors.js';
import { loadCheckpointDir, saveCheckpoint } from '../../src/model/checkpoint.js';
import { loadLatestCheckpoint, type LoadCheckpointOptions, type QuarantinedCheckpoint } from '../../src/model/checkpoint-recovery.js';
import { PrequentialLearner } from '../../src/model/learner.js';
import { SMALL_NETWORK, SyntheticStream, useWasm } from './helpers.js';

const maxLen = SMALL_NETWORK.maxLen;
const vocabSize = SMALL_NETWORK.vocabSize;
const tokenizer = { class_name: 'Tokenizer', config: { num_words: 200, oov_token: '<OOV>', word_index: '{"<OOV>": 1, "free": 2}' } };

function tempRoot(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'textstream-ckpt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function weightsOf(learner: PrequentialLearner): Float32Array[] {
  return learner.model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

/** A learner with some training history: many steps, so Adam's state matters. */
async function trained(steps: number, clipNorm: number | null = null): Promise<{ learner: PrequentialLearner; stream: SyntheticStream }> {
  const learner = PrequentialLearner.create({ network: SMALL_NETWORK, trainBatchSize: 8, clipNorm });
  const stream = new SyntheticStream(1, { maxLen, vocabSize, rows: 16, labelledFraction: 0.75 });
  while (learner.modelVersion < steps) await learner.process(stream.batch());
  return { learner, stream };
}

test.before(async () => {
  await useWasm();
});

// A clipNorm of 1e-3 is far below this network's gradient norms, so every step is
// clipped; clipping is configuration, not state, so the resumed learner clips the same way.
for (const clipNorm of [null, 1e-3]) {
  test(`should resume from a checkpoint with identical scores and a bit-identical next training step (clipNorm ${clipNorm})`, async (t) => {
    const root = tempRoot(t);
    // > 60 steps: where tfjs' own Adam restore (pow instead of the running product) drifts.
    const { learner, stream } = await trained(80, clipNorm);
    t.after(() => learner.dispose());
    const saved = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
    assert.ok(saved.dir.startsWith(root));

    const state = await loadLatestCheckpoint(root);
    assert.ok(state !== null);
    assert.deepEqual(state.tokenizer, tokenizer);
    assert.equal(state.modelVersion, learner.modelVersion);
    assert.equal(state.rowsSeen, learner.rowsSeen);
    const resumed = await PrequentialLearner.fromCheckpoint(state, { trainBatchSize: 8, clipNorm });
    t.after(() => resumed.dispose());
    assert.equal(resumed.modelVersion, learner.modelVersion);
    assert.equal(resumed.rowsSeen, learner.rowsSeen);
    assert.deepEqual(resumed.evaluation(), learner.evaluation());
    assert.deepEqual(weightsOf(resumed), weightsOf(learner));

    const next = stream.batch();
    const a = await learner.process(next);
    const b = await resumed.process(next);
    assert.deepEqual(b.scores, a.scores);
    assert.equal(b.loss, a.loss);
    assert.equal(b.modelVersionAfter, a.modelVersionAfter);
    // Same weights after the step means Adam's moments, step count and powers came back.
    assert.deepEqual(weightsOf(resumed), weightsOf(learner));
  });
}

test('should return null when nothing was ever published, ignoring a temp dir left by a crash', async (t) => {
  const root = tempRoot(t);
  assert.equal(await loadLatestCheckpoint(path.join(root, 'missing')), null);
  mkdirSync(path.join(root, '.tmp-0d2c'));
  writeFileSync(path.join(root, '.tmp-0d2c', 'manifest.json'), '{"format": "textstream-checkp');
  assert.equal(await loadLatestCheckpoint(root), null);
});

test('should load the published checkpoint when a later save died half-way', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(2);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  // What a crash mid-save leaves: a temp dir with some files, LATEST untouched.
  const tmp = path.join(root, '.tmp-7f3e');
  mkdirSync(tmp);
  writeFileSync(path.join(tmp, 'weights.bin'), new Uint8Array(100));
  const state = await loadLatestCheckpoint(root);
  assert.equal(state?.modelVersion, learner.modelVersion);
});

test('should throw CheckpointError for a truncated or corrupted checkpoint', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  const { dir } = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const weights = path.join(dir, 'weights.bin');
  const original = readFileSync(weights);

  truncateSync(weights, original.length - 10);
  await assert.rejects(loadLatestCheckpoint(root), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /weights\.bin has \d+ bytes, the manifest says \d+/);
    return true;
  });

  const flipped = Buffer.from(original);
  flipped[1000] = flipped[1000]! ^ 0xff;
  writeFileSync(weights, flipped);
  await assert.rejects(loadLatestCheckpoint(root), /weights\.bin does not match its SHA-256/);

  writeFileSync(weights, original);
  assert.ok(await loadCheckpointDir(dir));
  const manifest = path.join(dir, 'manifest.json');
  const text = readFileSync(manifest, 'utf8');
  writeFileSync(manifest, text.slice(0, text.length / 2));
  await assert.rejects(loadCheckpointDir(dir), /manifest\.json is not valid JSON/);

  rmSync(manifest);
  await assert.rejects(loadCheckpointDir(dir), (err: unknown) => err instanceof CheckpointError && /manifest\.json is missing/.test(err.message));

  writeFileSync(path.join(root, 'LATEST'), '../../etc\n');
  await assert.rejects(loadLatestCheckpoint(root), CheckpointError);
});

test('should refuse a checkpoint whose network differs from the configured one', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const state = (await loadLatestCheckpoint(root))!;
  await assert.rejects(
    PrequentialLearner.fromCheckpoint(state, { network: { ...SMALL_NETWORK, vocabSize: 300 } }),
    /checkpoint has network.vocabSize = 200 but the configuration asks for 300/,
  );
});

test('should keep only the newest checkpoints and leak no tensors across save and load', async (t) => {
  const root = tempRoot(t);
  const { learner, stream } = await trained(1);
  t.after(() => learner.dispose());
  const beforeSaves = tf.memory().numTensors;
  for (let i = 0; i < 4; i++) {
    await learner.process(stream.batch());
    await saveCheckpoint(root, await learner.checkpointState(tokenizer), { keep: 2 });
  }
  assert.equal(tf.memory().numTensors, beforeSaves, 'saving leaks no tensors');
  const dirs = readdirSync(root).filter((e) => e.startsWith('ckpt-'));
  assert.equal(dirs.length, 2);
  assert.equal(readFileSync(path.join(root, 'LATEST'), 'utf8').trim(), dirs.sort().at(-1));
  assert.deepEqual(
    readdirSync(root).filter((e) => e.startsWith('.tmp-')),
    [],
  );

  const before = tf.memory().numTensors;
  const resumed = await PrequentialLearner.fromCheckpoint((await loadLatestCheckpoint(root))!);
  resumed.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('should throw CheckpointError, leaking nothing, when the weights do not fit the network', async (t) => {
  const root = tempRoot(t);
  const { learner } = await trained(1);
  t.after(() => learner.dispose());
  await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  const state = (await loadLatestCheckpoint(root))!;
  const before = tf.memory().numTensors;
  await assert.rejects(
    PrequentialLearner.fromCheckpoint({ ...state, network: { ...state.network, units: 16 } }),
    (err: unknown) => err instanceof CheckpointError && /weights could not be restored/.test(err.message),
  );
  assert.equal(tf.memory().numTensors, before);
});

// ---- Recovery at start: onDamaged 'quarantine' ------------------------------------------

/** A root with two checkpoints (older, newer); LATEST names the newer. */
async function twoCheckpoints(t: { after: (fn: () => void) => void }) {
  const root = tempRoot(t);
  const { learner, stream } = await trained(2);
  t.after(() => learner.dispose());
  const older = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  await learner.process(stream.batch());
  const newer = await saveCheckpoint(root, await learner.checkpointState(tokenizer));
  assert.ok(learner.modelVersion > 2);
  return { root, older: path.basename(older.dir), newer: path.basename(newer.dir), newerVersion: learner.modelVersion };
}

function recovering(events: QuarantinedCheckpoint[]): LoadCheckpointOptions {
  return { onDamaged: 'quarantine', onQuarantine: (e) => events.push(e) };
}

const latestOf = (root: string): string => readFileSync(path.join(root, 'LATEST'), 'utf8').trim();

const damages: { what: string; damage: (dir: string) => void; reason: RegExp }[] = [
  {
    what: 'a truncated weights file',
    damage: (dir) => truncateSync(path.join(dir, 'weights.bin'), 100),
    reason: /^checkpoint .*ckpt-[\d-]+ is damaged: weights\.bin has 100 bytes, the manifest says \d+ \(truncated write\?\)$/,
  },
  {
    what: 'a flipped byte',
    damage: (dir) => {
      const file = path.join(dir, 'weights.bin');
      const bytes = readFileSync(file);
      bytes[500] = bytes[500]! ^ 0x01;
      writeFileSync(file, bytes);
    },
    reason: /is damaged: weights\.bin does not match its SHA-256 in the manifest$/,
  },
  {
    what: 'a missing manifest (a directory a crash or a cut-short copy left half-written)',
    damage: (dir) => rmSync(path.join(dir, 'manifest.json')),
    reason: /is invalid: manifest\.json is missing$/,
  },
  {
    what: 'a manifest cut short',
    damage: (dir) => truncateSync(path.join(dir, 'manifest.json'), 40),
    reason: /is invalid: manifest\.json is not valid JSON$/,
  },
  {
    what: 'a missing tokenizer file',
    damage: (dir) => rmSync(path.join(dir, 'tokenizer.json')),
    reason: /is invalid: tokenizer\.json is missing$/,
  },
];

for (const { what, damage, reason } of damages) {
  test(`should quarantine the latest checkpoint with ${what} and fall back to the older one`, async (t) => {
    const { root, older, newer } = await twoCheckpoints(t);
    damage(path.join(root, newer));
    const events: QuarantinedCheckpoint[] = [];

    const state = await loadLatestCheckpoint(root, recovering(events));

    assert.equal(state?.modelVersion, 2, 'the older checkpoint, never the damaged one');
    assert.equal(events.length, 1);
    const [event] = events;
    assert.equal(event!.name, newer);
    assert.match(event!.reason, reason);
    assert.equal(event!.movedTo, path.join(root, 'quarantine', newer));
    assert.equal(event!.fallback, older);
    assert.equal(event!.message, `${event!.reason}; moved it to ${event!.movedTo}; loading ${older} instead`);
    // Moved, not deleted; LATEST repointed, so the next start is quiet.
    assert.ok(readdirSync(path.join(root, 'quarantine', newer)).length > 0);
    assert.deepEqual(readdirSync(root).filter((e) => e.startsWith('ckpt-')), [older]);
    assert.equal(latestOf(root), older);
    const again: QuarantinedCheckpoint[] = [];
    assert.equal((await loadLatestCheckpoint(root, recovering(again)))?.modelVersion, 2);
    assert.deepEqual(again, []);
  });
}

test('should keep failing on damage by default (model export), moving nothing', async (t) => {
  const { root, newer } = await twoCheckpoints(t);
  truncateSync(path.join(root, newer, 'weights.bin'), 100);
  await assert.rejects(loadLatestCheckpoint(root), /weights\.bin has 100 bytes/);
  assert.equal(latestOf(root), newer);
  assert.ok(readdirSync(root).includes(newer));
  assert.ok(!readdirSync(root).includes('quarantine'));
});

test('should quarantine a LATEST that names a missing checkpoint and load the newest intact one', async (t) => {
  const { root, newer } = await twoCheckpoints(t);
  writeFileSync(path.join(root, 'LATEST'), 'ckpt-000000000999-1767225600000\n');
  const events: QuarantinedCheckpoint[] = [];
  const state = await loadLatestCheckpoint(root, recovering(events));
  assert.ok(state !== null && state.modelVersion > 2);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.name, 'LATEST');
  assert.equal(events[0]!.reason, `${path.join(root, 'LATEST')} names ckpt-000000000999-1767225600000, which does not exist`);
  assert.match(events[0]!.movedTo, /quarantine[/\\]LATEST-\d+$/);
  assert.equal(readFileSync(events[0]!.movedTo, 'utf8'), 'ckpt-000000000999-1767225600000\n', 'the old pointer is kept');
  assert.equal(events[0]!.fallback, newer);
  assert.equal(latestOf(root), newer);
});

test('should quarantine garbage in LATEST and load the newest intact checkpoint', async (t) => {
  const { root, newer } = await twoCheckpoints(t);
  writeFileSync(path.join(root, 'LATEST'), Buffer.from([0x00, 0xff, 0x2f, 0x2e, 0x2e, 0x0a]));
  const events: QuarantinedCheckpoint[] = [];
  const state = await loadLatestCheckpoint(root, recovering(events));
  assert.ok(state !== null && state.modelVersion > 2);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.name, 'LATEST');
  assert.match(events[0]!.reason, /LATEST names ".*", which is not a checkpoint directory$/);
  assert.match(events[0]!.message, new RegExp(`; loading ${newer} instead$`));
  assert.equal(latestOf(root), newer);
  // The default mode still refuses it.
  writeFileSync(path.join(root, 'LATEST'), 'garbage');
  await assert.rejects(loadLatestCheckpoint(root), /LATEST names "garbage", which is not a checkpoint directory/);
});

test('should quarantine every damaged checkpoint and start fresh when none is intact, saying so', async (t) => {
  const { root, older, newer } = await twoCheckpoints(t);
  truncateSync(path.join(root, newer, 'weights.bin'), 10);
  rmSync(path.join(root, older, 'manifest.json'));
  const events: QuarantinedCheckpoint[] = [];
  assert.equal(await loadLatestCheckpoint(root, recovering(events)), null);
  assert.deepEqual(events.map((e) => e.name), [newer, older], 'newest first');
  for (const e of events) {
    assert.equal(e.fallback, null);
    assert.ok(e.message.endsWith(`; no intact checkpoint is left in ${root}: starting without one`), e.message);
  }
  // LATEST went to quarantine too: the root now reads as empty, in both modes, quietly.
  assert.deepEqual(readdirSync(root), ['quarantine']);
  const quarantined = readdirSync(path.join(root, 'quarantine')).sort();
  assert.deepEqual(quarantined.filter((e) => e.startsWith('ckpt-')), [older, newer].sort());
  assert.equal(quarantined.filter((e) => e.startsWith('LATEST-')).length, 1);
  const again: QuarantinedCheckpoint[] = [];
  assert.equal(await loadLatestCheckpoint(root, recovering(again)), null);
  assert.deepEqual(again, []);
  assert.equal(await loadLatestCheckpoint(root), null);
});

test('should ignore a save a crash left half-done (a .tmp- directory) without reading or moving it', async (t) => {
  const { root, newer, newerVersion } = await twoCheckpoints(t);
  const tmp = path.join(root, '.tmp-3b9c');
  mkdirSync(tmp);
  writeFileSync(path.join(tmp, 'weights.bin'), new Uint8Array(64));
  writeFileSync(path.join(tmp, 'manifest.json'), '{"format": "textstream-checkp');
  writeFileSync(path.join(root, '.tmp-LATEST-77aa'), 'ckpt-0000');
  const events: QuarantinedCheckpoint[] = [];
  assert.equal((await loadLatestCheckpoint(root, recovering(events)))?.modelVersion, newerVersion);
  assert.deepEqual(events, []);
  assert.equal(latestOf(root), newer);
  // Left for the next save's pruning (after a day): it may belong to a save still running.
  assert.ok(readdirSync(root).includes('.tmp-3b9c'));
  assert.ok(readdirSync(root).includes('.tmp-LATEST-77aa'));
});

test('should load and publish a complete checkpoint a crash left unpublished (no LATEST yet)', async (t) => {
  const { root, newer, newerVersion } = await twoCheckpoints(t);
  rmSync(path.join(root, 'LATEST'));
  assert.equal(await loadLatestCheckpoint(root), null, 'the default mode trusts LATEST only');
  const events: QuarantinedCheckpoint[] = [];
  assert.equal((await loadLatestCheckpoint(root, recovering(events)))?.modelVersion, newerVersion);
  assert.deepEqual(events, []);
  assert.equal(latestOf(root), newer);
});

test('should not quarantine a checkpoint from a newer format: it is not damage', async (t) => {
  const { root, newer } = await twoCheckpoints(t);
  const manifest = path.join(root, newer, 'manifest.json');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"formatVersion": 1', '"formatVersion": 2'));
  const events: QuarantinedCheckpoint[] = [];
  await assert.rejects(loadLatestCheckpoint(root, recovering(events)), /has format version 2; this build reads version 1/);
  assert.deepEqual(events, []);
  assert.ok(readdirSync(root).includes(newer));
  assert.equal(latestOf(root), newer);
});

test('should never overwrite an earlier entry in quarantine', async (t) => {
  const { root, older, newer } = await twoCheckpoints(t);
  mkdirSync(path.join(root, 'quarantine', newer), { recursive: true });
  writeFileSync(path.join(root, 'quarantine', newer, 'note'), 'from before');
  rmSync(path.join(root, newer, 'weights.bin'));
  const events: QuarantinedCheckpoint[] = [];
  await loadLatestCheckpoint(root, recovering(events));
  assert.equal(events[0]!.movedTo, path.join(root, 'quarantine', `${newer}.1`));
  assert.equal(readFileSync(path.join(root, 'quarantine', newer, 'note'), 'utf8'), 'from before');
  assert.equal(events[0]!.fallback, older);
});

test('should keep saving and pruning after a fallback, leaving quarantine alone', async (t) => {
  const { root, older, newer } = await twoCheckpoints(t);
  rmSync(path.join(root, newer, 'weights.bin'));
  const state = (await loadLatestCheckpoint(root, recovering([])))!;
  const learner = await PrequentialLearner.fromCheckpoint(state, { trainBatchSize: 8 });
  t.after(() => learner.dispose());
  const stream = new SyntheticStream(3, { maxLen, vocabSize, rows: 16 });
  const saved: string[] = [];
  for (let i = 0; i < 3; i++) {
    await learner.process(stream.batch());
    saved.push(path.basename((await saveCheckpoint(root, await learner.checkpointState(tokenizer), { keep: 2 })).dir));
  }
  assert.deepEqual(readdirSync(root).filter((e) => e.startsWith('ckpt-')).sort(), saved.slice(1).sort());
  assert.ok(!saved.includes(older));
  assert.deepEqual(readdirSync(path.join(root, 'quarantine')), [newer]);
});

test('should read a manifest with fields this build does not know', async (t) => {
  const { root, newer, newerVersion } = await twoCheckpoints(t);
  const manifest = path.join(root, newer, 'manifest.json');
  const json = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>;
  json.trainedThrough = [{ topic: 'in', partition: 0, offset: '41' }];
  writeFileSync(manifest, JSON.stringify(json));
  assert.equal((await loadLatestCheckpoint(root))?.modelVersion, newerVersion);
});
