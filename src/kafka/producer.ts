/**
 * The producer textstream's own records go out on (snapshots, dead letters): idempotent,
 * in order, never creating topics, and giving up after a bounded number of retries.
 */
import kafkajs from 'kafkajs';
import type { Kafka, Producer, RetryOptions } from './types.js';

/** kafkajs' default partitioner (murmur2 of the key, as the Java client). */
export const DefaultPartitioner = kafkajs.Partitioners.DefaultPartitioner;

/**
 * An idempotent producer with one request in flight, so records land once each and in
 * order, and no topic auto-creation. Connect it before use.
 */
export function makeIdempotentProducer(kafka: Kafka, retry: RetryOptions = { retries: 5 }): Producer {
  return kafka.producer({
    idempotent: true,
    // kafkajs' idempotent producer keeps order only with one request in flight.
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Spelled out: it is kafkajs' default, and naming it silences its v2 migration warning.
    createPartitioner: DefaultPartitioner,
    // The idempotent producer would otherwise retry forever and a send would never fail.
    retry,
  });
}
