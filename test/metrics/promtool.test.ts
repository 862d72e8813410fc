import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { PipelineMetrics } from '../../src/metrics/definitions.js';
import { promtoolCheckMetrics } from '../helpers/prometheus.js';

test("should pass promtool check metrics (Prometheus' naming and type rules), process metrics included", async () => {
  const registry = new Registry();
  const metrics = new PipelineMetrics(registry, () => ({
    backend: 'wasm',
    lstm: 'fused',
    version: 3,
    accuracy: 0.9,
    auc: 0.95,
    logLoss: 0.2,
    trainLoss: 0.1,
    liveTensors: 12,
    meanScore: 0.3,
    positiveRate: 0.31,
    checkpointAgeSeconds: 5,
    updatesRejected: 0,
  }));
  metrics.observeStage('clean', 256, 256, 0.1);
  const scrape = await registry.metrics();
  assert.match(scrape, /^textstream_nodejs_active_handles\{/m, 'the per-type handle gauges stay');
  const { code, output } = await promtoolCheckMetrics(scrape);
  assert.equal(code, 0, output);
});
