/**
 * Cleaning may get faster, never different: every bundled corpus message must clean
 * (cleanEmail, and cleanText on the whole raw message) to the text commit 7833c92 gave.
 * The digests and how they were made: bench/clean-golden.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { cleanDigests } from '../../bench/clean-golden.js';
import { cleanEmail, cleanText } from '../../src/text/clean.js';

test('should clean every corpus message to the same text as before the clean stage was made faster', async () => {
  const golden = JSON.parse(readFileSync(path.join(repoRoot, 'test', 'text', 'fixtures', 'clean-golden.json'), 'utf8')) as Record<string, [string, string]>;
  const now = await cleanDigests({ cleanEmail, cleanText });
  assert.equal(Object.keys(now).length, 6046);
  assert.deepEqual(Object.keys(now), Object.keys(golden));
  const changed = Object.keys(golden).filter((file) => now[file]![0] !== golden[file]![0] || now[file]![1] !== golden[file]![1]);
  assert.deepEqual(changed, []);
});
