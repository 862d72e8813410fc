import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

/**
 * A real Prometheus (and promtool) for tests, from the Debian package that
 * scripts/prometheus.sh unpacks into .cache/prometheus. Each server gets its own port.
 */

const script = path.join(repoRoot, 'scripts', 'prometheus.sh');
const run = promisify(execFile);

/** promtool with the given arguments, run from the repository root; rejects on a non-zero exit. */
export async function promtool(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    // A cold machine downloads the package first, hence the generous timeout.
    return await run('bash', [script, 'promtool', ...args], { cwd: repoRoot, timeout: 300_000 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

/** `promtool check metrics` on a scrape's text (it reads stdin): its exit code and output. */
export function promtoolCheckMetrics(scrape: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, 'promtool', 'check', 'metrics'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(scrape);
  });
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  /** An instant query at the current time; rejects unless Prometheus answers `success`. */
  query(expr: string): Promise<Sample[]>;
  /** Label sets of the series matching a selector (`/api/v1/series`), with samples since `start` (unix s) if given. */
  series(match: string, start?: number): Promise<Record<string, string>[]>;
  /** Any API path, e.g. `/api/v1/rules`; returns `data`. */
  api<T>(pathAndQuery: string): Promise<T>;
  /** Stops the server and deletes its config; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts Prometheus on a free 127.0.0.1 port with the given configuration (YAML text;
 * relative paths in it resolve from a temporary directory, so use absolute ones) and
 * waits until it is ready.
 */
export async function startPrometheus(config: string): Promise<PrometheusServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'textstream-prometheus-'));
  const file = path.join(dir, 'prometheus.yml');
  await writeFile(file, config);
  const port = await freePort();
  let url: string;
  try {
    const { stdout } = await run('bash', [script, 'start', file, String(port)], { cwd: repoRoot, timeout: 300_000 });
    url = stdout.trim().split('\n').at(-1)!;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    await rm(dir, { recursive: true, force: true });
    throw new Error(`scripts/prometheus.sh start failed: ${e.message}\n${e.stderr ?? ''}`, { cause: err });
  }
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.error ?? res.statusText}`);
    return body.data;
  };
  let stopping: Promise<void> | undefined;
  return {
    url,
    api,
    async query(expr) {
      const data = await api<{ resultType: string; result: Sample[] | [number, string] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
      return data.result as Sample[];
    },
    series(match, start) {
      const since = start === undefined ? '' : `&start=${start}`;
      return api<Record<string, string>[]>(`/api/v1/series?match[]=${encodeURIComponent(match)}${since}`);
    },
    stop() {
      stopping ??= run('bash', [script, 'stop', String(port)], { cwd: repoRoot, timeout: 60_000 }).then(
        () => rm(dir, { recursive: true, force: true }),
      );
      return stopping;
    },
  };
}
