import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { loadPipeline } from '../config/load.js';
import { runWorker, WorkerRoles, type WorkerRole } from '../runtime/worker.js';
import type { DurableFile } from '../sinks/sink.js';
import { makeLogger } from './logger.js';
import { parseSeconds } from './options.js';
import { makeProgressView, type ProgressView } from './progress.js';
import { onShutdownSignal } from './signals.js';
import { formatWorkerSummary, workerSummaryJSON } from './summary.js';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('Run a consumer-group worker on the Kafka topic of a pipeline: score, train, write Parquet exactly once.')
    .argument('<pipeline.yaml>', 'a pipeline definition with source.type: kafka')
    .option(
      '--exit-when-idle <seconds>',
      'drain and exit 0 once the worker has caught up with its partitions and nothing has arrived for this long: process what the topic holds, then stop',
      parseSeconds,
    )
    .addOption(
      new Option(
        '--role <role>',
        'all: score, write and train; train: only train on the topic (group <source.groupId>-trainers) and publish model snapshots; score: only score and write, with the latest snapshot (both need snapshots.topic)',
      )
        .choices(WorkerRoles)
        .default('all'),
    )
    .option('--json', 'no progress display; print the summary as one JSON object when the worker stops', false)
    .addOption(
      new Option(
        '--inject-fault <fault>',
        'testing only (npm run chaos): kill-after-publish:N SIGKILLs this worker right after it publishes its N-th file, before the offsets are committed; nan-loss:N makes its N-th training step compute a NaN loss',
      )
        .argParser(parseFault)
        .hideHelp(),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ textstream run pipelines/kafka-spamassassin.yaml
  $ textstream produce --topic emails data/spamassassin.parquet   # feed it
  $ TEXTSTREAM_SOURCE_BROKERS=127.0.0.1:9092 textstream run pipelines/kafka-spamassassin.yaml
  $ textstream run pipelines/kafka-spamassassin.yaml --exit-when-idle 20 --json | jq .rowsWritten
  $ TEXTSTREAM_SNAPSHOTS_TOPIC=emails.model textstream run pipelines/kafka-spamassassin.yaml --role train
  $ TEXTSTREAM_SNAPSHOTS_TOPIC=emails.model textstream run pipelines/kafka-spamassassin.yaml --role score

Start several workers with the same source.groupId to share the topic's partitions.
Output: <sink.dir>/<name>/input=<topic>/partition-<p>/<firstOffset>-<lastOffset>.parquet, a
folder that opens as one dataset; files of the old topic=/partition= layout are moved
there when the worker takes the partition. Checkpoints: <model.checkpointDir>/<topic>/.
Offsets are committed only once the file holding their rows is durable; dead letters go
to the topic deadLetter.topic (default <topic>.dlq; created when missing). SIGINT/SIGTERM
drain the worker (stop fetching, finish files, commit, checkpoint) within
source.shutdownTimeoutMs, print the summary and exit 0; past the deadline it exits 1.
A progress bar shows on a terminal; otherwise the logs and /metrics tell the progress.`,
    )
    .action(async (file: string, opts: { exitWhenIdle?: number; json: boolean; role: WorkerRole; injectFault?: InjectedFault }, command: Command) => {
      const logger = makeLogger(command.optsWithGlobals<{ logLevel: string }>().logLevel);
      const config = await loadPipeline(file);
      const controller = new AbortController();
      const removeSignals = onShutdownSignal(controller, logger);
      const deadlineMs = config.source.type === 'kafka' ? config.source.shutdownTimeoutMs : 30_000;
      controller.signal.addEventListener(
        'abort',
        () => {
          // Draining must not hang forever (a broker gone away, a stuck file system).
          setTimeout(() => {
            logger.error({ deadlineMs }, 'shutdown deadline passed; exiting without a complete drain');
            process.exit(1);
          }, deadlineMs).unref();
        },
        { once: true },
      );
      // A worker's logs are JSON lines; a plain progress line every few seconds would break
      // them, so the live view is for terminals only.
      let view: ProgressView | null = process.stderr.isTTY && !opts.json ? makeProgressView(null) : null;
      try {
        const summary = await runWorker(config, {
          logger,
          role: opts.role,
          signal: controller.signal,
          exitWhenIdleMs: opts.exitWhenIdle === undefined ? null : opts.exitWhenIdle * 1000,
          ...(opts.injectFault?.kind === 'kill-after-publish' ? { afterPublish: killAfterPublishing(opts.injectFault.n, logger) } : {}),
          ...(opts.injectFault?.kind === 'nan-loss' ? { nanLossAtStep: opts.injectFault.n } : {}),
          onProgress: (progress, evaluation) => view?.update(progress, evaluation.accuracy),
        });
        view?.stop();
        view = null;
        logger.info({ rowsIn: summary.rowsIn, rowsWritten: summary.rowsWritten, deadLetters: summary.deadLetters }, 'worker stopped');
        // Drained: files published, offsets committed, checkpoint written. In a chaos run a
        // worker that had drained after a broker restart still lingered until its shutdown
        // deadline (exit 1): something of kafkajs' stayed alive. A finished worker exits.
        process.stdout.write(opts.json ? workerSummaryJSON(summary) : formatWorkerSummary(summary), () => process.exit(0));
      } finally {
        view?.stop();
        removeSignals();
      }
    });
}

/** kill-after-publish: the N-th published file; nan-loss: the N-th training step. */
interface InjectedFault {
  kind: 'kill-after-publish' | 'nan-loss';
  n: number;
}

function parseFault(value: string): InjectedFault {
  const match = /^(kill-after-publish|nan-loss)(?::(\d+))?$/.exec(value);
  const n = Number(match?.[2] ?? 1);
  if (!match || n < 1) throw new InvalidArgumentError(`expected kill-after-publish[:N] or nan-loss[:N] (N ≥ 1), got "${value}"`);
  return { kind: match[1] as InjectedFault['kind'], n };
}

/** The crash the exactly-once design must survive: files renamed into place, offsets not yet committed. */
function killAfterPublishing(afterFiles: number, logger: Logger): (files: readonly DurableFile[]) => void {
  let published = 0;
  return (files) => {
    published += files.length;
    if (published < afterFiles) return;
    logger.warn({ published, files: files.map((f) => f.path) }, 'injected fault: SIGKILL after publishing, before committing');
    process.kill(process.pid, 'SIGKILL');
  };
}
