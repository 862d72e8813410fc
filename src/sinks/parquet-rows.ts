/**
 * The Parquet sink's rows: its output columns, and the rows of a scored Arrow batch
 * (checked, then read column by column without copying the texts).
 */
import type { Data, DataType, Int8, Int32, Int64, RecordBatch, TimestampMillisecond, Utf8, Vector } from 'apache-arrow';
import { Columns } from '../batch/schema.js';
import { SinkError } from '../errors.js';
import { predictedLabel } from '../model/evaluation.js';
import type { ParquetColumn } from './parquet-writer.js';
import type { ScoredBatch } from './sink.js';

/** The output columns. INT64 columns go through parseInt in parquetjs-lite: exact below 2^53. */
export const OutputColumns = {
  ID: 'id',
  SCORE: 'score',
  PREDICTED: 'predicted',
  LABEL: 'label',
  MODEL_VERSION: 'model_version',
  SOURCE: 'source',
  PARTITION: 'partition',
  OFFSET: 'offset',
  TIMESTAMP: 'timestamp',
  PROCESSED_AT: 'processed_at',
  TEXT: 'text',
} as const;

export function outputSchema(includeText: boolean): Record<string, ParquetColumn> {
  const columns: Record<string, ParquetColumn> = {
    [OutputColumns.ID]: { type: 'UTF8', statistics: false },
    // FLOAT: the model's scores are float32; a DOUBLE would show 0.10000000149011612.
    [OutputColumns.SCORE]: { type: 'FLOAT' },
    [OutputColumns.PREDICTED]: { type: 'INT32' },
    [OutputColumns.LABEL]: { type: 'INT32', optional: true },
    [OutputColumns.MODEL_VERSION]: { type: 'INT64' },
    [OutputColumns.SOURCE]: { type: 'UTF8' },
    [OutputColumns.PARTITION]: { type: 'INT32' },
    [OutputColumns.OFFSET]: { type: 'INT64' },
    [OutputColumns.TIMESTAMP]: { type: 'TIMESTAMP_MILLIS', optional: true },
    [OutputColumns.PROCESSED_AT]: { type: 'TIMESTAMP_MILLIS' },
  };
  if (includeText) columns[OutputColumns.TEXT] = { type: 'UTF8', statistics: false };
  return columns;
}

interface ExtractedRow {
  source: string;
  partition: number;
  offset: bigint;
  values: Record<string, unknown>;
}

export interface ExtractedRows {
  length: number;
  /** Position columns only: cheap, for validation. */
  peek(i: number): Omit<ExtractedRow, 'values'>;
  timestamp(i: number): number | null;
  at(i: number): ExtractedRow;
}

export function extractRows(scored: ScoredBatch, includeText: boolean): ExtractedRows {
  const { batch, scores } = scored;
  if (scores.length !== batch.numRows) {
    throw new SinkError(`batch has ${batch.numRows} rows but ${scores.length} scores`, { canRetry: false });
  }
  if (!Number.isSafeInteger(scored.processedAtMs) || scored.processedAtMs < 0) {
    throw new SinkError(`processedAtMs ${scored.processedAtMs} is not a time`, { canRetry: false });
  }
  if (!Number.isSafeInteger(scored.modelVersion) || scored.modelVersion < 0) {
    throw new SinkError(`model version ${scored.modelVersion} is not an integer in 0..2^53-1`, { canRetry: false });
  }
  const ids = column<Utf8>(batch, Columns.ID);
  const labels = column<Int8>(batch, Columns.LABEL);
  const sources = column<Utf8>(batch, Columns.SOURCE);
  const partitions = column<Int32>(batch, Columns.PARTITION);
  const offsets = column<Int64>(batch, Columns.OFFSET);
  const timestamps = column<TimestampMillisecond>(batch, Columns.TIMESTAMP);
  const text = includeText ? utf8Bytes(column<Utf8>(batch, Columns.TEXT)) : null;
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) {
      throw new SinkError(`score of row ${String(ids.get(i))} is NaN (model diverged?)`, { canRetry: false });
    }
  }
  const peek = (i: number): Omit<ExtractedRow, 'values'> => ({
    source: sources.get(i)!,
    partition: partitions.get(i)!,
    offset: offsets.get(i)!,
  });
  return {
    length: batch.numRows,
    peek,
    timestamp: (i) => timestamps.get(i),
    at(i) {
      const position = peek(i);
      const score = scores[i]!;
      const values: Record<string, unknown> = {
        [OutputColumns.ID]: ids.get(i),
        [OutputColumns.SCORE]: score,
        [OutputColumns.PREDICTED]: predictedLabel(score),
        [OutputColumns.LABEL]: labels.get(i),
        [OutputColumns.MODEL_VERSION]: scored.modelVersion,
        [OutputColumns.SOURCE]: position.source,
        [OutputColumns.PARTITION]: position.partition,
        // A number, exact because it was checked to be below 2^53 (see ParquetSink's #validate).
        [OutputColumns.OFFSET]: Number(position.offset),
        [OutputColumns.TIMESTAMP]: timestamps.get(i),
        [OutputColumns.PROCESSED_AT]: scored.processedAtMs,
      };
      if (text) values[OutputColumns.TEXT] = text(i);
      return { ...position, values };
    },
  };
}

function column<T extends DataType>(batch: RecordBatch, name: string): Vector<T> {
  const vector = batch.getChild(name);
  if (!vector) throw new SinkError(`batch has no ${name} column`, { canRetry: false });
  return vector as Vector<T>;
}

/**
 * The UTF-8 bytes of row i of a single-chunk Utf8 column, without decoding to a JS string
 * and encoding again (texts are the bulk of the bytes).
 */
function utf8Bytes(vector: Vector<Utf8>): (i: number) => Buffer {
  if (vector.data.length !== 1) throw new SinkError('text column must have a single chunk', { canRetry: false });
  const data = vector.data[0] as Data<Utf8>;
  const { valueOffsets, values } = data;
  return (i) => {
    const start = valueOffsets[i]!;
    const end = valueOffsets[i + 1]!;
    return Buffer.from(values.buffer, values.byteOffset + start, end - start);
  };
}
