import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadPipeline } from '../src/config/load.js';
import { repoRoot } from './helpers/paths.js';

// No Docker engine runs here, so docker-compose.yml is checked by structure: the services
// exist and agree with each other, with the Dockerfile, the pipeline and the CLI.

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const readRepoFile = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
// `merge: true` resolves the `<<: *anchor` keys the way Compose does.
const compose = parse(readRepoFile('docker-compose.yml'), { merge: true }) as Compose;
const service = (name: string): Service => {
  const s = compose.services[name];
  assert.ok(s, `service ${name} exists`);
  return s;
};
const env = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(service(name).environment ?? {}).map(([k, v]) => [k, String(v)]));

/** `PLAINTEXT://kafka:9092,HOST://localhost:29092` → { PLAINTEXT: { host, port } , … } */
function listeners(value: string): Record<string, { host: string; port: number }> {
  return Object.fromEntries(
    value.split(',').map((l) => {
      const m = /^(\w+):\/\/([^:]*):(\d+)$/.exec(l.trim());
      assert.ok(m, `listener ${l} is NAME://host:port`);
      return [m[1]!, { host: m[2]!, port: Number(m[3]) }];
    }),
  );
}

/** `- ./a:/b:ro` → { source: './a', target: '/b' } */
function mounts(name: string): { source: string; target: string }[] {
  return (service(name).volumes ?? []).map((v) => {
    const [source, target] = v.split(':');
    return { source: source!, target: target! };
  });
}

/** The shell command of a one-shot job, split into the argument lists of its `&&` steps. */
function shellSteps(name: string): string[][] {
  const s = service(name);
  assert.deepEqual(s.entrypoint, ['/bin/sh', '-c']);
  assert.equal(s.command?.length, 1);
  return s.command[0]!.split('&&').map((step) => step.trim().split(/\s+/));
}

const workerPipelineFile = (): string => service('worker').command![1]!;
const workerPipeline = () => loadPipeline(path.join(repoRoot, workerPipelineFile()));

/** Final stage of the Dockerfile: its base image, WORKDIR and ENTRYPOINT. */
function dockerfileRuntime(): { from: string; workdir: string; entrypoint: string[] } {
  const lines = readRepoFile('Dockerfile').split('\n');
  const lastFrom = lines.findLastIndex((l) => l.startsWith('FROM '));
  const stage = lines.slice(lastFrom);
  const value = (instruction: string): string =>
    stage.findLast((l) => l.startsWith(`${instruction} `))?.slice(instruction.length + 1) ?? '';
  return {
    from: stage[0]!.split(/\s+/)[1]!,
    workdir: value('WORKDIR'),
    entrypoint: JSON.parse(value('ENTRYPOINT')) as string[],
  };
}

/** Repository files (relative to the root) that compiled code opens with `new URL('../../../<file>', import.meta.url)`. */
function filesReadBesideDist(): string[] {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (rel.endsWith('.ts')) {
        for (const m of readRepoFile(rel).matchAll(/new URL\('((?:\.\.\/)+)([^']+)', import\.meta\.url\)/g)) {
          // dist/src/<dir>/file.js climbs to the root with one ../ more than src/<dir>/file.ts.
          found.add(path.relative(repoRoot, path.resolve(repoRoot, 'dist', dir, m[1]!, m[2]!)));
        }
      }
    }
  };
  walk('src');
  return [...found].sort();
}

test('should copy into the runtime image every repository file the compiled code reads', () => {
  const lines = readRepoFile('Dockerfile').split('\n');
  const runtime = lines.slice(lines.findLastIndex((l) => l.startsWith('FROM ')));
  const copied = runtime
    .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  const files = filesReadBesideDist();
  assert.ok(files.includes('scripts/keras_interop.py') && files.includes('package.json'), files.join(', '));
  for (const file of files) {
    assert.ok(copied.some((source) => file === source || file.startsWith(`${source}/`)), `${file} is not copied into the runtime image`);
  }
});

test('should define the kafka, topics, worker, producer, prometheus and grafana services', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), [
    'grafana',
    'kafka',
    'producer',
    'prometheus',
    'topics',
    'worker',
  ]);
});

test('should run the official Kafka image as a single KRaft node with a healthcheck', () => {
  const kafka = service('kafka');
  assert.match(kafka.image!, /^apache\/kafka:3\.9\.\d+$/);
  const e = env('kafka');
  assert.equal(e.KAFKA_PROCESS_ROLES, 'broker,controller');
  assert.equal(e.KAFKA_NODE_ID, '1');
  assert.match(e.CLUSTER_ID!, /^[A-Za-z0-9_-]{22}$/, 'a base64url UUID, as kafka-storage random-uuid prints');
  for (const key of [
    'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
  ]) {
    assert.equal(e[key], '1', key);
  }
  assert.equal(e.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false');

  const bound = listeners(e.KAFKA_LISTENERS!);
  const advertised = listeners(e.KAFKA_ADVERTISED_LISTENERS!);
  assert.equal(e.KAFKA_CONTROLLER_QUORUM_VOTERS, `${e.KAFKA_NODE_ID}@kafka:${bound.CONTROLLER!.port}`);
  assert.equal(e.KAFKA_CONTROLLER_LISTENER_NAMES, 'CONTROLLER');
  assert.ok(!('CONTROLLER' in advertised), 'the controller listener is not advertised to clients');
  assert.deepEqual(advertised.PLAINTEXT, { host: 'kafka', port: 9092 }, 'containers reach the broker as kafka:9092');
  for (const name of Object.keys(bound)) {
    assert.ok(e.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP!.includes(`${name}:`), `${name} has a security protocol`);
  }
  // The host port is published and advertised under the name the host uses.
  assert.deepEqual(kafka.ports, [`${advertised.HOST!.port}:${bound.HOST!.port}`]);
  assert.equal(advertised.HOST!.host, 'localhost');

  assert.ok(mounts('kafka').some((m) => m.target === e.KAFKA_LOG_DIRS), 'the log dir is a volume');
  assert.match(kafka.healthcheck!.test.join(' '), /--bootstrap-server localhost:9092/);
});

test('should create the pipeline topic and its dead-letter topic before the workers start', async () => {
  const pipeline = await workerPipeline();
  assert.equal(pipeline.source.type, 'kafka');
  if (pipeline.source.type !== 'kafka') return;
  const creates = shellSteps('topics').map((args) => {
    assert.equal(args[0], '/opt/kafka/bin/kafka-topics.sh');
    const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
    assert.ok(args.includes('--create') && args.includes('--if-not-exists'), 'idempotent on re-runs');
    assert.equal(flag('--bootstrap-server'), 'kafka:9092');
    return { topic: flag('--topic'), partitions: Number(flag('--partitions')) };
  });
  assert.deepEqual(creates, [
    { topic: pipeline.source.topic, partitions: 4 },
    { topic: pipeline.deadLetter.topic, partitions: 1 },
  ]);
  assert.match(service('topics').image!, /^apache\/kafka:/);
  assert.deepEqual(service('topics').depends_on, { kafka: { condition: 'service_healthy' } });
  for (const name of ['worker', 'producer']) {
    assert.deepEqual(service(name).depends_on?.topics, { condition: 'service_completed_successfully' }, name);
  }
  const replicas = service('worker').deploy?.replicas ?? 1;
  assert.ok(replicas >= 2 && replicas <= 4, 'every replica gets at least one of the 4 partitions');
});

test('should build the worker from the Dockerfile and run a valid Kafka pipeline', async () => {
  const worker = service('worker');
  assert.deepEqual(worker.build, { context: '.', dockerfile: 'Dockerfile' });
  const docker = dockerfileRuntime();
  assert.match(docker.from, /^node:20\b/);
  const pkg = JSON.parse(readRepoFile('package.json')) as { bin: Record<string, string> };
  assert.deepEqual(docker.entrypoint, ['node', pkg.bin.textstream], 'the entrypoint is the textstream CLI');

  assert.equal(worker.command?.[0], 'run');
  assert.equal(worker.command.length, 2);
  assert.ok(existsSync(path.join(repoRoot, workerPipelineFile())), `${workerPipelineFile()} exists`);
  const pipeline = await workerPipeline(); // throws, naming the field, if it does not validate
  assert.equal(pipeline.source.type, 'kafka');
  if (pipeline.source.type !== 'kafka') return;

  const advertised = listeners(env('kafka').KAFKA_ADVERTISED_LISTENERS!);
  assert.deepEqual(pipeline.source.brokers, [`kafka:${advertised.PLAINTEXT!.port}`]);
  assert.ok(pipeline.metrics.enabled);
  assert.equal(pipeline.metrics.host, '0.0.0.0', 'Prometheus scrapes from another container');
  assert.deepEqual(worker.expose, [String(pipeline.metrics.port)]);

  // Output lands in the shared volume: sink.dir resolves (from WORKDIR) to its mount point.
  const out = mounts('worker').find((m) => m.target === path.posix.join(docker.workdir, pipeline.sink.dir));
  assert.ok(out, `a volume is mounted at ${docker.workdir}/${pipeline.sink.dir}`);
  assert.ok(out.source in compose.volumes, 'the output is a named volume shared by the replicas');

  // Docker must not SIGKILL a worker that is still draining within its own deadline.
  const grace = /^(\d+)s$/.exec(worker.stop_grace_period ?? '');
  assert.ok(grace && Number(grace[1]) * 1000 > pipeline.source.shutdownTimeoutMs, 'stop_grace_period > drain deadline');
});

test('should build the corpus and produce it to the pipeline topic in the producer job', async () => {
  const pipeline = await workerPipeline();
  if (pipeline.source.type !== 'kafka') assert.fail('a kafka pipeline');
  assert.deepEqual(service('producer').build, service('worker').build);
  assert.equal(service('producer').image, service('worker').image);
  const cli = ['node', 'dist/src/cli/main.js'];
  assert.deepEqual(shellSteps('producer'), [
    [...cli, 'dataset', 'spamassassin', '--out', 'data/spamassassin.parquet'],
    [...cli, 'produce', '--topic', pipeline.source.topic, '--brokers', pipeline.source.brokers.join(','), 'data/spamassassin.parquet'],
  ]);
});

test('should let the CLI accept every command and option the compose file uses', async () => {
  // Help for each subcommand lists its options. Commander answers `<unknown> --help` with
  // the top-level help and exit 0, so the usage line must name the command itself.
  const help = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)('node', ['dist/src/cli/main.js', ...args, '--help'], { cwd: repoRoot })).stdout;
  const uses: [string[], string[]][] = [
    [service('worker').command!.slice(0, 1), []],
    ...shellSteps('producer').map((args): [string[], string[]] => {
      const rest = args.slice(2);
      const flags = rest.filter((a) => a.startsWith('--'));
      const firstFlag = rest.findIndex((a) => a.startsWith('--'));
      // The command path is everything before the first option (`dataset spamassassin`).
      return [rest.slice(0, firstFlag === -1 ? 1 : firstFlag), flags];
    }),
  ];
  for (const [command, flags] of uses) {
    const text = await help(...command);
    assert.ok(text.startsWith(`Usage: textstream ${command.join(' ')} `), `textstream has a ${command.join(' ')} command`);
    for (const flag of flags) assert.match(text, new RegExp(`${flag}\\b`), `${command.join(' ')} accepts ${flag}`);
  }
});

test('should scrape every worker replica from Prometheus and provision it in Grafana', async () => {
  const pipeline = await workerPipeline();
  const prometheus = service('prometheus');
  assert.match(prometheus.image!, /^prom\/prometheus:/);
  const configFile = prometheus.command!.find((a) => a.startsWith('--config.file='))!.split('=')[1];
  const configMount = mounts('prometheus').find((m) => m.target === configFile);
  assert.equal(configMount?.source, './dashboards/prometheus.yml');
  const config = parse(readRepoFile('dashboards/prometheus.yml')) as {
    scrape_configs: { dns_sd_configs?: { names: string[]; type: string; port: number }[] }[];
  };
  const sd = config.scrape_configs.flatMap((c) => c.dns_sd_configs ?? []);
  // One A record per replica, so `--scale worker=N` is picked up without a config change.
  assert.ok(
    sd.some((s) => s.names.includes('worker') && s.type === 'A' && s.port === pipeline.metrics.port),
    'prometheus discovers worker replicas on the metrics port',
  );

  const grafana = service('grafana');
  assert.match(grafana.image!, /^grafana\/grafana:/);
  const grafanaMounts = mounts('grafana');
  const provisioning = grafanaMounts.find((m) => m.target === '/etc/grafana/provisioning');
  assert.equal(provisioning?.source, './dashboards/grafana/provisioning');
  const datasources = parse(readRepoFile('dashboards/grafana/provisioning/datasources/prometheus.yml')) as {
    datasources: { type: string; url: string }[];
  };
  const [prometheusPort] = prometheus.ports![0]!.split(':').reverse();
  assert.deepEqual(
    datasources.datasources.map((d) => [d.type, d.url]),
    [['prometheus', `http://prometheus:${prometheusPort}`]],
  );
  const providers = parse(readRepoFile('dashboards/grafana/provisioning/dashboards/textstream.yml')) as {
    providers: { type: string; options: { path: string } }[];
  };
  const dashboardsMount = grafanaMounts.find((m) => m.source === './dashboards');
  assert.ok(dashboardsMount, 'dashboards/ is mounted into grafana');
  assert.deepEqual(
    providers.providers.map((p) => [p.type, p.options.path]),
    [['file', dashboardsMount.target]],
  );
});

test('should mount only files that exist in the repository and declared named volumes', () => {
  for (const [name, s] of Object.entries(compose.services)) {
    for (const { source } of mounts(name)) {
      if (source.startsWith('.') || source.startsWith('/')) {
        assert.ok(existsSync(path.join(repoRoot, source)), `${name}: ${source} exists`);
      } else {
        assert.ok(source in compose.volumes, `${name}: volume ${source} is declared`);
      }
    }
    if (s.build) assert.ok(existsSync(path.join(repoRoot, s.build.context, s.build.dockerfile)), `${name}: Dockerfile`);
  }
});
