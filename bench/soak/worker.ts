/**
 * The soak run's one worker: a real `textstream run` process with its logs in files. Unlike
 * the chaos pool nothing restarts it: in a soak run any exit before the final SIGTERM is
 * the finding.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';

export interface SoakWorker {
  readonly pid: number | undefined;
  /** The exit code, or the signal that ended it; null while it runs. */
  readonly exit: number | string | null;
  /** SIGTERM (the worker drains), then its exit code or signal. */
  stop(): Promise<number | string>;
  /** SIGKILL if it still runs (cleanup after a failure). */
  kill(): void;
}

export async function startWorker(opts: { cli: string; pipeline: string; logFile: string; summaryFile: string }): Promise<SoakWorker> {
  // Files, not pipes: a full pipe would block the worker if this process fell behind.
  const [stdout, stderr] = await Promise.all([open(opts.summaryFile, 'a'), open(opts.logFile, 'a')]);
  let child: ChildProcess;
  try {
    // The environment as given: TEXTSTREAM_MODEL_LSTM_THREADS unset lets the one worker use every core.
    child = spawn(process.execPath, [opts.cli, 'run', opts.pipeline], { env: process.env, stdio: ['ignore', stdout.fd, stderr.fd] });
  } finally {
    await Promise.all([stdout.close(), stderr.close()]);
  }
  let exit: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => {
      exit ??= code ?? signal ?? 'unknown';
      resolve(exit);
    });
    child.once('error', (err) => {
      exit ??= `not started: ${err.message}`;
      resolve(exit);
    });
  });
  return {
    pid: child.pid,
    get exit() {
      return exit;
    },
    async stop() {
      if (exit === null) child.kill('SIGTERM');
      return exited;
    },
    kill() {
      if (exit === null) child.kill('SIGKILL');
    },
  };
}
