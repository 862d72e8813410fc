/**
 * Seeds for tests that draw at random: printed with the test and settable, so a failure
 * can be replayed (`TEXTSTREAM_TEST_SEED=<seed> node --test dist/test/...`).
 */
import { mulberry32 } from '../../src/random.js';

/**
 * A seeded PRNG for this test: from $TEXTSTREAM_TEST_SEED when set, otherwise a fresh seed.
 * The seed goes to the test's diagnostics (the spec reporter prints them, pass or fail).
 */
export function seededRandom(t: { diagnostic: (message: string) => void }): () => number {
  const set = process.env.TEXTSTREAM_TEST_SEED;
  let seed: number;
  if (set === undefined || set === '') {
    seed = Math.floor(Math.random() * 2 ** 32);
  } else {
    seed = Number(set);
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`TEXTSTREAM_TEST_SEED must be an integer in [0, 2^32), got ${JSON.stringify(set)}`);
  }
  t.diagnostic(`seed ${seed} (replay with TEXTSTREAM_TEST_SEED=${seed})`);
  return mulberry32(seed);
}
