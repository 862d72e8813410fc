/**
 * The kafkajs types the rest of textstream names (clients, records, options), re-exported
 * so that only src/kafka/ imports kafkajs. Replacing the client means giving these names
 * new definitions here, or adapters that keep their shape.
 */
export type {
  Admin,
  Consumer,
  EachBatchPayload,
  ICustomPartitioner,
  IHeaders,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';
