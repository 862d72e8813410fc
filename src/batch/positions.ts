import type { Int32, Int64, RecordBatch, Utf8, Vector } from 'apache-arrow';
import { Columns } from './schema.js';

/** Where some rows of a batch came from: one offset range per (source, partition). */
export interface SourceRange {
  source: string;
  partition: number;
  /** int64 offsets as decimal strings. */
  firstOffset: string;
  lastOffset: string;
}

/** Per (source, partition): the first and last offset among `rows` of the batch (default: all rows). */
export function sourceRanges(batch: RecordBatch, rows?: ArrayLike<number>): SourceRange[] {
  return collectRanges(batch, rows).map(({ rows: _, ...range }) => range);
}

/** sourceRanges, with how many of the rows fall in each range. */
export function sourceRangesWithRows(batch: RecordBatch): (SourceRange & { rows: number })[] {
  return collectRanges(batch);
}

function collectRanges(batch: RecordBatch, rows?: ArrayLike<number>): (SourceRange & { rows: number })[] {
  const sources = batch.getChild(Columns.SOURCE) as Vector<Utf8> | null;
  const partitions = batch.getChild(Columns.PARTITION) as Vector<Int32> | null;
  const offsets = batch.getChild(Columns.OFFSET) as Vector<Int64> | null;
  if (sources === null || partitions === null || offsets === null) return [];
  type Range = { source: string; partition: number; first: bigint; last: bigint; rows: number };
  const ranges = new Map<string, Range>();
  // Rows come in runs of one partition: look the range up only when the run changes.
  let range: Range | undefined;
  const count = rows?.length ?? batch.numRows;
  for (let i = 0; i < count; i++) {
    const row = rows === undefined ? i : rows[i]!;
    const source = sources.get(row) ?? '';
    const partition = partitions.get(row) ?? -1;
    const offset = BigInt(offsets.get(row) ?? -1);
    if (range === undefined || range.source !== source || range.partition !== partition) {
      const key = `${source}\u0000${partition}`;
      range = ranges.get(key);
      if (range === undefined) {
        range = { source, partition, first: offset, last: offset, rows: 0 };
        ranges.set(key, range);
      }
    }
    if (offset < range.first) range.first = offset;
    if (offset > range.last) range.last = offset;
    range.rows++;
  }
  return [...ranges.values()].map((r) => ({ source: r.source, partition: r.partition, firstOffset: String(r.first), lastOffset: String(r.last), rows: r.rows }));
}
