import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';

/**
 * One kafkajs client per worker, shared by the consumer, the admin and the dead-letter
 * producer. kafkajs' own logs go to our structured logger at warn and above.
 */
export function makeKafkaClient(opts: { brokers: readonly string[]; clientId: string; logger: Logger }): Kafka {
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...fields } = entry.log;
      const log = { kafkajs: entry.namespace, ...fields };
      // The dead-letter producer caps its retries on purpose (so a write can fail and be
      // retried by the worker); kafkajs warns about that on every start.
      if (message.startsWith('Limiting retries for the idempotent producer')) opts.logger.debug(log, message);
      else if (entry.level === logLevel.ERROR) opts.logger.error(log, message);
      else opts.logger.warn(log, message);
    },
  });
}
