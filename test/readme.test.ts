/**
 * The documentation's walkthrough, run as a new user would: every shell block marked
 * `<!-- runnable -->` in README.md and docs/*.md (in that order, docs/ by name) runs in
 * order, in one bash session, in the repository root, exactly as written, against the
 * local broker. The quick start itself (`npm ci && npm start`, `npm test`) is what
 * .ci/run runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { userEnvironment } from './helpers/cli.js';
import { readDocs } from './helpers/docs.js';
import { ensureBroker } from './helpers/kafka.js';
import { repoRoot } from './helpers/paths.js';

export const RUNNABLE_MARKER = '<!-- runnable -->';

/** The fenced `sh` blocks that directly follow a runnable marker, in file order. */
export function runnableBlocks(markdown: string, file = 'README'): string[] {
  const blocks: string[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== RUNNABLE_MARKER) continue;
    const fence = lines[i + 1]?.trim();
    if (fence !== '```sh') throw new Error(`${file} line ${i + 2}: a runnable marker must be followed by a \`\`\`sh block, found ${JSON.stringify(fence)}`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`${file} line ${i + 2}: the runnable block is never closed`);
    blocks.push(lines.slice(i + 2, end).join('\n'));
    i = end;
  }
  return blocks;
}

test('should find runnable blocks only where a marker precedes an sh block', () => {
  const md = ['text', RUNNABLE_MARKER, '```sh', 'echo one', 'echo two', '```', '```sh', 'echo skipped', '```', RUNNABLE_MARKER, '```sh', 'echo three', '```'].join('\n');
  assert.deepEqual(runnableBlocks(md), ['echo one\necho two', 'echo three']);
  assert.throws(() => runnableBlocks(`${RUNNABLE_MARKER}\n\`\`\`js\nx\n\`\`\``), /must be followed by a ```sh block/);
  assert.throws(() => runnableBlocks(`x\n${RUNNABLE_MARKER}\n\`\`\`sh\necho`, 'docs/kafka.md'), /^Error: docs\/kafka\.md line 3: the runnable block is never closed/);
});

test('should run the README quick start commands in .ci/run, as CI must', async () => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const quickStart = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(quickStart, 'the README has a Quick start section with an sh block');
  const commands = quickStart
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .flatMap((line) => line.split('&&').map((c) => c.trim()));
  assert.deepEqual(commands, ['npm ci', 'npm start', 'npm test'], 'the quick start is two commands: install and run, then test');
  const ciLines = (await readFile(path.join(repoRoot, '.ci', 'run'), 'utf8')).split('\n').map((l) => l.trim());
  for (const command of commands) {
    assert.ok(ciLines.some((l) => l === command || l.startsWith(`${command} `)), `.ci/run runs \`${command}\``);
  }
});

/** What the walkthrough creates, removed first so that it runs as on a fresh machine. */
const WALKTHROUGH = { topics: ['emails', 'emails.dlq'], group: 'textstream-spamassassin', output: 'out/kafka-spamassassin', report: 'kafka-report.html' };

async function resetWalkthroughState(brokers: string): Promise<void> {
  const admin = new Kafka({ clientId: 'readme-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const doomed = WALKTHROUGH.topics.filter((t) => existing.has(t));
    if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 10_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
    if (groups.includes(WALKTHROUGH.group)) await deleteGroupOnceEmpty(admin, WALKTHROUGH.group);
  } finally {
    await admin.disconnect();
  }
  await rm(path.join(repoRoot, WALKTHROUGH.output), { recursive: true, force: true });
  await rm(path.join(repoRoot, WALKTHROUGH.report), { force: true });
}

/**
 * After a run just before (the test again, by hand) the group can still be listed while
 * the broker already has it dead (its topics were deleted: GROUP_ID_NOT_FOUND, nothing to
 * do), or still have members for a few seconds (NON_EMPTY_GROUP: try again).
 */
async function deleteGroupOnceEmpty(admin: Admin, group: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await admin.deleteGroups([group]);
      return;
    } catch (err) {
      const errors = (err as { groups?: { error?: { type?: string } }[] }).groups ?? [];
      if (errors.length > 0 && errors.every((g) => g.error?.type === 'GROUP_ID_NOT_FOUND')) return;
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

function runBash(script: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // The README sets the TEXTSTREAM_ variables it needs.
    const child = spawn('bash', ['-c', script], { cwd: repoRoot, env: userEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

test('should run every runnable block of README.md and docs/ as written: produce the corpus, two workers, inspect, report', { timeout: 600_000 }, async () => {
  const blocks = (await readDocs()).flatMap((doc) => runnableBlocks(doc.text, doc.file).map((block, i) => ({ block, where: `${doc.file}, runnable block ${i + 1}` })));
  assert.ok(blocks.length >= 3, `the docs mark ${blocks.length} runnable block(s); the walkthrough has at least 3`);
  await resetWalkthroughState(await ensureBroker());

  // One session, like one terminal; a marker before each block says where a failure was.
  const script = ['set -euo pipefail', ...blocks.map(({ block, where }) => `echo ">>> ${where}" >&2\n${block}`)].join('\n');
  const run = await runBash(script);
  assert.equal(run.code, 0, `the walkthrough failed:\n${run.output.slice(-6000)}`);

  // What the walkthrough says it does: every email of the corpus scored once, a report.
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const glob = path.join(repoRoot, WALKTHROUGH.output, '**', '*.parquet');
    const reader = await db.runAndReadAll(
      `SELECT count(*)::INTEGER AS rows, count(DISTINCT (partition, "offset"))::INTEGER AS positions FROM read_parquet('${glob}', hive_partitioning = false)`,
    );
    assert.deepEqual(reader.getRowObjectsJS(), [{ rows: 6046, positions: 6046 }]);
  } finally {
    db.closeSync();
  }
  const report = await readFile(path.join(repoRoot, WALKTHROUGH.report), 'utf8');
  assert.match(report, /<html/);
});
