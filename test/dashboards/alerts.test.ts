import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promtool } from '../helpers/prometheus.js';

test('should pass promtool check rules on dashboards/alerts.yml', async () => {
  const { stdout } = await promtool('check', 'rules', 'dashboards/alerts.yml');
  assert.match(stdout, /SUCCESS: 6 rules found/);
});

test('should fire each alert in its promtool test case and stay quiet in the others', async () => {
  const { stdout } = await promtool('test', 'rules', 'dashboards/alerts.test.yml');
  assert.match(stdout, /SUCCESS/);
});
