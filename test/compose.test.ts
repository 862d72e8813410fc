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
  init?: boolean;
  stop_grace_period?: string;
  restart?: string;
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

/** The consumer-group workers: one role each, both running the same pipeline file. */
const WORKERS = ['trainer', 'scorer'] as const;
type Worker = (typeof WORKERS)[number];

const workerPipelineFile = (name: Worker): string => service(name).command![1]!;
/** The pipeline as the worker's container loads it: the file plus the service's TEXTSTREAM_ overrides. */
const workerPipeline = (name: Worker) => loadPipeline(path.join(repoRoot, workerPipelineFile(name)), { env: env(name) });

/** Final stage of the Dockerfile: its base image, WORKDIR, ENTRYPOINT, USER and the directories chowned to that user. */
function dockerfileRuntime(): { from: string; workdir: string; entrypoint: string[]; user: string; ownedDirs: string[] } {
  const lines = readRepoFile('Dockerfile').split('\n');
  const lastFrom = lines.findLastIndex((l) => l.startsWith('FROM '));
  const stage = lines.slice(lastFrom);
  const value = (instruction: string): string =>
    stage.findLast((l) => l.startsWith(`${instruction} `))?.slice(instruction.length + 1) ?? '';
  const workdir = value('WORKDIR');
  const user = value('USER');
  // `RUN mkdir -p out data && chown node:node out data` → /app/out, /app/data
  const ownedDirs = stage
    .filter((l) => l.startsWith('RUN '))
    .flatMap((l) => [...l.matchAll(/chown\s+([^\s:]+)(?::\S+)?\s+([^&;|]+)/g)])
    .filter((m) => m[1] === user)
    .flatMap((m) => m[2]!.trim().split(/\s+/).map((dir) => path.posix.resolve(workdir, dir)));
  return { from: stage[0]!.split(/\s+/)[1]!, workdir, entrypoint: JSON.parse(value('ENTRYPOINT')) as string[], user, ownedDirs };
}

/**
 * The values an option of a help text accepts, as Commander lists them
 * (`(choices: "all", "train", "score", …)`); null when the option lists none.
 */
function choicesIn(help: string, flag: string): string[] | null {
  // Each option's entry starts a line with two spaces and a dash; its description wraps onto the next lines.
  const entry = help.split(/\n(?= {2}-)/).find((e) => new RegExp(`^\\s*(?:-\\w, )?${flag}\\b`).test(e));
  const listed = /\(choices: ((?:"[^"]*"(?:, )?)+)/.exec(entry?.replace(/\s+/g, ' ') ?? '');
  return listed ? [...listed[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!) : null;
}

/** `--topic emails --brokers kafka:9092 file` → [['--topic', 'emails'], ['--brokers', 'kafka:9092']] */
function optionsIn(args: string[]): [string, string | undefined][] {
  return args.flatMap((a, i): [string, string | undefined][] => {
    if (!a.startsWith('--')) return [];
    const next = args[i + 1];
    return [[a, next === undefined || next.startsWith('--') ? undefined : next]];
  });
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

test('should define the kafka, topics, trainer, scorer, producer, prometheus and grafana services', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), [
    'grafana',
    'kafka',
    'producer',
    'prometheus',
    'scorer',
    'topics',
    'trainer',
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
  const pipeline = await workerPipeline('scorer');
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
  for (const name of [...WORKERS, 'producer']) {
    assert.deepEqual(service(name).depends_on?.topics, { condition: 'service_completed_successfully' }, name);
    assert.deepEqual(service(name).depends_on?.kafka, { condition: 'service_healthy' }, name);
  }
  // Scorers share the partitions in source.groupId; the trainer reads them all in its own group.
  const replicas = service('scorer').deploy?.replicas ?? 1;
  const partitions = creates[0]!.partitions;
  assert.ok(replicas >= 2 && replicas <= partitions, `every scorer replica gets at least one of the ${partitions} partitions`);
});

test('should point the scorer\'s build at the Dockerfile, whose entrypoint is the textstream CLI, and give it a valid Kafka pipeline with --role score', async () => {
  const scorer = service('scorer');
  assert.deepEqual(scorer.build, { context: '.', dockerfile: 'Dockerfile' });
  const docker = dockerfileRuntime();
  assert.match(docker.from, /^node:20\b/);
  const pkg = JSON.parse(readRepoFile('package.json')) as { bin: Record<string, string> };
  assert.deepEqual(docker.entrypoint, ['node', pkg.bin.textstream], 'the entrypoint is the textstream CLI');

  assert.deepEqual(scorer.command, ['run', workerPipelineFile('scorer'), '--role', 'score']);
  assert.ok(existsSync(path.join(repoRoot, workerPipelineFile('scorer'))), `${workerPipelineFile('scorer')} exists`);
  const pipeline = await workerPipeline('scorer'); // throws, naming the field or variable, if it does not validate
  assert.equal(pipeline.source.type, 'kafka');
  if (pipeline.source.type !== 'kafka') return;
  assert.ok(pipeline.snapshots.topic, 'a scorer loads its model from snapshots.topic');

  const advertised = listeners(env('kafka').KAFKA_ADVERTISED_LISTENERS!);
  assert.deepEqual(pipeline.source.brokers, [`kafka:${advertised.PLAINTEXT!.port}`]);
  assert.ok(pipeline.metrics.enabled);
  assert.equal(pipeline.metrics.host, '0.0.0.0', 'Prometheus scrapes from another container');
  assert.deepEqual(scorer.expose, [String(pipeline.metrics.port)]);

  // Output lands in the shared volume: sink.dir resolves (from WORKDIR) to its mount point.
  const outDir = path.posix.join(docker.workdir, pipeline.sink.dir);
  const out = mounts('scorer').find((m) => m.target === outDir);
  assert.ok(out, `a volume is mounted at ${outDir}`);
  assert.ok(out.source in compose.volumes, 'the output is a named volume shared by the replicas');
  // Docker gives an empty named volume the owner of the image's directory at its mount point.
  assert.ok(docker.ownedDirs.includes(outDir), `the image creates ${outDir} owned by ${docker.user}, who runs the worker`);

  // Docker must not SIGKILL a worker that is still draining within its own deadline.
  const grace = /^(\d+)s$/.exec(scorer.stop_grace_period ?? '');
  assert.ok(grace && Number(grace[1]) * 1000 > pipeline.source.shutdownTimeoutMs, 'stop_grace_period > drain deadline');
  assert.equal(scorer.init, true, 'SIGTERM reaches node through an init process');
  assert.equal(scorer.restart, 'unless-stopped');
});

test('should run one trainer with --role train on the scorers\' pipeline and snapshot topic', async () => {
  const trainer = service('trainer');
  const scorer = service('scorer');
  assert.deepEqual(trainer.build, scorer.build);
  assert.equal(trainer.image, scorer.image);
  assert.deepEqual(trainer.command, ['run', workerPipelineFile('scorer'), '--role', 'train']);
  assert.equal(trainer.deploy?.replicas ?? 1, 1, 'one trainer: its checkpoint volume and snapshot name are its own');

  const pipeline = await workerPipeline('trainer'); // throws, naming the variable, for a misspelt override
  const scoring = await workerPipeline('scorer');
  if (pipeline.source.type !== 'kafka' || scoring.source.type !== 'kafka') assert.fail('a kafka pipeline');
  // The trainer's group (<groupId>-trainers) follows from the role; the topic must not differ.
  assert.equal(pipeline.source.topic, scoring.source.topic);
  assert.ok(pipeline.snapshots.topic, 'a trainer publishes its model to snapshots.topic');
  assert.equal(pipeline.snapshots.topic, scoring.snapshots.topic, 'the scorers read the topic the trainer writes');
  assert.ok(![pipeline.source.topic, pipeline.deadLetter.topic].includes(pipeline.snapshots.topic));
  // The workers create the snapshot topic compacted; created by the job it would not be.
  assert.ok(
    shellSteps('topics').every((args) => args[args.indexOf('--topic') + 1] !== pipeline.snapshots.topic),
    'the topics job leaves the snapshot topic to the workers',
  );
  // A name of its own that outlives the container, so the compacted topic keeps one snapshot of it.
  assert.ok(pipeline.snapshots.producerId, 'snapshots.producerId is set (the default names the container)');

  assert.ok(pipeline.metrics.enabled);
  assert.equal(pipeline.metrics.host, '0.0.0.0', 'Prometheus scrapes from another container');
  assert.deepEqual(trainer.expose, [String(pipeline.metrics.port)]);

  // A restarted or re-created trainer resumes its model: checkpoints go to a named volume of
  // its own, on a directory the image's user can write.
  const docker = dockerfileRuntime();
  assert.ok(pipeline.model.checkpoints && pipeline.model.checkpointDir, 'the trainer checkpoints, to a folder of its own');
  assert.ok(pipeline.model.checkpointEveryRows > 0, 'it checkpoints while it runs, so a crash resumes too');
  const checkpoints = path.posix.resolve(docker.workdir, pipeline.model.checkpointDir);
  const volume = mounts('trainer').find((m) => checkpoints === m.target || checkpoints.startsWith(`${m.target}/`));
  assert.ok(volume, `a volume holds ${checkpoints}`);
  assert.ok(volume.source in compose.volumes, 'the checkpoints are in a named volume');
  assert.ok(docker.ownedDirs.includes(volume.target), `the image creates ${volume.target} owned by ${docker.user}, who runs the worker`);
  for (const name of Object.keys(compose.services).filter((n) => n !== 'trainer')) {
    assert.ok(!mounts(name).some((m) => m.source === volume.source), `${name} does not share the trainer's checkpoints`);
  }
  // A trainer writes no Parquet.
  const outDir = path.posix.join(docker.workdir, scoring.sink.dir);
  assert.ok(!mounts('trainer').some((m) => m.target === outDir), 'the trainer does not mount the output');

  const grace = /^(\d+)s$/.exec(trainer.stop_grace_period ?? '');
  assert.ok(grace && Number(grace[1]) * 1000 > pipeline.source.shutdownTimeoutMs, 'stop_grace_period > drain deadline');
  assert.equal(trainer.init, true, 'SIGTERM reaches node through an init process');
  assert.equal(trainer.restart, 'unless-stopped');
});

test('should build the corpus and produce it to the pipeline topic in the producer job', async () => {
  const pipeline = await workerPipeline('scorer');
  if (pipeline.source.type !== 'kafka') assert.fail('a kafka pipeline');
  assert.deepEqual(service('producer').build, service('scorer').build);
  assert.equal(service('producer').image, service('scorer').image);
  for (const name of WORKERS) {
    assert.deepEqual(service('producer').depends_on?.[name], { condition: 'service_started' }, `the producer starts after the ${name}`);
  }
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
  const uses: [string[], [string, string | undefined][]][] = [
    // `run <pipeline.yaml> --role …`: the command is `run`, the pipeline its argument.
    ...WORKERS.map((name): [string[], [string, string | undefined][]] => {
      const command = service(name).command!;
      return [command.slice(0, 1), optionsIn(command.slice(2))];
    }),
    ...shellSteps('producer').map((args): [string[], [string, string | undefined][]] => {
      const rest = args.slice(2);
      const firstFlag = rest.findIndex((a) => a.startsWith('--'));
      // The command path is everything before the first option (`dataset spamassassin`).
      return [rest.slice(0, firstFlag === -1 ? 1 : firstFlag), optionsIn(rest)];
    }),
  ];
  assert.deepEqual(
    uses.slice(0, WORKERS.length).map(([, options]) => options),
    [[['--role', 'train']], [['--role', 'score']]],
    'the trainer and the scorer each name their role',
  );
  for (const [command, options] of uses) {
    const text = await help(...command);
    assert.ok(text.startsWith(`Usage: textstream ${command.join(' ')} `), `textstream has a ${command.join(' ')} command`);
    for (const [flag, value] of options) {
      assert.match(text, new RegExp(`${flag}\\b`), `${command.join(' ')} accepts ${flag}`);
      const choices = choicesIn(text, flag);
      if (choices) assert.ok(value !== undefined && choices.includes(value), `${command.join(' ')} ${flag} ${value}: one of ${choices.join(', ')}`);
    }
  }
});

test('should scrape the trainer and every scorer replica from Prometheus and provision it in Grafana', async () => {
  const prometheus = service('prometheus');
  assert.match(prometheus.image!, /^prom\/prometheus:/);
  const configFile = prometheus.command!.find((a) => a.startsWith('--config.file='))!.split('=')[1];
  const configMount = mounts('prometheus').find((m) => m.target === configFile);
  assert.equal(configMount?.source, './dashboards/prometheus.yml');
  const config = parse(readRepoFile('dashboards/prometheus.yml')) as {
    scrape_configs: {
      dns_sd_configs?: { names: string[]; type: string; port: number }[];
      relabel_configs?: { source_labels?: string[]; target_label?: string }[];
    }[];
  };
  for (const name of WORKERS) {
    const pipeline = await workerPipeline(name);
    assert.ok(service(name).expose?.includes(String(pipeline.metrics.port)), `${name} exposes its metrics port`);
    // One A record per replica, so `--scale scorer=N` is picked up without a config change.
    const job = config.scrape_configs.find((c) =>
      (c.dns_sd_configs ?? []).some((s) => s.names.includes(name) && s.type === 'A' && s.port === pipeline.metrics.port),
    );
    assert.ok(job, `prometheus discovers ${name} replicas on the metrics port`);
    // Trainer and scorers both read every message: their series must be told apart.
    assert.ok(
      job.relabel_configs?.some((r) => r.source_labels?.includes('__meta_dns_name') && r.target_label),
      `${name} series carry the service they were found under`,
    );
  }

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
