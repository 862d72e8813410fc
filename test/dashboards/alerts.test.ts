import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promtool } from '../helpers/prometheus.js';
import { repoRoot } from '../helpers/paths.js';

const alertNames = async (): Promise<string[]> =>
  [...(await readFile(path.join(repoRoot, 'dashboards', 'alerts.yml'), 'utf8')).matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);

test('should pass promtool check rules on dashboards/alerts.yml', async () => {
  const { stdout } = await promtool('check', 'rules', 'dashboards/alerts.yml');
  assert.match(stdout, new RegExp(`SUCCESS: ${(await alertNames()).length} rules found`));
});

test('should fire each alert in its promtool test case and stay quiet in the others', async () => {
  const { stdout } = await promtool('test', 'rules', 'dashboards/alerts.test.yml');
  assert.match(stdout, /SUCCESS/);
});

test('should test every alert and list it in docs/operations.md with its first response', async () => {
  const names = await alertNames();
  assert.ok(names.length >= 8, names.join(', '));
  const tests = await readFile(path.join(repoRoot, 'dashboards', 'alerts.test.yml'), 'utf8');
  const operations = await readFile(path.join(repoRoot, 'docs', 'operations.md'), 'utf8');
  for (const name of names) {
    assert.match(tests, new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${name} fires in a test case`);
    assert.match(operations, new RegExp(`^\\| \`${name}\` \\|`, 'm'), `${name} is in the alert table of docs/operations.md`);
  }
});
