/**
 * The chaos run's workers: real `textstream run` processes, supervised the way a
 * container platform would (a worker that dies unexpectedly is restarted after a second,
 * and counted). Each worker's logs (JSON lines) are appended to `<logDir>/worker-<i>.log`
 * across its restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

interface Slot {
  child: ChildProcess | null;
  exited: Promise<void>;
  /** Killed or stopped by the harness: not a crash. */
  expectingExit: boolean;
  /** Started with an injected kill; its SIGKILL is the fault, not a crash. */
  armed: boolean;
  startedAt: number;
}

/**
 * A worker installs its SIGTERM handler once its modules are loaded (about a second);
 * before that a SIGTERM kills it the default way, with nothing to drain. The final stop
 * measures drains, so it gives a worker just restarted this long first.
 */
const START_UP_MS = 5_000;

export interface WorkerPoolOptions {
  cli: string;
  /** One pipeline file per worker. */
  pipelines: readonly string[];
  logDir: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** An armed worker killed itself as asked (see `start(i, args, { armed })`). */
  onInjectedKill?: (worker: number) => void;
}

export class WorkerPool {
  readonly #opts: WorkerPoolOptions;
  readonly #slots: Slot[];
  #stopping = false;
  /** Exits nobody asked for (a worker crashed on its own): restarted, and reported. */
  unexpectedExits = 0;
  restarts = 0;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#slots = opts.pipelines.map(() => ({ child: null, exited: Promise.resolve(), expectingExit: false, armed: false, startedAt: 0 }));
  }

  get size(): number {
    return this.#slots.length;
  }

  running(): number[] {
    return this.#slots.flatMap((s, i) => (s.child ? [i] : []));
  }

  start(worker: number, extraArgs: readonly string[] = [], options: { armed?: boolean } = {}): void {
    const slot = this.#slots[worker]!;
    if (slot.child) throw new Error(`worker ${worker} is already running`);
    const logFile = createWriteStream(path.join(this.#opts.logDir, `worker-${worker}.log`), { flags: 'a' });
    const child = spawn(process.execPath, [this.#opts.cli, 'run', this.#opts.pipelines[worker]!, ...extraArgs], {
      env: this.#opts.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.pipe(logFile);
    slot.child = child;
    slot.expectingExit = false;
    slot.armed = options.armed ?? false;
    slot.startedAt = Date.now();
    slot.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        slot.child = null;
        resolve();
        if (slot.expectingExit || this.#stopping) return;
        if (slot.armed && signal === 'SIGKILL') this.#opts.onInjectedKill?.(worker);
        else {
          this.unexpectedExits++;
          this.#opts.log(`worker ${worker} exited on its own (${code ?? signal}); restarting it`);
        }
        void this.#restartLater(worker);
      });
    });
  }

  /** Resolves when the worker's current process has exited. */
  exited(worker: number): Promise<void> {
    return this.#slots[worker]!.exited;
  }

  /** Kills a worker and waits until it is gone. */
  async kill(worker: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const slot = this.#slots[worker]!;
    if (!slot.child) return;
    slot.expectingExit = true;
    slot.child.kill(signal);
    await slot.exited;
  }

  /** Restarts a worker after a short pause, as a supervisor would. */
  async restart(worker: number, extraArgs: readonly string[] = [], options: { armed?: boolean } = {}): Promise<void> {
    await this.kill(worker);
    await sleep(500);
    if (this.#stopping) return;
    this.restarts++;
    this.start(worker, extraArgs, options);
  }

  /** SIGTERM to every worker (they drain and exit 0); returns their exit codes, or the signal that ended one. */
  async stopAll(): Promise<(number | string)[]> {
    this.#stopping = true;
    const codes = await Promise.all(
      this.#slots.map(
        async (slot) => {
          await sleep(Math.max(0, slot.startedAt + START_UP_MS - Date.now()));
          return new Promise<number | string>((resolve) => {
            const child = slot.child;
            if (!child) return resolve(0);
            slot.expectingExit = true;
            child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
            child.kill('SIGTERM');
          });
        },
      ),
    );
    return codes;
  }

  /** SIGKILL whatever still runs (cleanup after a failure). */
  killAll(): void {
    this.#stopping = true;
    for (const slot of this.#slots) slot.child?.kill('SIGKILL');
  }

  /** All workers' logs so far, one string per worker. */
  async logs(): Promise<string[]> {
    return Promise.all(this.#slots.map((_, i) => readFile(path.join(this.#opts.logDir, `worker-${i}.log`), 'utf8').catch(() => '')));
  }

  async #restartLater(worker: number): Promise<void> {
    await sleep(1000);
    if (this.#stopping || this.#slots[worker]!.child) return;
    this.restarts++;
    this.start(worker);
  }
}
