/**
 * A pool of worker threads that clean texts (`clean.threads`), so cleaning runs on other
 * cores while the pipeline's thread runs the model. Each request is cut into chunks
 * spread over the threads at once, so the threads keep working while the pipeline's
 * thread is busy in the model and cannot hand out work.
 */
import { Worker } from 'node:worker_threads';
import type { CleanedChunk, CleanerKind, CleanOutcome, TextCleaner } from './cleaner.js';

/** Test-only faults, to drive the crash recovery through a real thread's death. */
export interface CleanPoolFaults {
  /** The n-th chunk handed to a thread (1-based) kills its thread half-way through it, once. */
  crashOnChunk?: number | null;
  /** A thread dies whenever it meets a text containing this (a text that crashes its cleaner every time). */
  crashOnTextContaining?: string | null;
}

export interface CleanPoolOptions {
  threads: number;
  kind: CleanerKind;
  /** Texts per chunk: small enough to spread one source batch over every thread. */
  chunkTexts?: number;
  faults?: CleanPoolFaults;
}

export interface CleanWorkerData {
  kind: CleanerKind;
  crashOnTextContaining: string | null;
}

export interface CleanJobMessage {
  id: number;
  texts: string[];
  /** Test-only: clean this many texts, then die. */
  crashAfter: number | null;
}

/** A thread's first message: its modules loaded. */
export interface CleanReadyMessage {
  ready: true;
}

export interface CleanResultMessage {
  id: number;
  outcomes: CleanOutcome[];
  seconds: number;
}

/** A text whose thread died twice while cleaning it (once in its chunk, once alone) is a dead letter, not retried for ever. */
const CRASHES_BEFORE_GIVING_UP = 2;

interface Request {
  readonly outcomes: CleanOutcome[];
  pendingTexts: number;
  seconds: number;
  resolve(chunk: CleanedChunk): void;
  reject(err: Error): void;
}

interface Job {
  readonly id: number;
  readonly request: Request;
  /** Where this job's texts start in the request. */
  readonly offset: number;
  readonly texts: string[];
  /** Times a thread died while cleaning these texts. */
  readonly crashes: number;
}

interface Slot {
  worker: Worker;
  /** Handed to this thread and not answered yet, in the order sent (the thread answers in that order). */
  jobs: Job[];
  queuedTexts: number;
  /** The thread has loaded its modules: a death before that is a broken setup, not a bad text. */
  online: boolean;
  lastError: Error | null;
}

export class CleanPool implements TextCleaner {
  readonly #data: CleanWorkerData;
  readonly #chunkTexts: number;
  readonly #slots: Slot[] = [];
  #crashOnChunk: number | null;
  #chunksSent = 0;
  #nextJobId = 1;
  #closed = false;
  #broken: Error | null = null;
  /** Threads that died and were replaced (for tests and logs). */
  restarts = 0;

  constructor(options: CleanPoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new Error(`a clean pool needs ≥ 1 thread, got ${options.threads}`);
    this.#data = { kind: options.kind, crashOnTextContaining: options.faults?.crashOnTextContaining ?? null };
    this.#chunkTexts = options.chunkTexts ?? 32;
    this.#crashOnChunk = options.faults?.crashOnChunk ?? null;
    for (let i = 0; i < options.threads; i++) this.#slots.push(this.#startSlot());
  }

  get queuedTexts(): number {
    let queued = 0;
    for (const slot of this.#slots) queued += slot.queuedTexts;
    return queued;
  }

  clean(texts: readonly string[]): Promise<CleanedChunk> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new Error('the clean pool is closed'));
    if (texts.length === 0) return Promise.resolve({ outcomes: [], seconds: 0 });
    return new Promise<CleanedChunk>((resolve, reject) => {
      const request: Request = { outcomes: new Array<CleanOutcome>(texts.length), pendingTexts: texts.length, seconds: 0, resolve, reject };
      for (let offset = 0; offset < texts.length; offset += this.#chunkTexts) {
        this.#dispatch({ id: this.#nextJobId++, request, offset, texts: texts.slice(offset, offset + this.#chunkTexts), crashes: 0 });
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  #startSlot(): Slot {
    const slot: Slot = { worker: this.#spawn(), jobs: [], queuedTexts: 0, online: false, lastError: null };
    this.#watch(slot);
    return slot;
  }

  #spawn(): Worker {
    return new Worker(new URL('./clean-worker.js', import.meta.url), { workerData: this.#data });
  }

  #watch(slot: Slot): void {
    const worker = slot.worker;
    worker.on('message', (message: CleanResultMessage | CleanReadyMessage) => {
      // A replaced thread's chunks went to others already.
      if (slot.worker !== worker) return;
      if ('ready' in message) slot.online = true;
      else this.#answered(slot, message);
    });
    worker.on('error', (err) => {
      slot.lastError = err;
    });
    worker.on('exit', (code) => {
      if (slot.worker === worker) this.#exited(slot, code);
    });
  }

  /** To the thread with the fewest texts waiting, at once (the pipeline's thread may be busy later). */
  #dispatch(job: Job): void {
    let slot = this.#slots[0]!;
    for (const candidate of this.#slots) if (candidate.queuedTexts < slot.queuedTexts) slot = candidate;
    slot.jobs.push(job);
    slot.queuedTexts += job.texts.length;
    this.#chunksSent += 1;
    const crash = this.#chunksSent === this.#crashOnChunk;
    if (crash) this.#crashOnChunk = null;
    const message: CleanJobMessage = { id: job.id, texts: job.texts, crashAfter: crash ? Math.floor(job.texts.length / 2) : null };
    slot.worker.postMessage(message);
  }

  #answered(slot: Slot, result: CleanResultMessage): void {
    const job = slot.jobs.shift();
    if (!job || job.id !== result.id) throw new Error(`clean pool: thread answered chunk ${result.id}, expected ${job?.id ?? 'none'}`);
    slot.queuedTexts -= job.texts.length;
    this.#complete(job, result.outcomes, result.seconds);
  }

  #complete(job: Job, outcomes: CleanOutcome[], seconds: number): void {
    const request = job.request;
    for (let i = 0; i < outcomes.length; i++) request.outcomes[job.offset + i] = outcomes[i]!;
    request.seconds += seconds;
    request.pendingTexts -= job.texts.length;
    if (request.pendingTexts === 0) request.resolve({ outcomes: request.outcomes, seconds: request.seconds });
  }

  /**
   * A thread ended. Closing: its unanswered requests fail (nobody waits for them). Dead
   * before it started: the pool is broken (a bad build, not a bad text). Otherwise a new
   * thread takes its place and its chunks are cleaned again: the one it died in is split
   * into single texts, so a text that kills its thread every time is the only one lost,
   * as a dead letter.
   */
  #exited(slot: Slot, code: number): void {
    const orphans = slot.jobs;
    slot.jobs = [];
    slot.queuedTexts = 0;
    if (this.#closed || this.#broken) {
      for (const job of orphans) job.request.reject(this.#broken ?? new Error('the clean pool is closed'));
      return;
    }
    if (!slot.online) {
      this.#broken = new Error(`a cleaning thread failed to start (exit code ${code})${slot.lastError ? `: ${slot.lastError.message}` : ''}`, {
        cause: slot.lastError,
      });
      for (const other of this.#slots) for (const job of other.jobs) job.request.reject(this.#broken);
      for (const job of orphans) job.request.reject(this.#broken);
      void this.close();
      return;
    }
    const reason = slot.lastError ? `: ${slot.lastError.message}` : ` (exit code ${code})`;
    this.restarts += 1;
    slot.worker = this.#spawn();
    slot.online = false;
    slot.lastError = null;
    this.#watch(slot);
    const [dying, ...waiting] = orphans;
    if (dying) this.#retryAfterCrash(dying, reason);
    for (const job of waiting) this.#dispatch(job);
  }

  #retryAfterCrash(job: Job, reason: string): void {
    const crashes = job.crashes + 1;
    if (job.texts.length > 1) {
      for (let i = 0; i < job.texts.length; i++) {
        this.#dispatch({ id: this.#nextJobId++, request: job.request, offset: job.offset + i, texts: [job.texts[i]!], crashes });
      }
    } else if (crashes < CRASHES_BEFORE_GIVING_UP) {
      this.#dispatch({ ...job, id: this.#nextJobId++, crashes });
    } else {
      this.#complete(job, [{ error: `its cleaning thread died on it ${crashes} times${reason}` }], 0);
    }
  }
}
