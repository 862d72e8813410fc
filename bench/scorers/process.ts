/**
 * One `textstream run` process of the scaling bench: spawned with its own pipeline file
 * and environment, its JSON log lines read for the moments of its start-up, its CPU time
 * read from /proc, its `--json` summary kept.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Log messages whose time the bench keeps (pino's `time`, epoch ms, the bench's clock too). */
export const StartupEvents = {
  BACKEND: 'model backend',
  SNAPSHOT_LOADED: 'loaded the latest model snapshot',
  WORKER_STARTED: 'worker started',
  PARTITIONS_ASSIGNED: 'partitions assigned',
} as const;

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly spawnedAtMs: number;
  /** First time of each StartupEvents message, except PARTITIONS_ASSIGNED: its last time. */
  readonly events: Map<string, number>;
  /** Partitions of the last assignment. */
  assigned: number[] | null;
  /** The metrics server's port, once it logged it. */
  metricsPort: number | null;
  /** Last stderr lines, for an error message. */
  readonly stderrTail: string[];
  /** Log lines at warn or above (a lagging broker, a vocabulary swap…). */
  readonly warnings: string[];
  readonly stdout: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  cli: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Options for node itself, before the script (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

export function spawnWorker(opts: SpawnOptions): WorkerProcess {
  const spawnedAtMs = Date.now();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.cli, ...opts.args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env });
  const worker: WorkerProcess = {
    child,
    spawnedAtMs,
    events: new Map(),
    assigned: null,
    metricsPort: null,
    stderrTail: [],
    warnings: [],
    stdout: [],
    exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
  };
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') onLogLine(worker, line);
  });
  child.stdout?.on('data', (chunk: Buffer) => worker.stdout.push(chunk.toString('utf8')));
  return worker;
}

function onLogLine(worker: WorkerProcess, line: string): void {
  worker.stderrTail.push(line);
  worker.stderrTail.splice(0, Math.max(0, worker.stderrTail.length - 8));
  let entry: { time?: number; msg?: string; level?: number; url?: string; partitions?: number[] };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return; // not a log line (a native library's print)
  }
  const { time, msg } = entry;
  if (typeof time !== 'number' || typeof msg !== 'string') return;
  if ((entry.level ?? 0) >= 40) worker.warnings.push(msg);
  if (msg.startsWith('metrics on ') && typeof entry.url === 'string') {
    const port = Number(new URL(entry.url).port);
    if (port > 0) worker.metricsPort = port;
  }
  for (const event of Object.values(StartupEvents)) {
    if (!msg.startsWith(event)) continue;
    if (event === StartupEvents.PARTITIONS_ASSIGNED) {
      worker.events.set(event, time);
      worker.assigned = entry.partitions ?? null;
    } else if (!worker.events.has(event)) worker.events.set(event, time);
  }
}

/** The process's --json summary (its last stdout line), or null. */
export function summaryOf(worker: WorkerProcess): Record<string, unknown> | null {
  const last = worker.stdout.join('').trim().split('\n').at(-1);
  if (last === undefined || last === '') return null;
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return null;
  }
}

let clockTicks: number | null = null;

/** USER_HZ, the unit of /proc times (100 on every Linux we run, but asked once). */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds of a live process (all its threads), or null (gone, not Linux). */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "(comm) ".
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return null;
  }
}

export interface MachineCpu {
  busySeconds: number;
  totalSeconds: number;
}

/** Busy and total CPU seconds of the whole machine since boot (/proc/stat), or null. */
export function machineCpu(): MachineCpu | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busySeconds: (total - idle) / ticksPerSecond(), totalSeconds: total / ticksPerSecond() };
  } catch {
    return null;
  }
}
