import {
  Field,
  FixedSizeList,
  Int8,
  Int32,
  Int64,
  Schema,
  TimestampMillisecond,
  Utf8,
} from 'apache-arrow';

/** Column names of a pipeline batch; the model and the sinks read columns by these. */
export const Columns = {
  ID: 'id',
  TOKENS: 'tokens',
  LABEL: 'label',
  TEXT: 'text',
  SOURCE: 'source',
  PARTITION: 'partition',
  OFFSET: 'offset',
  TIMESTAMP: 'timestamp',
} as const;

/**
 * The Arrow schema of one pipeline batch. `tokens` is a FixedSizeList so that the
 * model can hand its flat Int32 child buffer straight to a tensor (rows × maxLen).
 * Strings are declared as plain Utf8 (Arrow would otherwise dictionary-encode them).
 */
export function makeBatchSchema(maxLen: number): Schema {
  return new Schema([
    new Field(Columns.ID, new Utf8(), false),
    new Field(Columns.TOKENS, new FixedSizeList(maxLen, new Field('item', new Int32(), false)), false),
    new Field(Columns.LABEL, new Int8(), true),
    new Field(Columns.TEXT, new Utf8(), false),
    new Field(Columns.SOURCE, new Utf8(), false),
    new Field(Columns.PARTITION, new Int32(), false),
    new Field(Columns.OFFSET, new Int64(), false),
    new Field(Columns.TIMESTAMP, new TimestampMillisecond(), true),
  ]);
}
