/**
 * The trainer role's sinks: scorers write the output and the dead letters of the topic,
 * so a trainer writes nothing. Each batch counts as done at once, so the trainer's own
 * consumer group commits what it has trained on; its bad records are only counted.
 */
import { sourceRangesWithRows } from '../batch/positions.js';
import type { DeadLetterSink, DurableFile, ScoredBatch, Sink } from './sink.js';

export class DiscardSink implements Sink {
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
  write(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
