import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, register as globalRegistry } from 'prom-client';
import { DeadLetterReasons } from '../../src/message.js';
import { PipelineMetrics, registerProcessMetrics, Stages, type ModelState, type PartitionLag } from '../../src/metrics/definitions.js';
import { OnlineEvaluator } from '../../src/model/evaluation.js';

test('should register every metric on the given registry and none on the global one', async () => {
  const registry = new Registry();
  new PipelineMetrics(registry, () => null);
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(names.length >= 10);
  for (const name of names) assert.match(name, /^textstream_[a-z0-9_]+$/);
  for (const name of names) assert.equal(globalRegistry.getSingleMetric(name), undefined);
  // Prometheus naming: counters end in _total, durations are in seconds.
  for (const m of await registry.getMetricsAsJSON()) {
    if (String(m.type) === 'counter') assert.match(m.name, /_total$/);
  }
});

test('should be constructible twice on separate registries (no global state)', async () => {
  const [first, second] = [new Registry(), new Registry()];
  const metrics = new PipelineMetrics(first, () => null);
  new PipelineMetrics(second, () => null);
  const names = async (registry: Registry): Promise<string[]> => (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
  assert.ok((await names(first)).length >= 10);
  assert.deepEqual(await names(second), await names(first), 'each registry holds the whole set');
  // Each instance counts on its own registry only.
  metrics.deadLetters.labels('invalid-utf8').inc(2);
  assert.match(await first.metrics(), /^textstream_dead_letters_total\{reason="invalid-utf8"\} 2$/m);
  assert.doesNotMatch(await second.metrics(), /^textstream_dead_letters_total\{reason="invalid-utf8"\} [1-9]/m);
  // What the separate registries avoid: the same names twice on one registry.
  assert.throws(() => new PipelineMetrics(first, () => null), /already been registered/);
});

test('should read model gauges at scrape time and export nothing before there is a value', async () => {
  const registry = new Registry();
  let state: ModelState | null = null;
  new PipelineMetrics(registry, () => state);
  const before = await registry.metrics();
  assert.doesNotMatch(before, /^textstream_model_prequential_accuracy \d/m);
  assert.doesNotMatch(before, /^textstream_model_backend_info\{/m);

  state = { backend: 'wasm', lstm: 'fused', version: 12, accuracy: 0.875, auc: 0.93, logLoss: 0.3, trainLoss: null };
  const after = await registry.metrics();
  assert.match(after, /^textstream_model_prequential_accuracy 0\.875$/m);
  assert.match(after, /^textstream_model_prequential_auc 0\.93$/m);
  assert.match(after, /^textstream_model_version 12$/m);
  assert.match(after, /^textstream_model_backend_info\{backend="wasm",lstm="fused"\} 1$/m);
  assert.doesNotMatch(after, /^textstream_model_train_loss \d/m);
});

test('should count stage input/output and observe stage durations per batch', async () => {
  const registry = new Registry();
  const metrics = new PipelineMetrics(registry, () => null);
  metrics.observeStage('decode', 10, 8, 0.002);
  metrics.observeStage('decode', 5, 5, 0.001);
  metrics.deadLetters.labels('invalid-utf8').inc(2);
  const text = await registry.metrics();
  assert.match(text, /^textstream_stage_input_messages_total\{stage="decode"\} 15$/m);
  assert.match(text, /^textstream_stage_output_messages_total\{stage="decode"\} 13$/m);
  assert.match(text, /^textstream_stage_duration_seconds_count\{stage="decode"\} 2$/m);
  assert.match(text, /^textstream_dead_letters_total\{reason="invalid-utf8"\} 2$/m);
});

/** Name → type and label names (without the registry's default labels) of every exported metric. */
async function catalogue(registry: Registry): Promise<Map<string, { type: string; labels: string[] }>> {
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const m of await registry.getMetricsAsJSON()) {
    const labels = new Set<string>();
    for (const v of m.values) for (const k of Object.keys(v.labels)) if (k !== 'le' && k !== 'quantile') labels.add(k);
    out.set(m.name, { type: String(m.type), labels: [...labels].sort() });
  }
  return out;
}

test('should export the observability metrics with the agreed names, types and labels', async () => {
  const registry = new Registry();
  const metrics = new PipelineMetrics(registry, () => ({
    backend: 'wasm',
    lstm: 'fused',
    version: 3,
    accuracy: 0.5,
    auc: 0.5,
    logLoss: 0.7,
    trainLoss: 0.6,
    liveTensors: 17,
    meanScore: 0.3,
    positiveRate: 0.25,
    checkpointAgeSeconds: 12.5,
    updatesRejected: 2,
  }));
  metrics.readLagFrom(() => [{ topic: 't', partition: 0, messages: 5, seconds: 2 }]);
  metrics.readDriftErrorRateFrom(() => 0.1);
  metrics.endToEndLatency.observe(1);
  const all = await catalogue(registry);
  const expected: Record<string, [string, string[]]> = {
    textstream_kafka_consumer_lag_messages: ['gauge', ['partition', 'topic']],
    textstream_kafka_consumer_lag_seconds: ['gauge', ['partition', 'topic']],
    textstream_end_to_end_latency_seconds: ['histogram', []],
    textstream_model_live_tensors: ['gauge', []],
    textstream_model_mean_score: ['gauge', []],
    textstream_model_positive_rate: ['gauge', []],
    textstream_model_checkpoint_age_seconds: ['gauge', []],
    textstream_model_samples_scored_total: ['counter', []],
    textstream_model_samples_trained_total: ['counter', []],
    textstream_model_updates_rejected_total: ['counter', []],
    textstream_drift_detected_total: ['counter', []],
    textstream_drift_error_rate: ['gauge', []],
    textstream_dead_letters_total: ['counter', ['reason']],
    textstream_stage_input_messages_total: ['counter', ['stage']],
    textstream_stage_output_messages_total: ['counter', ['stage']],
    textstream_stage_duration_seconds: ['histogram', ['stage']],
    textstream_offsets_committed_total: ['counter', []],
    textstream_kafka_rebalances_total: ['counter', []],
    textstream_kafka_backpressure_pauses_total: ['counter', []],
    textstream_model_backend_info: ['gauge', ['backend', 'lstm']],
  };
  for (const [name, [type, labels]] of Object.entries(expected)) {
    assert.deepEqual(all.get(name), { type, labels }, name);
  }
  const text = await registry.metrics();
  assert.match(text, /^textstream_model_live_tensors 17$/m);
  assert.match(text, /^textstream_model_checkpoint_age_seconds 12\.5$/m);
  assert.match(text, /^textstream_model_updates_rejected_total 2$/m);
  assert.match(text, /^textstream_drift_error_rate 0\.1$/m);
  // Every bucket boundary from 0.1 s to 10 min.
  assert.match(text, /^textstream_end_to_end_latency_seconds_bucket\{le="0\.1"\} 0$/m);
  assert.match(text, /^textstream_end_to_end_latency_seconds_bucket\{le="600"\} 1$/m);
});

test('should export process metrics once per registry, prefixed textstream_', async () => {
  const registry = new Registry();
  new PipelineMetrics(registry, () => null);
  registerProcessMetrics(registry); // a second registration is a no-op, not a throw
  const names = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  for (const name of [
    'textstream_process_cpu_seconds_total',
    'textstream_process_resident_memory_bytes',
    'textstream_nodejs_heap_size_used_bytes',
    'textstream_nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(names.has(name), name);
  }
  for (const name of names) assert.equal(globalRegistry.getSingleMetric(name), undefined, `${name} is on the global registry`);
  const bare = new Registry();
  new PipelineMetrics(bare, () => null, { processMetrics: false });
  assert.equal(bare.getSingleMetric('textstream_process_cpu_seconds_total'), undefined);
});

test('should export zeros from the start for every stage, dead-letter reason and the drift counter', async () => {
  const registry = new Registry();
  registry.setDefaultLabels({ pipeline: 'p' });
  new PipelineMetrics(registry, () => null, { processMetrics: false });
  const text = await registry.metrics();
  for (const stage of Stages) {
    assert.match(text, new RegExp(`^textstream_stage_input_messages_total\\{stage="${stage}",pipeline="p"\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^textstream_stage_output_messages_total\\{stage="${stage}",pipeline="p"\\} 0$`, 'm'));
  }
  for (const reason of Object.values(DeadLetterReasons)) {
    assert.match(text, new RegExp(`^textstream_dead_letters_total\\{reason="${reason}",pipeline="p"\\} 0$`, 'm'));
  }
  assert.match(text, /^textstream_drift_detected_total\{pipeline="p"\} 0$/m);
  assert.match(text, /^textstream_end_to_end_latency_seconds_count\{pipeline="p"\} 0$/m);
  // Gauges with nothing to read yet export no sample rather than a misleading 0.
  assert.doesNotMatch(text, /^textstream_drift_error_rate\{/m);
  assert.doesNotMatch(text, /^textstream_model_checkpoint_age_seconds\{/m);
  assert.doesNotMatch(text, /^textstream_kafka_consumer_lag_messages\{/m);
});

test('should compute the lag gauges from the source state at scrape time and drop partitions no longer assigned', async () => {
  const registry = new Registry();
  const metrics = new PipelineMetrics(registry, () => null, { processMetrics: false });
  let lags: PartitionLag[] = [
    { topic: 'in', partition: 0, messages: 120, seconds: 4.5 },
    { topic: 'in', partition: 1, messages: 0, seconds: 0 },
    { topic: 'in', partition: 2, messages: 7, seconds: null },
  ];
  let reads = 0;
  metrics.readLagFrom(() => {
    reads++;
    return lags;
  });
  assert.equal(reads, 0, 'nothing is read until a scrape');
  let text = await registry.metrics();
  assert.ok(reads > 0);
  assert.match(text, /^textstream_kafka_consumer_lag_messages\{topic="in",partition="0"\} 120$/m);
  assert.match(text, /^textstream_kafka_consumer_lag_seconds\{topic="in",partition="0"\} 4\.5$/m);
  assert.match(text, /^textstream_kafka_consumer_lag_messages\{topic="in",partition="1"\} 0$/m);
  assert.match(text, /^textstream_kafka_consumer_lag_seconds\{topic="in",partition="1"\} 0$/m);
  assert.match(text, /^textstream_kafka_consumer_lag_messages\{topic="in",partition="2"\} 7$/m);
  assert.doesNotMatch(text, /^textstream_kafka_consumer_lag_seconds\{topic="in",partition="2"\}/m, 'unknown age: no sample');

  lags = [{ topic: 'in', partition: 1, messages: 3, seconds: 1 }]; // a rebalance took 0 and 2 away
  text = await registry.metrics();
  assert.match(text, /^textstream_kafka_consumer_lag_messages\{topic="in",partition="1"\} 3$/m);
  assert.doesNotMatch(text, /partition="0"/);
  assert.doesNotMatch(text, /partition="2"/);
});

test('should report calibration: the faded mean score against the faded positive rate', () => {
  const evaluator = new OnlineEvaluator({ fading: 1 });
  evaluator.observe(Float32Array.from([0.9, 0.8, 0.2, 0.1]), [0, 1, 2, 3], [1, 1, 0, 1]);
  const snap = evaluator.snapshot();
  // The scores as the model's Float32Array holds them; 0.5 only to float32 precision.
  const f32 = Math.fround;
  assert.ok(Math.abs(snap.recentMeanScore! - (f32(0.9) + f32(0.8) + f32(0.2) + f32(0.1)) / 4) < 1e-12, `${snap.recentMeanScore}`);
  assert.equal(snap.recentPositiveRate, 0.75);

  // With fading, old rows weigh less: a recent run of positives pulls the rate up.
  const faded = new OnlineEvaluator({ fading: 0.5 });
  faded.observe(Float32Array.from([0.1, 0.1, 0.9, 0.9]), [0, 1, 2, 3], [0, 0, 1, 1]);
  const f = faded.snapshot();
  assert.ok(Math.abs(f.recentPositiveRate! - (0.5 + 1) / (0.125 + 0.25 + 0.5 + 1)) < 1e-12);
  assert.ok(Math.abs(f.recentMeanScore! - (f32(0.1) * 0.125 + f32(0.1) * 0.25 + f32(0.9) * 0.5 + f32(0.9)) / (0.125 + 0.25 + 0.5 + 1)) < 1e-12, `${f.recentMeanScore}`);
  assert.equal(new OnlineEvaluator().snapshot().recentMeanScore, null);
});

test('should read checkpoint evaluation state written before calibration existed', () => {
  const evaluator = new OnlineEvaluator();
  evaluator.observe(Float32Array.from([0.9, 0.2]), [0, 1], [1, 0]);
  const state = evaluator.toJSON();
  const roundTrip = OnlineEvaluator.fromJSON(JSON.parse(JSON.stringify(state)) as typeof state);
  assert.deepEqual(roundTrip.snapshot(), evaluator.snapshot());

  const { calibration, ...old } = state;
  assert.ok(calibration);
  const resumed = OnlineEvaluator.fromJSON(old);
  assert.equal(resumed.snapshot().recentMeanScore, null, 'calibration starts empty');
  assert.equal(resumed.snapshot().recentAccuracy, evaluator.snapshot().recentAccuracy, 'the other figures are unchanged');
  resumed.observe(Float32Array.from([0.4]), [0], [1]);
  assert.ok(Math.abs(resumed.snapshot().recentMeanScore! - 0.4) < 1e-6);
  assert.equal(resumed.snapshot().recentPositiveRate, 1);
});

test('should read the rejected-update counter from the learner at scrape time, from 0', async () => {
  const registry = new Registry();
  let state: ModelState | null = null;
  new PipelineMetrics(registry, () => state, { processMetrics: false });
  assert.doesNotMatch(await registry.metrics(), /^textstream_model_updates_rejected_total/m, 'no model, no sample');
  state = { backend: 'wasm', lstm: 'fused', version: 4, accuracy: null, auc: null, logLoss: null, trainLoss: null, updatesRejected: 0 };
  let text = await registry.metrics();
  assert.match(text, /^# TYPE textstream_model_updates_rejected_total counter$/m);
  assert.match(text, /^textstream_model_updates_rejected_total 0$/m);
  state = { ...state, updatesRejected: 3 };
  text = await registry.metrics();
  assert.match(text, /^textstream_model_updates_rejected_total 3$/m);
});
