/** Runs the built `textstream` CLI as a real subprocess, for the command tests. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './paths.js';

export const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface CliRun {
  /** null when killed at the deadline. */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * This process's environment as a user's shell would have it: without our TEXTSTREAM_
 * variables (they would override the pipeline under test) and without FORCE_COLOR/NO_COLOR
 * (output as on a plain pipe).
 */
export function userEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEXTSTREAM_') && k !== 'FORCE_COLOR' && k !== 'NO_COLOR'));
}

/**
 * Runs `textstream <args>` in `cwd` (default: the repository) with `env` on top of this
 * process's environment minus its TEXTSTREAM_ variables, which would otherwise override
 * the pipeline under test, and minus FORCE_COLOR/NO_COLOR, so output is as on a plain
 * pipe. With `timeoutMs` the process is killed at that deadline (code null).
 */
export function runCli(
  args: readonly string[],
  cwd: string = repoRoot,
  env: Record<string, string> = {},
  options: { timeoutMs?: number } = {},
): Promise<CliRun> {
  const base = userEnvironment();
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = options.timeoutMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A fresh temporary directory, removed after the test. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'textstream-cli-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
