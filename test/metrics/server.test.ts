import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { startMetricsServer } from '../../src/metrics/server.js';

test('should serve the registry on /metrics over HTTP in the Prometheus text format', async (t) => {
  const registry = new Registry();
  new Counter({ name: 'textstream_test_events_total', help: 'test', registers: [registry] }).inc(3);
  const server = await startMetricsServer(registry, '127.0.0.1', 0);
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

  const res = await fetch(server.url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(await res.text(), /^textstream_test_events_total 3$/m);

  const missing = await fetch(server.url.replace('/metrics', '/nope'));
  assert.equal(missing.status, 404);
  await missing.text();
});

test('should close twice safely and free the port', async () => {
  const server = await startMetricsServer(new Registry(), '127.0.0.1', 0);
  await server.close();
  await server.close();
  await assert.rejects(fetch(server.url));
});
