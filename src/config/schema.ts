import { z } from 'zod';

/**
 * Which LSTM layer runs: 'fused' (src/model/fused-lstm.ts, one native call per pass),
 * 'stock' (tf.layers.lstm) or 'auto' (fused when its addon loads, else stock). Both have
 * the same weights, so the choice never changes what a checkpoint holds.
 */
export const LSTM_IMPLEMENTATIONS = ['auto', 'fused', 'stock'] as const;
export type LstmImplementation = (typeof LSTM_IMPLEMENTATIONS)[number];

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
        label: z.string().min(1).nullable().default('label').describe('Column holding the label (0/1, or a text label mapped by decode.labels); null: the data has no labels.'),
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

/** SASL mechanisms, spelt as kafkajs and the README spell them. */
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

const optionalPath = (description: string) => z.string().min(1).nullable().default(null).describe(description);

/**
 * Where a secret comes from: the name of an environment variable. TEXTSTREAM_ names are
 * pipeline overrides (./env.ts would reject the variable as an unknown setting), so a
 * secret must live under another name.
 */
const optionalEnvName = (description: string) =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name (letters, digits, _), not the secret itself')
    .refine((name) => !name.startsWith('TEXTSTREAM_'), 'TEXTSTREAM_ variables are pipeline overrides; keep the secret in a variable named otherwise, e.g. KAFKA_SASL_PASSWORD')
    .nullable()
    .default(null)
    .describe(description);

/**
 * SASL authentication. The password is given only by reference (an environment variable
 * or a file, read when the worker starts), so a pipeline file, `config show` and the logs
 * never hold it; a literal `password:` is rejected by load.ts with that advice.
 */
export const KafkaSaslSchema = z
  .object({
    mechanism: z
      .enum(SASL_MECHANISMS)
      .nullable()
      .default(null)
      .describe("SASL mechanism: 'plain', 'scram-sha-256' or 'scram-sha-512'; null: no SASL. PLAIN sends the password as it is: use it with tls.enabled."),
    username: z.string().min(1).nullable().default(null).describe('SASL user name (required with a mechanism).'),
    passwordEnv: optionalEnvName(
      'Name of the environment variable that holds the SASL password, read at startup and never logged. With a mechanism, give this or passwordFile (a literal password is not accepted).',
    ),
    passwordFile: optionalPath('File that holds the SASL password (e.g. a mounted secret), read at startup; a trailing newline is ignored.'),
  })
  .strict()
  .superRefine((sasl, ctx) => {
    if (sasl.mechanism === null) {
      for (const key of ['username', 'passwordEnv', 'passwordFile'] as const) {
        if (sasl[key] !== null) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect without sasl.mechanism; set the mechanism too' });
      }
      return;
    }
    if (sasl.username === null) ctx.addIssue({ code: 'custom', path: ['username'], message: `required with sasl.mechanism ${sasl.mechanism}` });
    if (sasl.passwordEnv === null && sasl.passwordFile === null) {
      ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: `required with sasl.mechanism ${sasl.mechanism}: name the environment variable (passwordEnv) or the file (passwordFile) that holds the password` });
    } else if (sasl.passwordEnv !== null && sasl.passwordFile !== null) {
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'give passwordEnv or passwordFile, not both' });
    }
  });

/** TLS to the brokers (SSL / SASL_SSL listeners); files are PEM, read at startup. */
export const KafkaTlsSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Connect to the brokers with TLS (SSL or SASL_SSL listeners).'),
    caFile: optionalPath("PEM file of the CA certificate(s) the brokers' certificates are checked against; null: Node's bundled CAs."),
    certFile: optionalPath('PEM client certificate, for brokers that require mutual TLS (with keyFile).'),
    keyFile: optionalPath("PEM private key of certFile."),
    keyPasswordEnv: optionalEnvName('Name of the environment variable that holds the passphrase of an encrypted keyFile.'),
    keyPasswordFile: optionalPath('File that holds the passphrase of an encrypted keyFile; a trailing newline is ignored.'),
    rejectUnauthorized: z
      .boolean()
      .default(true)
      .describe("Verify the brokers' certificates and host names; false accepts any certificate (a throwaway test cluster only: it allows man-in-the-middle attacks)."),
    servername: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Host name sent as SNI and checked against every broker's certificate; null: the host of each broker's address."),
  })
  .strict()
  .superRefine((tls, ctx) => {
    if (!tls.enabled) {
      for (const key of ['caFile', 'certFile', 'keyFile', 'keyPasswordEnv', 'keyPasswordFile', 'servername'] as const) {
        if (tls[key] !== null) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect unless tls.enabled is true' });
      }
      if (!tls.rejectUnauthorized) ctx.addIssue({ code: 'custom', path: ['rejectUnauthorized'], message: 'has no effect unless tls.enabled is true' });
      return;
    }
    if ((tls.certFile === null) !== (tls.keyFile === null)) {
      ctx.addIssue({ code: 'custom', path: [tls.certFile === null ? 'certFile' : 'keyFile'], message: 'mutual TLS needs both certFile and keyFile' });
    }
    if (tls.keyPasswordEnv !== null && tls.keyPasswordFile !== null) {
      ctx.addIssue({ code: 'custom', path: ['keyPasswordFile'], message: 'give keyPasswordEnv or keyPasswordFile, not both' });
    } else if ((tls.keyPasswordEnv !== null || tls.keyPasswordFile !== null) && tls.keyFile === null) {
      ctx.addIssue({ code: 'custom', path: [tls.keyPasswordEnv !== null ? 'keyPasswordEnv' : 'keyPasswordFile'], message: 'a key passphrase needs tls.keyFile' });
    }
  });

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
        label: z.string().min(1).default('label').describe('JSON field holding the label (0/1, or a text label mapped by decode.labels; format json).'),
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
    sasl: KafkaSaslSchema.prefault({}),
    tls: KafkaTlsSchema.prefault({}),
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
        labels: z
          .record(z.string().min(1), z.union([z.literal(0), z.literal(1)]))
          .default({})
          .describe(
            'Text labels and the class each stands for, e.g. {spam: 1, ham: 0}; 0, 1 and null are always accepted. A label that is neither becomes an `invalid-label` dead letter.',
          ),
      })
      .strict()
      .prefault({}),
    clean: z
      .object({
        email: z.boolean().default(false).describe('Parse texts as raw RFC 822 emails (subject + body).'),
        threads: z
          .number()
          .int()
          .min(0)
          .nullable()
          .default(null)
          .describe(
            'Worker threads that clean while the main thread tokenizes and runs the model; 0: clean on the main thread, one batch at a time; null: one per core the process may use but one (1 on 2 cores). They share the cores with model.lstmThreads (docs/performance.md, "Cleaning pool").',
          ),
        maxBatchesInFlight: positiveInt
          .default(4)
          .describe('With threads > 0: source batches that may be cleaning while the model works on older ones; reading the source waits beyond that.'),
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
        lstmThreads: positiveInt
          .nullable()
          .default(null)
          .describe('Threads of the fused LSTM per call (the batch is split by sample), e.g. 1 to leave the other cores to other workers; null: every core the process may use.'),
        embeddingDim: positiveInt.default(64).describe('Width of the word embedding (floats per token).'),
        units: positiveInt.default(64).describe('LSTM hidden units.'),
        learningRate: z
          .number()
          .positive()
          .default(0.003)
          .describe(
            "Adam learning rate. 0.003, not Keras' 0.001: a stream is learnt in one pass, so the early steps decide most of its accuracy; with clipNorm the higher rate stays stable (docs/quality.md).",
          ),
        clipNorm: z
          .number()
          .positive()
          .nullable()
          .default(1)
          .describe(
            "Scale each training step's gradients down to this joint L2 norm when larger (Keras' global_clipnorm): the rare exploding LSTM gradient then cannot undo what the model learnt; null: no clipping.",
          ),
        trainBatchSize: positiveInt.default(32).describe('Labelled rows per training step.'),
        seed: z.number().int().default(42).describe('Seed for the initial weights.'),
        checkpoints: z
          .boolean()
          .default(true)
          .describe('Save checkpoints (at the end of a run, and every checkpointEveryRows), so that a run can be resumed and its model exported.'),
        checkpointDir: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('Where checkpoints go, in a folder per input file or topic (<checkpointDir>/<input>/); null: <sink.dir>/<name>/_checkpoints.'),
        initialModel: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            'tfjs layers-format model.json (from `textstream model export` or `scripts/keras_interop.py from-keras`) whose weights, matched by order and shape, initialise the network instead of random weights; a checkpoint, when present, wins. null: random init.',
          ),
        checkpointEveryRows: nonNegativeInt.default(0).describe('Checkpoint after this many trained rows; 0: only at the end of the run.'),
        retrainLimitRows: nonNegativeInt
          .default(100_000)
          .describe(
            'Kafka: a worker restarted from a checkpoint trains again, without writing them again, on the messages of each partition between its checkpoint and where it resumes, up to this many; 0: never.',
          ),
      })
      .strict()
      .prefault({}),
    snapshots: z
      .object({
        topic: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            'Kafka: compacted topic the worker publishes model snapshots to (weights, optimizer state, vocabulary, version, rows, offsets learnt, metrics), created when missing; null: none.',
          ),
        everyRows: positiveInt.default(5000).describe('Publish a snapshot after this many more trained rows.'),
        everySeconds: positiveInt.default(60).describe('…or after this long, when anything was trained since the last one.'),
        producerId: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("This worker's name on the snapshot topic, kept across restarts (the topic keeps the latest snapshot per name); null: <name>@<host name>."),
        average: z
          .boolean()
          .default(false)
          .describe(
            "Trainers: before each publish, average the model's weights with the other trainers' latest snapshots (federated averaging weighted by the rows each trained since the last average), and take each a share of batch.maxRows and model.trainBatchSize, the share of the topic's partitions it reads, so N trainers together take one trainer's optimiser steps per row; all trainers need the same model.seed.",
          ),
        scorerStart: z
          .enum(['wait', 'untrained'])
          .default('wait')
          .describe(
            "A scorer (run --role score) with no snapshot on the topic yet: 'wait' for one, or score with an 'untrained' model (the seed's weights, version 0) until one arrives.",
          ),
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
          .describe('Replay: JSON-lines file; null: one per input, <sink.dir>/<name>/_dead-letters/<input>.jsonl.'),
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
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe('Address the metrics server listens on: 127.0.0.1 (the default) serves this host only; 0.0.0.0 every interface (e.g. a container scraped from outside).'),
        port: z.number().int().min(0).max(65_535).default(9464).describe('TCP port of the metrics server; 0: any free port.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PipelineConfig = z.infer<typeof PipelineSchema>;
export type ParquetSourceConfig = z.infer<typeof ParquetSourceSchema>;
export type KafkaSourceConfig = z.infer<typeof KafkaSourceSchema>;
export type KafkaSaslConfig = z.infer<typeof KafkaSaslSchema>;
export type KafkaTlsConfig = z.infer<typeof KafkaTlsSchema>;

/**
 * The defaults of the sections that parts also take outside a pipeline file (tests,
 * benchmarks, tools): read from the schema above, so each default is written once.
 */
export const PIPELINE_DEFAULTS = Object.freeze({
  tokenizer: Object.freeze(PipelineSchema.shape.tokenizer.parse(undefined)),
  batch: Object.freeze(PipelineSchema.shape.batch.parse(undefined)),
  model: Object.freeze(PipelineSchema.shape.model.parse(undefined)),
});
