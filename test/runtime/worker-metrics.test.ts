/**
 * The Kafka lag and end-to-end latency metrics of a real `textstream run` worker against
 * the local broker (scripts/kafka.sh), scraped from its /metrics URL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTopic, deleteTopic, ensureBroker, produceMessages, uniqueName, type TestMessage } from '../helpers/kafka.js';

// Relative to this file, so it runs from whichever directory the tests were compiled to.
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const PARTITIONS = 2;
const WORDS = ['free', 'money', 'offer', 'click', 'meeting', 'agenda', 'lunch', 'report'];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/i.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

test('should export real consumer lag and end-to-end latency from a running worker', async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('lag');
  await createTopic(brokers, topic, PARTITIONS);
  await createTopic(brokers, `${topic}.dlq`, 1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-worker-metrics-'));
  t.after(async () => {
    await deleteTopic(brokers, topic, `${topic}.dlq`);
    await rm(dir, { recursive: true, force: true });
  });
  const pipeline = path.join(dir, 'p.yaml');
  await writeFile(
    pipeline,
    `name: lagtest
source:
  type: kafka
  brokers: [${brokers}]
  topic: ${topic}
  groupId: ${uniqueName('group')}
  commitIntervalMs: 300
  sessionTimeoutMs: 6000
  maxBufferedMessages: 40
tokenizer:
  bootstrapRows: 20
batch:
  maxRows: 16
  maxAgeMs: 100
model:
  backend: wasm
sink:
  dir: ${path.join(dir, 'out')}
  rotateRows: 25
metrics:
  port: 0
`,
  );
  const count = 300;
  const messages: TestMessage[] = Array.from({ length: count }, (_, i) => {
    const label = i % 3 === 0 ? 1 : 0;
    const text = Array.from({ length: 8 }, (_, j) => WORDS[(i + j * (label ? 1 : 3)) % WORDS.length]).join(' ');
    return { key: `m${i}`, partition: i % PARTITIONS, value: JSON.stringify({ id: `m${i}`, text, label }) };
  });
  // A backlog before the worker starts (lag starts above 0), the rest while it runs (so
  // records arrive behind ones already handed over, and the time lag is above 0).
  await produceMessages(brokers, topic, messages.slice(0, 100));

  const child = spawn(process.execPath, [cli, 'run', pipeline], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));

  const deadline = Date.now() + 120_000;
  let url: string | null = null;
  let maxLag = 0;
  let sawLagSeconds = false;
  let last: Sample[] = [];
  const of = (name: string): Sample[] => last.filter((s) => s.name === name);
  let producing: Promise<void> | null = null;
  for (;;) {
    assert.ok(Date.now() < deadline, `timed out; worker log:\n${stderr}`);
    url ??= /"url":"([^"]+)"/.exec(stderr)?.[1] ?? null;
    if (url && /partitions assigned/.test(stderr)) {
      producing ??= (async () => {
        for (let i = 100; i < count; i += 20) {
          await produceMessages(brokers, topic, messages.slice(i, i + 20));
          await sleep(200);
        }
      })();
      last = parse(await (await fetch(url)).text());
      const lag = of('textstream_kafka_consumer_lag_messages');
      for (const s of lag) {
        assert.ok(Number.isFinite(s.value) && s.value >= 0, `lag ${s.value}`);
        assert.equal(s.labels.topic, topic);
        maxLag = Math.max(maxLag, s.value);
      }
      for (const s of of('textstream_kafka_consumer_lag_seconds')) {
        assert.ok(Number.isFinite(s.value) && s.value >= 0, `lag seconds ${s.value}`);
        if (s.value > 0) sawLagSeconds = true;
      }
      const written = of('textstream_output_rows_total')[0]?.value ?? 0;
      // Done: every row durable and every partition caught up.
      if (written >= count && lag.length === PARTITIONS && lag.every((s) => s.value === 0)) break;
    }
    await sleep(100);
  }

  await producing;
  assert.ok(maxLag > 0, 'the backlog showed as lag');
  assert.ok(sawLagSeconds, 'the time lag was above 0 while behind');
  assert.deepEqual(of('textstream_kafka_consumer_lag_messages').map((s) => s.labels.partition).sort(), ['0', '1']);
  assert.equal(of('textstream_kafka_consumer_lag_seconds').length, PARTITIONS);
  assert.ok(of('textstream_kafka_consumer_lag_seconds').every((s) => s.value === 0), 'caught up: time lag 0');
  const e2eCount = of('textstream_end_to_end_latency_seconds_count')[0]!.value;
  const e2eSum = of('textstream_end_to_end_latency_seconds_sum')[0]!.value;
  assert.equal(e2eCount, count, 'one latency observation per durable row');
  assert.ok(Number.isFinite(e2eSum) && e2eSum > 0 && e2eSum / e2eCount < 120, `mean latency ${e2eSum / e2eCount} s`);
  assert.equal(of('textstream_drift_detected_total').length, 1);
  assert.ok(Number.isFinite(of('textstream_drift_error_rate')[0]!.value));
  assert.ok(of('textstream_model_live_tensors')[0]!.value > 0);
  assert.ok(of('textstream_model_mean_score').length === 1 && of('textstream_model_positive_rate').length === 1);
  assert.ok(of('textstream_process_resident_memory_bytes')[0]!.value > 0);
  assert.ok(of('textstream_nodejs_eventloop_lag_seconds').length === 1);
  for (const s of last) assert.equal(s.labels.pipeline, 'lagtest', `${s.name} carries the pipeline label`);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
