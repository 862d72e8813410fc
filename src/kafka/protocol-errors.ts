/**
 * Which Kafka protocol errors a retry cannot fix: one list for every producer of
 * textstream (snapshots, dead letters), so they classify failures alike.
 */

/** Protocol errors that no retry can fix: the topic or its settings must change. */
export const PERMANENT_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
]);

/** The kafkajs protocol error type (e.g. MESSAGE_TOO_LARGE) anywhere in the cause chain, or null. */
export function kafkaErrorType(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError;
  }
  return null;
}

/** Whether a failed request may succeed when retried: unknown failures (no protocol error type) may. */
export function canRetryKafkaError(type: string | null): boolean {
  return type === null || !PERMANENT_KAFKA_ERRORS.has(type);
}

/** The broker refused a record or request as larger than the topic's `max.message.bytes`. */
export function isTooLargeError(type: string | null): boolean {
  return type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE';
}
