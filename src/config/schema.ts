import { z } from 'zod';
import { LSTM_IMPLEMENTATIONS } from '../model/lstm-implementation.js';

/**
 * The pipeline definition. Every field has a default, so a YAML file only states what
 * differs; `.strict()` everywhere so a misspelt key is an error, not silently ignored.
 * Relative paths are resolved against the working directory.
 */
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const ParquetSourceSchema = z
  .object({
    type: z.literal('parquet'),
    path: z.string().min(1).describe('Parquet file to replay.'),
    columns: z
      .object({
        text: z.string().min(1).default('text'),
        label: z.string().min(1).nullable().default('label').describe('null: the data has no labels.'),
        id: z.string().min(1).nullable().default('id').describe('null: ids are <file>:<row>.'),
      })
      .strict()
      .prefault({}),
    batchRows: positiveInt.default(512).describe('Rows read from the file at a time.'),
    dataset: z
      .enum(['spamassassin'])
      .nullable()
      .default(null)
      .describe('Build this bundled dataset at `path` when the file does not exist.'),
    datasetSeed: z.number().int().default(42).describe('Shuffle seed used when building `dataset`.'),
  })
  .strict();

export const KafkaSourceSchema = z
  .object({
    type: z.literal('kafka'),
    brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']).describe('Bootstrap brokers, host:port.'),
    topic: z.string().min(1),
    groupId: z.string().min(1).describe('Consumer group; workers with the same group share partitions.'),
    clientId: z.string().min(1).default('textstream'),
    fromBeginning: z.boolean().default(true).describe('Where a group with no committed offset starts.'),
    format: z.enum(['json', 'text']).default('json').describe('json: {"id","text","label"}; text: the value is the text.'),
    fields: z
      .object({
        id: z.string().min(1).default('id'),
        text: z.string().min(1).default('text'),
        label: z.string().min(1).default('label'),
      })
      .strict()
      .prefault({}),
    maxBufferedMessages: positiveInt
      .default(2000)
      .describe('Fetched but unprocessed messages above which partitions are paused (backpressure).'),
    commitIntervalMs: positiveInt
      .default(5000)
      .describe('Open Parquet files are finished, and their offsets committed, at least this often.'),
    shutdownTimeoutMs: positiveInt.default(30_000).describe('SIGTERM drain deadline; past it the worker exits 1.'),
    sessionTimeoutMs: positiveInt
      .default(30_000)
      .describe('How long the group waits for a silent (crashed) worker before moving its partitions.'),
  })
  .strict();

export const PipelineSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, - or _')
      .describe('Names the output folder and the `pipeline` metric label.'),
    source: z.discriminatedUnion('type', [ParquetSourceSchema, KafkaSourceSchema]),
    decode: z
      .object({
        maxMessageBytes: positiveInt.default(1_048_576).describe('Larger messages become dead letters (oversized).'),
      })
      .strict()
      .prefault({}),
    clean: z
      .object({
        email: z.boolean().default(false).describe('Parse texts as raw RFC 822 emails (subject + body).'),
      })
      .strict()
      .prefault({}),
    tokenizer: z
      .object({
        numWords: positiveInt.default(10_000),
        maxLen: positiveInt.default(100),
        oovToken: z.string().min(1).nullable().default(null),
        bootstrapRows: positiveInt
          .default(1000)
          .describe('Messages the vocabulary is fitted on before it is frozen.'),
        path: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('Load a saved tokenizer (ours or Keras to_json()) instead of fitting one.'),
      })
      .strict()
      .prefault({}),
    batch: z
      .object({
        maxRows: positiveInt.default(256).describe('Rows per Arrow batch (one score call each).'),
        maxAgeMs: positiveInt.default(1000).describe('Flush an underfull batch after this long.'),
      })
      .strict()
      .prefault({}),
    model: z
      .object({
        backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
        lstm: z
          .enum(LSTM_IMPLEMENTATIONS)
          .default('auto')
          .describe("LSTM layer: 'fused' (native, built at install), 'stock' (tfjs-layers) or 'auto' (fused when built)."),
        embeddingDim: positiveInt.default(64),
        units: positiveInt.default(64),
        learningRate: z.number().positive().default(0.001),
        trainBatchSize: positiveInt.default(32),
        seed: z.number().int().default(42),
        checkpointDir: z.string().min(1).nullable().default(null).describe('Where checkpoints go; null: none.'),
        checkpointEveryRows: nonNegativeInt.default(0).describe('0: only at the end of the run.'),
      })
      .strict()
      .prefault({}),
    sink: z
      .object({
        type: z.literal('parquet').default('parquet'),
        dir: z.string().min(1).default('out'),
        rotateRows: positiveInt.default(10_000),
        compression: z.enum(['UNCOMPRESSED', 'SNAPPY', 'GZIP']).default('SNAPPY'),
        includeText: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    deadLetter: z
      .object({
        path: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('Replay: JSON-lines file; null: <sink.dir>/<name>/dead-letters.jsonl.'),
        topic: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('Kafka: dead-letter topic; null: <source.topic>.dlq.'),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65_535).default(9464).describe('0: any free port.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PipelineConfig = z.infer<typeof PipelineSchema>;
export type ParquetSourceConfig = z.infer<typeof ParquetSourceSchema>;
export type KafkaSourceConfig = z.infer<typeof KafkaSourceSchema>;
