import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, register as globalRegistry } from 'prom-client';
import { PipelineMetrics, type ModelState } from '../../src/metrics/definitions.js';

test('should register every metric on the given registry and none on the global one', async () => {
  const registry = new Registry();
  new PipelineMetrics(registry, () => null);
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(names.length >= 10);
  for (const name of names) assert.match(name, /^textstream_[a-z_]+$/);
  for (const name of names) assert.equal(globalRegistry.getSingleMetric(name), undefined);
  // Prometheus naming: counters end in _total, durations are in seconds.
  for (const m of await registry.getMetricsAsJSON()) {
    if (String(m.type) === 'counter') assert.match(m.name, /_total$/);
  }
});

test('should be constructible twice on separate registries (no global state)', () => {
  new PipelineMetrics(new Registry(), () => null);
  new PipelineMetrics(new Registry(), () => null);
});

test('should read model gauges at scrape time and export nothing before there is a value', async () => {
  const registry = new Registry();
  let state: ModelState | null = null;
  new PipelineMetrics(registry, () => state);
  const before = await registry.metrics();
  assert.doesNotMatch(before, /^textstream_model_prequential_accuracy \d/m);
  assert.doesNotMatch(before, /^textstream_model_backend_info\{/m);

  state = { backend: 'wasm', version: 12, accuracy: 0.875, auc: 0.93, logLoss: 0.3, trainLoss: null };
  const after = await registry.metrics();
  assert.match(after, /^textstream_model_prequential_accuracy 0\.875$/m);
  assert.match(after, /^textstream_model_prequential_auc 0\.93$/m);
  assert.match(after, /^textstream_model_version 12$/m);
  assert.match(after, /^textstream_model_backend_info\{backend="wasm"\} 1$/m);
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
