/**
 * The clean stage between decode and tokenize: a bounded FIFO of source batches being
 * cleaned, taken back strictly in the order they were handed in, so rows keep their order.
 */
import type { DeadLetter, Message } from '../message.js';
import { DeadLetterReasons } from '../message.js';
import { CleanPool, type CleanPoolFaults } from './clean-pool.js';
import { InlineCleaner, type CleanedChunk, type CleanerKind, type CleanFunction, type TextCleaner } from './cleaner.js';

/** `clean.threads` and friends: cleaning on a pool of worker threads. */
export interface CleanPoolSettings {
  threads: number;
  kind: CleanerKind;
  /** Source batches that may be cleaning while the pipeline's thread runs the model on older ones (backpressure). */
  maxBatchesInFlight: number;
  faults?: CleanPoolFaults;
}

/** A pool's stage when there are settings for one; else cleaning inline with `clean`, one batch at a time. */
export function makeCleanStage(pool: CleanPoolSettings | null, clean: CleanFunction): CleanStage {
  if (pool === null) return new CleanStage(new InlineCleaner(clean), 0);
  const cleaner = new CleanPool({ threads: pool.threads, kind: pool.kind, ...(pool.faults ? { faults: pool.faults } : {}) });
  return new CleanStage(cleaner, pool.maxBatchesInFlight);
}

/** One source batch's messages after cleaning. */
export interface CleanedMessages {
  /** The source's epoch the batch was taken in. */
  epoch: number;
  /** Messages handed in. */
  input: number;
  /** Those with text left after cleaning, in input order. */
  kept: Message[];
  /** Those whose cleaning failed or left nothing. */
  rejected: DeadLetter[];
  seconds: number;
}

interface InFlight {
  epoch: number;
  messages: Message[];
  cleaning: Promise<CleanedChunk>;
  settled: boolean;
}

export class CleanStage {
  readonly cleaner: TextCleaner;
  /** Batches that may be cleaning while the pipeline works on an older one (0: clean each batch before taking the next). */
  readonly maxInFlight: number;
  readonly #inFlight: InFlight[] = [];

  constructor(cleaner: TextCleaner, maxInFlight: number) {
    this.cleaner = cleaner;
    this.maxInFlight = maxInFlight;
  }

  /** Batches handed in and not taken back yet. */
  get inFlight(): number {
    return this.#inFlight.length;
  }

  /** True when a batch must be taken back before another is handed in. */
  get full(): boolean {
    return this.#inFlight.length > this.maxInFlight;
  }

  submit(messages: Message[], epoch: number): void {
    const entry: InFlight = { epoch, messages, cleaning: this.cleaner.clean(messages.map((m) => m.text)), settled: false };
    // Marks the batch ready; a rejection is seen (and thrown) by whoever takes the batch, or by nobody if it is discarded.
    entry.cleaning.then(
      () => (entry.settled = true),
      () => (entry.settled = true),
    );
    this.#inFlight.push(entry);
  }

  /** The oldest batch, waiting for it when `wait`, else only when it is cleaned already; null when there is none to take. */
  async next(wait: boolean): Promise<CleanedMessages | null> {
    const head = this.#inFlight[0];
    if (!head || (!wait && !head.settled)) return null;
    const chunk = await head.cleaning;
    this.#inFlight.shift();
    return { epoch: head.epoch, input: head.messages.length, ...messagesAfterCleaning(head.messages, chunk), seconds: chunk.seconds };
  }

  /** Drops every batch in flight (a rebalance: the source delivers them again); their cleaning finishes unseen. */
  discard(): void {
    this.#inFlight.length = 0;
  }

  async close(): Promise<void> {
    this.discard();
    await this.cleaner.close();
  }
}

/** Pairs each message with its cleaning: a failure, or a text that cleans to nothing, becomes a dead letter. */
export function messagesAfterCleaning(messages: readonly Message[], chunk: CleanedChunk): { kept: Message[]; rejected: DeadLetter[] } {
  const kept: Message[] = [];
  const rejected: DeadLetter[] = [];
  const reject = (m: Message, reason: DeadLetter['reason'], detail: string): void => {
    const original = m.original?.() ?? new TextEncoder().encode(m.text);
    rejected.push({ position: m.position, reason, detail, original, ...(m.key === undefined ? {} : { key: m.key }) });
  };
  messages.forEach((message, i) => {
    const outcome = chunk.outcomes[i]!;
    if ('error' in outcome) reject(message, DeadLetterReasons.UNDECODABLE, `cleaning failed: ${outcome.error}`);
    else if (outcome.text === '') reject(message, DeadLetterReasons.EMPTY_TEXT, 'text is empty after cleaning');
    else kept.push({ ...message, text: outcome.text });
  });
  return { kept, rejected };
}
