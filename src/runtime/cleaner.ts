/**
 * The clean stage as the pipeline sees it: a chunk of texts in, one outcome per text out,
 * in the same order, whether cleaned here (`InlineCleaner`) or on worker threads (clean-pool.ts).
 */

/** One text's cleaning: its cleaned text, or why cleaning failed (the record becomes a dead letter). */
export type CleanOutcome = { readonly text: string } | { readonly error: string };

export interface CleanedChunk {
  /** One per input text, in input order. */
  outcomes: CleanOutcome[];
  /** Time spent cleaning these texts, summed over the threads that did it. */
  seconds: number;
}

export interface TextCleaner {
  /** Cleans the texts; never rejects for a bad text (that is an outcome), only if the cleaner is closed. */
  clean(texts: readonly string[]): Promise<CleanedChunk>;
  /** Texts handed over and not cleaned yet (the pool's queue depth; 0 when cleaning inline). */
  readonly queuedTexts: number;
  /** Stops the cleaner's threads; safe to call twice. */
  close(): Promise<void>;
}

/** Which cleaning function applies (`clean.email`): a name, because a worker thread cannot be sent a function. */
export type CleanerKind = 'email' | 'text';

export type CleanFunction = (text: string) => Promise<string> | string;

/** Cleans each text in turn, collecting a failure as that text's outcome. */
export async function cleanEach(texts: readonly string[], clean: CleanFunction): Promise<CleanOutcome[]> {
  const outcomes: CleanOutcome[] = [];
  for (const text of texts) {
    try {
      outcomes.push({ text: await clean(text) });
    } catch (err) {
      outcomes.push({ error: err instanceof Error ? err.message : String(err) });
    }
  }
  return outcomes;
}

/** Cleaning on the calling thread, one chunk after another (`clean.threads: 0`). */
export class InlineCleaner implements TextCleaner {
  readonly #clean: CleanFunction;
  readonly queuedTexts = 0;

  constructor(clean: CleanFunction) {
    this.#clean = clean;
  }

  async clean(texts: readonly string[]): Promise<CleanedChunk> {
    const start = process.hrtime.bigint();
    const outcomes = await cleanEach(texts, this.#clean);
    return { outcomes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  }

  async close(): Promise<void> {}
}
