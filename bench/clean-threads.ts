/**
 * The `clean.threads` setting (TEXTSTREAM_CLEAN_THREADS; 0 = clean on the main thread) as
 * the bench varies it. The bench sets it through the environment, for the in-process
 * replay (loadPipeline reads it) and for the Kafka workers it spawns alike, so the same
 * bench measures the cleaning pool on a build that has it. On a build without the
 * setting the variable would be refused as unknown: 0 then runs without it (the only way
 * such a build cleans), and any other value is reported as skipped.
 */
import { listEnvVariables } from '../src/config/env.js';

export const CLEAN_THREADS_ENV = 'TEXTSTREAM_CLEAN_THREADS';

export const CLEAN_THREADS_MISSING = `clean.threads is not a setting of this build (${CLEAN_THREADS_ENV} would be refused)`;

/** Whether this build's pipeline schema has clean.threads. */
export function cleanThreadsSupported(): boolean {
  return listEnvVariables().has(CLEAN_THREADS_ENV);
}

/**
 * `base` with the variable set to `threads`; null when this build cannot run that setting.
 * Without the setting, 0 is `base` without the variable.
 */
export function cleanThreadsEnv(base: NodeJS.ProcessEnv, threads: number, supported = cleanThreadsSupported()): NodeJS.ProcessEnv | null {
  const env = { ...base };
  if (supported) {
    env[CLEAN_THREADS_ENV] = String(threads);
    return env;
  }
  if (threads !== 0) return null;
  delete env[CLEAN_THREADS_ENV];
  return env;
}
