import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CLEAN_THREADS_ENV, cleanThreadsEnv, cleanThreadsSupported } from '../../bench/clean-threads.js';
import { loadPipeline } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';

const pipeline = path.join(repoRoot, 'pipelines', 'spamassassin.yaml');

test('should say the setting exists exactly when the pipeline loader accepts the variable', async () => {
  const load = loadPipeline(pipeline, { env: { [CLEAN_THREADS_ENV]: '0' } });
  if (cleanThreadsSupported()) {
    const config = (await load) as unknown as { clean: Record<string, unknown> };
    assert.equal(config.clean.threads, 0);
  } else {
    await assert.rejects(load, (err: unknown) => err instanceof ConfigError && err.message.includes(CLEAN_THREADS_ENV));
  }
});

test('should set the variable on a build that has the setting', () => {
  const env = cleanThreadsEnv({ PATH: '/bin' }, 2, true);
  assert.deepEqual(env, { PATH: '/bin', [CLEAN_THREADS_ENV]: '2' });
});

test('should run 0 without the variable and refuse a pool on a build without the setting', () => {
  assert.deepEqual(cleanThreadsEnv({ PATH: '/bin', [CLEAN_THREADS_ENV]: '3' }, 0, false), { PATH: '/bin' });
  assert.equal(cleanThreadsEnv({ PATH: '/bin' }, 2, false), null);
});

test('should load the pipeline with the environment it gives for 0 on this build', async () => {
  const env = cleanThreadsEnv(process.env, 0);
  assert.ok(env);
  await loadPipeline(pipeline, { env });
});
