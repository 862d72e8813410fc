import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { EndToEndLatency } from '../../src/metrics/end-to-end.js';

function histogram(): { h: Histogram; registry: Registry } {
  const registry = new Registry();
  const h = new Histogram({ name: 'e2e_seconds', help: 'x', buckets: [1, 10, 100], registers: [registry] });
  return { h, registry };
}

async function countAndSum(registry: Registry): Promise<{ count: number; sum: number }> {
  const [m] = await registry.getMetricsAsJSON();
  const value = (suffix: string): number => m!.values.find((v) => (v as { metricName?: string }).metricName === `e2e_seconds_${suffix}`)!.value;
  return { count: value('count'), sum: value('sum') };
}

test('should observe each row once, when the file holding it becomes durable', async () => {
  const { h, registry } = histogram();
  const latency = new EndToEndLatency(h);
  for (let offset = 0; offset < 10; offset++) latency.written('t', 0, offset, 1_000 + offset * 1_000);
  latency.written('t', 1, 0, 5_000);
  latency.durable('t', 0, 4, 11_000); // rows 0..4: 10, 9, 8, 7, 6 s
  assert.deepEqual(await countAndSum(registry), { count: 5, sum: 40 });
  assert.equal(latency.pendingCount, 6);
  latency.durable('t', 0, 9, 11_000); // rows 5..9: 5, 4, 3, 2, 1 s
  assert.deepEqual(await countAndSum(registry), { count: 10, sum: 55 });
  latency.durable('t', 0, 9, 20_000); // already observed: nothing more
  assert.equal((await countAndSum(registry)).count, 10);
  latency.clear(); // partition 1's open file was discarded (rebalance)
  latency.durable('t', 1, 0, 20_000);
  assert.equal((await countAndSum(registry)).count, 10);
  assert.equal(latency.pendingCount, 0);
});

test('should keep many pending rows in growing typed arrays, in order', async () => {
  const { h, registry } = histogram();
  const latency = new EndToEndLatency(h);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5_000; i++) latency.written('t', 0, round * 5_000 + i, 0);
    latency.durable('t', 0, round * 5_000 + 2_499, 1_000);
  }
  assert.equal(latency.pendingCount, 2_500);
  latency.durable('t', 0, 15_000, 1_000);
  assert.deepEqual(await countAndSum(registry), { count: 15_000, sum: 15_000 });
});
