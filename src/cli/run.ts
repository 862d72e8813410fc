import type { Command } from 'commander';
import { loadPipeline } from '../config/load.js';
import { runWorker } from '../runtime/worker.js';
import { makeLogger } from './logger.js';
import { onShutdownSignal } from './signals.js';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('Run a consumer-group worker on the Kafka topic of a pipeline: score, train, write Parquet exactly once.')
    .argument('<pipeline.yaml>', 'a pipeline definition with source.type: kafka')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream run pipelines/kafka-spamassassin.yaml
  $ textstream produce --topic emails data/spamassassin.parquet   # feed it

Start several workers with the same source.groupId to share the topic's partitions.
Output: <sink.dir>/<name>/topic=<topic>/partition=<p>/<firstOffset>-<lastOffset>.parquet.
Offsets are committed only once the file holding their rows is durable; dead letters go
to the topic deadLetter.topic (default <topic>.dlq), which must exist. SIGINT/SIGTERM
drain the worker (stop fetching, finish files, commit, checkpoint) within
source.shutdownTimeoutMs, exit 0; past the deadline it exits 1.`,
    )
    .action(async (file: string, _opts: unknown, command: Command) => {
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
      try {
        const summary = await runWorker(config, { logger, signal: controller.signal });
        logger.info(
          {
            rowsIn: summary.rowsIn,
            rowsWritten: summary.rowsWritten,
            deadLetters: summary.deadLetters,
            rowsReplayed: summary.rowsReplayed,
            files: summary.files.length,
            modelVersion: summary.modelVersion,
            accuracy: summary.evaluation.accuracy,
            auc: summary.evaluation.auc,
            seconds: Number(summary.seconds.toFixed(1)),
          },
          'worker stopped',
        );
      } finally {
        removeSignals();
      }
    });
}
