/**
 * Entry of a cleaning pool's worker thread (clean-pool.ts): cleans the chunks it is sent,
 * one after another in arrival order, and posts each chunk's outcomes back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cleanEmail, cleanText } from '../text/clean.js';
import { cleanEach, type CleanFunction } from './cleaner.js';
import type { CleanJobMessage, CleanReadyMessage, CleanResultMessage, CleanWorkerData } from './clean-pool.js';

const data = workerData as CleanWorkerData;
const clean: CleanFunction = data.kind === 'email' ? cleanEmail : cleanText;
// Test-only fault (CleanPoolFaults): the thread dies on this text, as a native crash in a parser would.
const poison = data.crashOnTextContaining;
const guarded: CleanFunction =
  poison === null
    ? clean
    : (text) => {
        if (text.includes(poison)) process.exit(70);
        return clean(text);
      };

// Chunks are cleaned strictly in turn: cleanEmail awaits, and interleaving would let a
// later chunk finish first, while the pool counts on a thread's chunks coming back in order.
let previous: Promise<void> = Promise.resolve();
parentPort?.on('message', (job: CleanJobMessage) => {
  previous = previous.then(() => cleanJob(job));
});
// Loaded: from now on a death is this thread's work's fault, not a broken setup's.
parentPort?.postMessage({ ready: true } satisfies CleanReadyMessage);

async function cleanJob(job: CleanJobMessage): Promise<void> {
  const start = process.hrtime.bigint();
  const texts = job.crashAfter === null ? job.texts : job.texts.slice(0, job.crashAfter);
  const outcomes = await cleanEach(texts, guarded);
  // Test-only fault: die part-way through this chunk, its first texts cleaned and never posted.
  if (job.crashAfter !== null) process.exit(70);
  const result: CleanResultMessage = { id: job.id, outcomes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  parentPort?.postMessage(result);
}
