/**
 * The trainer role's sinks: scorers write the output and the dead letters of the topic,
 * so a trainer writes nothing. Each batch counts as done at once, so the trainer's own
 * consumer group commits what it has trained on. Neither counts in the output and
 * dead-letter metrics: the scorers read the same records and count them once.
 */
import { sourceRangesWithRows } from '../batch/positions.js';
import type { DeadLetterSink, DurableFile, ScoredBatch, Sink } from './sink.js';

export class DiscardSink implements Sink {
  readonly keepsNothing = true;

  write(scored: ScoredBatch): Promise<DurableFile[]> {
    return Promise.resolve(
      sourceRangesWithRows(scored.batch).map((range) => ({
        path: '',
        source: range.source,
        partition: range.partition,
        firstOffset: BigInt(range.firstOffset),
        lastOffset: BigInt(range.lastOffset),
        rows: range.rows,
        bytes: 0,
      })),
    );
  }

  flush(): Promise<DurableFile[]> {
    return Promise.resolve([]);
  }

  close(): Promise<DurableFile[]> {
    return Promise.resolve([]);
  }

  discard(): Promise<void> {
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }
}

export class DiscardDeadLetterSink implements DeadLetterSink {
  readonly keepsNothing = true;

  write(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
