/**
 * The proof that the dashboards and alerts show real data: a real Prometheus (Debian
 * package, scrape interval 1 s) scrapes two real `textstream run` workers consuming a
 * live stream (good and poison messages) from the real local broker. Then every panel
 * target of every dashboard, with Grafana's template variables substituted, is queried
 * and must return finite samples, and every metric the panels and alert rules name must
 * be in the workers' /metrics output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { createTopic, deleteTopic, ensureBroker, produceMessages, uniqueName, type TestMessage } from '../helpers/kafka.js';
import { repoRoot } from '../helpers/paths.js';
import { freePort, startPrometheus, type PrometheusServer, type Sample } from '../helpers/prometheus.js';
import { labelledMessage, startWorker, waitFor, workerPipelineYaml, type RunningWorker } from '../helpers/worker.js';

const dashboardsDir = path.join(repoRoot, 'dashboards');
const PARTITIONS = 4;
const WORKERS = 2;
/** What the test substitutes for Grafana's built-in interval variables. */
const BUILTINS: Record<string, string> = { __rate_interval: '15s', __interval: '1s', __interval_ms: '1000', __range: '1m', __range_s: '60', __range_ms: '60000' };

interface Target { expr: string; refId: string }
interface PanelJson { title?: string; type: string; targets?: Target[]; panels?: PanelJson[] }
interface VariableJson { name: string; type: string; query?: string | { query: string }; allValue?: string; includeAll?: boolean }
interface DashboardJson { title: string; panels: PanelJson[]; templating: { list: VariableJson[] } }

/** Poison messages, one per dead-letter reason the worker can see from Kafka. */
function poison(i: number): TestMessage {
  const p = i % PARTITIONS;
  const all: TestMessage[] = [
    { key: `bad-json-${i}`, partition: p, value: '{"id": "x", "text": ' },
    { key: `bad-utf8-${i}`, partition: p, value: Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
    { key: `empty-${i}`, partition: p, value: JSON.stringify({ id: `e${i}`, text: '   ', label: 0 }) },
    { key: `huge-${i}`, partition: p, value: JSON.stringify({ id: `h${i}`, text: 'word '.repeat(20_000), label: 1 }) },
    { key: `label-${i}`, partition: p, value: JSON.stringify({ id: `l${i}`, text: 'hello there', label: 'yes' }) },
  ];
  return all[i % all.length]!;
}

/** Grafana's regex escaping of a single selected value inside `=~"…"`. */
const regexEscape = (value: string): string => value.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&');

/** Replaces `$name`, `${name}` and `[[name]]` the way Grafana does before sending a query. */
function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for template variable ${whole} in ${expr}`);
    return value;
  });
}

/** Panels with targets, including those nested in collapsed rows. */
const panelsOf = (d: DashboardJson): PanelJson[] =>
  d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => (p.targets ?? []).length > 0);

/** Every `textstream_*` metric family a PromQL expression names (histogram series → family). */
const metricNames = (expr: string): string[] =>
  [...new Set([...expr.matchAll(/\btextstream_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))];

/** Metric families in a Prometheus text exposition (`# TYPE name type`). */
const exportedFamilies = (text: string): Set<string> => new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));

async function loadDashboards(): Promise<Array<{ file: string; dashboard: DashboardJson }>> {
  const files = (await readdir(dashboardsDir)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(files.map(async (file) => ({ file, dashboard: JSON.parse(await readFile(path.join(dashboardsDir, file), 'utf8')) as DashboardJson })));
}

async function alertExprs(): Promise<Array<{ alert: string; expr: string }>> {
  const rules = parse(await readFile(path.join(dashboardsDir, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert ?? r.record ?? '?', expr: r.expr })));
}

/**
 * Resolves a `label_values(selector, label)` variable query against Prometheus, as
 * Grafana's Prometheus datasource does (through the series API).
 */
async function labelValues(prometheus: PrometheusServer, query: string): Promise<string[]> {
  const m = /^label_values\((.*),\s*(\w+)\)$/.exec(query.trim());
  assert.ok(m, `variable query ${query} is label_values(selector, label)`);
  // Only series scraped in the last few seconds: a partition this worker held before a
  // rebalance still has old series, but no current sample for the panel to show.
  const series = await prometheus.series(m[1]!, Date.now() / 1000 - 5);
  return [...new Set(series.map((s) => s[m[2]!]).filter((v): v is string => v !== undefined))].sort();
}

/**
 * Values for a dashboard's variables, resolved in order against Prometheus: `all` picks
 * each multi-value variable's All value, otherwise its first value (one worker, one partition).
 */
async function variableValues(prometheus: PrometheusServer, d: DashboardJson, all: boolean): Promise<Record<string, string>> {
  const values: Record<string, string> = { ...BUILTINS };
  for (const v of d.templating.list) {
    if (v.type === 'datasource') {
      values[v.name] = 'prometheus';
      continue;
    }
    assert.equal(v.type, 'query', `${d.title}: variable ${v.name} is a query variable`);
    const query = substitute(typeof v.query === 'string' ? v.query : v.query!.query, values);
    const options = await labelValues(prometheus, query);
    assert.ok(options.length > 0, `${d.title}: variable ${v.name} has values (${query})`);
    values[v.name] = all && v.includeAll ? (v.allValue ?? '.*') : regexEscape(options[0]!);
  }
  return values;
}

test('should show real, finite data in every dashboard panel and know every metric the panels and alerts use', { timeout: 240_000 }, async (t) => {
  const brokers = await ensureBroker();
  const topic = uniqueName('dashboards');
  await createTopic(brokers, topic, PARTITIONS);
  await createTopic(brokers, `${topic}.dlq`, 1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-dashboards-'));
  const groupId = uniqueName('group');
  const workers: Array<RunningWorker & { port: number }> = [];
  const servers: PrometheusServer[] = [];
  let producing = true;
  let producer: Promise<void> = Promise.resolve();
  t.after(async () => {
    producing = false;
    await producer.catch(() => undefined);
    for (const w of workers) w.child.kill('SIGKILL');
    for (const server of servers) await server.stop();
    await deleteTopic(brokers, topic, `${topic}.dlq`);
    await rm(dir, { recursive: true, force: true });
  });

  for (let i = 0; i < WORKERS; i++) {
    const port = await freePort();
    const file = path.join(dir, `w${i}.yaml`);
    await writeFile(file, workerPipelineYaml({ name: 'dashboards', brokers, topic, groupId, dir, worker: `w${i}`, checkpointEveryRows: 50, metricsPort: port }));
    workers.push({ ...startWorker(file, dir), port });
  }
  const targets = workers.map((w) => `127.0.0.1:${w.port}`);
  const prom = await startPrometheus(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${path.join(dashboardsDir, 'alerts.yml')}
scrape_configs:
  - job_name: textstream
    static_configs:
      - targets: ${JSON.stringify(targets)}
`);
  servers.push(prom);

  // A live stream: ~20 messages/s over every partition, a poison message every second.
  producer = (async () => {
    for (let i = 0; producing; i++) {
      const batch = Array.from({ length: 5 }, (_, k) => labelledMessage(i * 5 + k, PARTITIONS));
      if (i % 4 === 0) batch.push(poison(i / 4));
      await produceMessages(brokers, topic, batch);
      await sleep(250);
    }
  })();

  const stderrs = (): string => workers.map((w, i) => `--- worker ${i}\n${w.stderr().slice(-3000)}`).join('\n');
  await waitFor(
    'both workers scraped 20 times while writing rows',
    async () => {
      for (const w of workers) assert.equal(w.child.exitCode, null, `a worker exited early:\n${stderrs()}`);
      const [scrapes, rows] = await Promise.all([
        prom.query('min(count_over_time(up{job="textstream"}[1m]) and up{job="textstream"} == 1)'),
        prom.query('min(textstream_output_rows_total)'),
      ]);
      return Number(scrapes[0]?.value[1] ?? 0) >= 20 && Number(rows[0]?.value[1] ?? 0) > 0;
    },
    120_000,
    500,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${stderrs()}`);
  });

  const exposition = (await Promise.all(workers.map((w) => fetch(`http://127.0.0.1:${w.port}/metrics`).then((r) => r.text())))).join('\n');
  const exported = exportedFamilies(exposition);
  const dashboards = await loadDashboards();
  const alerts = await alertExprs();
  assert.ok(dashboards.length > 0 && alerts.length > 0, 'there are dashboards and alert rules to check');

  await t.test('every metric named by a panel or an alert rule is exported by the workers', () => {
    const used = new Map<string, string[]>();
    const note = (name: string, where: string): void => void used.set(name, [...(used.get(name) ?? []), where]);
    for (const { file, dashboard } of dashboards) {
      for (const p of panelsOf(dashboard)) for (const tg of p.targets!) for (const n of metricNames(tg.expr)) note(n, `${file}: ${p.title}`);
      for (const v of dashboard.templating.list) {
        const q = typeof v.query === 'string' ? v.query : v.query?.query;
        if (v.type === 'query' && q) for (const n of metricNames(q)) note(n, `${file}: variable ${v.name}`);
      }
    }
    for (const a of alerts) for (const n of metricNames(a.expr)) note(n, `alerts.yml: ${a.alert}`);
    const missing = [...used.keys()].filter((n) => !exported.has(n)).sort();
    assert.deepEqual(
      missing.map((n) => `${n} (used by ${[...new Set(used.get(n))].join('; ')})`),
      [],
      `${missing.length} metric(s) used by dashboards/alerts are not in /metrics: ${missing.join(', ')}`,
    );
  });

  await t.test('every alert rule evaluates without error against the live data', async () => {
    const data = await prom.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('/api/v1/rules');
    const rules = data.groups.flatMap((g) => g.rules);
    assert.equal(rules.length, alerts.length);
    // Rules evaluate every second; wait for one evaluation of each.
    await waitFor('every rule evaluated', async () => {
      const r = (await prom.api<typeof data>('/api/v1/rules')).groups.flatMap((g) => g.rules);
      return r.every((x) => x.health !== 'unknown');
    }, 10_000, 500);
    const bad = (await prom.api<typeof data>('/api/v1/rules')).groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
    assert.deepEqual(bad.map((r) => `${r.name}: ${r.lastError ?? r.health}`), []);
  });

  await t.test('every panel target returns non-empty, finite results, for all workers and for one worker and partition', async () => {
    // Some series (checkpoint age, AUC) appear only after a while: retry the failures briefly.
    let failures: string[] = [];
    const deadline = Date.now() + 30_000;
    do {
      failures = [];
      for (const { file, dashboard } of dashboards) {
        for (const all of [true, false]) {
          const values = await variableValues(prom, dashboard, all);
          for (const p of panelsOf(dashboard)) {
            for (const target of p.targets!) {
              const expr = substitute(target.expr, values);
              const where = `${file} "${p.title}" ${target.refId} (${all ? 'all workers' : `instance ${values.instance}, partition ${values.partition}`})`;
              let result: Sample[];
              try {
                result = await prom.query(expr);
              } catch (err) {
                failures.push(`${where}: query error ${String(err)}`);
                continue;
              }
              const missing = metricNames(target.expr).filter((n) => !exported.has(n));
              const why = missing.length > 0 ? ` [not exported: ${missing.join(', ')}]` : '';
              if (result.length === 0) failures.push(`${where}: empty${why}: ${expr}`);
              const notFinite = result.filter((s) => !Number.isFinite(Number(s.value[1])));
              if (notFinite.length > 0) {
                failures.push(`${where}: ${notFinite.length} non-finite value(s) (${notFinite.map((s) => s.value[1]).join(', ')}): ${expr}`);
              }
            }
          }
        }
      }
      if (failures.length === 0 || Date.now() > deadline) break;
      await sleep(2000);
    } while (true);
    assert.deepEqual(failures, [], `${failures.length} panel target(s) without data:\n${failures.join('\n')}`);
  });
});
