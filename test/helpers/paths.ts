import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root; tests run from dist/test/..., so resolve from this file. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
