/**
 * Per source and partition, the last offset a model has learnt from. It travels with the
 * model in checkpoints (CheckpointState.trainedThrough), so a model restored from an
 * older checkpoint knows which records it must read again to relearn them.
 */
import type { RecordBatch } from 'apache-arrow';
import { sourceRanges } from '../batch/positions.js';
import { InputError } from '../errors.js';
import type { TrainedThrough } from './checkpoint.js';

export class TrainedThroughOffsets {
  /** Per `source\u0000partition`: the last offset learnt from. */
  readonly #offsets: Map<string, bigint>;

  constructor(offsets: Map<string, bigint> = new Map()) {
    this.#offsets = offsets;
  }

  /** From a checkpoint's JSON form; throws on an entry that is not a partition and an offset. */
  static fromJSON(json: TrainedThrough): TrainedThroughOffsets {
    const positions = new Map<string, bigint>();
    for (const [source, partitions] of Object.entries(json)) {
      for (const [partition, offset] of Object.entries(partitions)) {
        if (!/^\d+$/.test(partition) || !/^-?\d+$/.test(offset)) throw new InputError(`${source}/${partition}: ${offset} is not an offset`);
        positions.set(`${source}\u0000${partition}`, BigInt(offset));
      }
    }
    return new TrainedThroughOffsets(positions);
  }

  /** The last offset of a source's partition learnt from, or null. */
  get(source: string, partition: number): bigint | null {
    return this.#offsets.get(`${source}\u0000${partition}`) ?? null;
  }

  /** Notes the batch's rows as learnt from. */
  note(batch: RecordBatch): void {
    for (const range of sourceRanges(batch)) {
      const key = `${range.source}\u0000${range.partition}`;
      const last = BigInt(range.lastOffset);
      const known = this.#offsets.get(key);
      if (known === undefined || last > known) this.#offsets.set(key, last);
    }
  }

  /** The checkpoint's JSON form: source → partition → offset as a decimal string. */
  toJSON(): TrainedThrough {
    const json: TrainedThrough = {};
    for (const [key, offset] of this.#offsets) {
      const [source, partition] = key.split('\u0000') as [string, string];
      (json[source] ??= {})[partition] = offset.toString();
    }
    return json;
  }
}
