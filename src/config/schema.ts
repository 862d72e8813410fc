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
    type: z.literal('parquet').describe('Replay a Parquet file (`textstream replay`).'),
    path: z.string().min(1).describe('Parquet file to replay.'),
    columns: z
      .object({
        text: z.string().min(1).default('text').describe('Column holding the message text.'),
        label: z.string().min(1).nullable().default('label').describe('Column holding the 0/1 label; null: the data has no labels.'),
        id: z.string().min(1).nullable().default('id').describe('Column holding the record id; null: ids are <file>:<row>.'),
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
    type: z.literal('kafka').describe('Consume a Kafka topic as a consumer-group worker (`textstream run`).'),
    brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']).describe('Bootstrap brokers, host:port.'),
    topic: z.string().min(1).describe('Topic the messages are read from.'),
    groupId: z.string().min(1).describe('Consumer group; workers with the same group share partitions.'),
    clientId: z.string().min(1).default('textstream').describe('Kafka client id, sent to the brokers (shows in their logs and quotas).'),
    fromBeginning: z.boolean().default(true).describe('Where a group with no committed offset starts.'),
    format: z.enum(['json', 'text']).default('json').describe('json: {"id","text","label"}; text: the value is the text.'),
    fields: z
      .object({
        id: z.string().min(1).default('id').describe('JSON field holding the record id (format json).'),
        text: z.string().min(1).default('text').describe('JSON field holding the message text (format json).'),
        label: z.string().min(1).default('label').describe('JSON field holding the 0/1 label (format json).'),
      })
      .strict()
      .prefault({}),
    maxBufferedMessages: positiveInt
      .default(2000)
      .describe('Messages fetched but not yet processed above which partitions are paused (backpressure).'),
    commitIntervalMs: positiveInt
      .default(5000)
      .describe('Open Parquet files are finished, and their offsets committed, at least this often (ms).'),
    shutdownTimeoutMs: positiveInt.default(30_000).describe('SIGTERM drain deadline (ms); past it the worker exits 1.'),
    sessionTimeoutMs: positiveInt
      .default(30_000)
      .describe('How long (ms) the group waits for a silent (crashed) worker before moving its partitions.'),
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
        maxMessageBytes: positiveInt.default(1_048_576).describe('Largest message accepted (bytes); larger ones become `oversized` dead letters.'),
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
        numWords: positiveInt.default(10_000).describe('Vocabulary size: only the numWords - 1 most frequent words get an index (Keras num_words).'),
        maxLen: positiveInt.default(100).describe('Tokens per sequence; longer texts lose their start, shorter are pre-padded with 0.'),
        oovToken: z.string().min(1).nullable().default(null).describe('Token that stands for out-of-vocabulary words (index 1); null: they are dropped.'),
        bootstrapRows: positiveInt
          .default(1000)
          .describe('Messages the vocabulary is fitted on before it is frozen.'),
        bootstrapMaxWaitMs: positiveInt
          .nullable()
          .default(30_000)
          .describe(
            'Kafka: fit the vocabulary on the messages that have arrived when bootstrapRows have not, this long (ms) after the first; null: wait for all of them.',
          ),
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
        maxRows: positiveInt.default(256).describe('Rows per Arrow record batch (one score call each).'),
        maxAgeMs: positiveInt.default(1000).describe('Flush an underfull batch after this long (ms).'),
      })
      .strict()
      .prefault({}),
    model: z
      .object({
        backend: z
          .enum(['auto', 'tensorflow', 'wasm', 'cpu'])
          .default('auto')
          .describe("tfjs backend; 'auto': tensorflow (tfjs-node) when installed, else wasm; 'cpu' only on request."),
        lstm: z
          .enum(LSTM_IMPLEMENTATIONS)
          .default('auto')
          .describe("LSTM layer: 'fused' (native, built at install), 'stock' (tfjs-layers) or 'auto' (fused when built)."),
        embeddingDim: positiveInt.default(64).describe('Width of the word embedding (floats per token).'),
        units: positiveInt.default(64).describe('LSTM hidden units.'),
        learningRate: z.number().positive().default(0.001).describe('Adam learning rate.'),
        trainBatchSize: positiveInt.default(32).describe('Labelled rows per training step.'),
        seed: z.number().int().default(42).describe('Seed for the initial weights.'),
        checkpointDir: z.string().min(1).nullable().default(null).describe('Where checkpoints go; null: none.'),
        initialModel: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            'tfjs layers-format model.json (from `textstream model export` or `scripts/keras_interop.py from-keras`) whose weights, matched by order and shape, initialise the network instead of random weights; a checkpoint, when present, wins. null: random init.',
          ),
        checkpointEveryRows: nonNegativeInt.default(0).describe('Checkpoint after this many trained rows; 0: only at the end of the run.'),
      })
      .strict()
      .prefault({}),
    sink: z
      .object({
        type: z.literal('parquet').default('parquet').describe('Output format (Parquet only).'),
        dir: z.string().min(1).default('out').describe('Output root; files go under <dir>/<name>/.'),
        rotateRows: positiveInt.default(10_000).describe('Rows per Parquet file before a new one is started.'),
        compression: z.enum(['UNCOMPRESSED', 'SNAPPY', 'GZIP']).default('SNAPPY').describe('Parquet page compression.'),
        includeText: z.boolean().default(false).describe('Also write each record’s text to the output files.'),
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
        enabled: z.boolean().default(true).describe('Serve Prometheus metrics on /metrics.'),
        host: z.string().min(1).default('127.0.0.1').describe('Address the metrics server listens on.'),
        port: z.number().int().min(0).max(65_535).default(9464).describe('TCP port of the metrics server; 0: any free port.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PipelineConfig = z.infer<typeof PipelineSchema>;
export type ParquetSourceConfig = z.infer<typeof ParquetSourceSchema>;
export type KafkaSourceConfig = z.infer<typeof KafkaSourceSchema>;
