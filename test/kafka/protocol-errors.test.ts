import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canRetryKafkaError, isTooLargeError, kafkaErrorType, PERMANENT_KAFKA_ERRORS } from '../../src/kafka/protocol-errors.js';

test('should find the protocol error type through causes and kafkajs originalError wrappers', () => {
  const protocol = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
  const retried = Object.assign(new Error('retries exhausted'), { originalError: protocol });
  assert.equal(kafkaErrorType(new Error('send failed', { cause: retried })), 'MESSAGE_TOO_LARGE');
  assert.equal(kafkaErrorType(new Error('ECONNREFUSED')), null);
  assert.equal(kafkaErrorType('not an error'), null);
});

test('should treat the union of the snapshot and dead-letter lists as permanent, and unknown failures as retryable', () => {
  assert.deepEqual(
    [...PERMANENT_KAFKA_ERRORS].sort(),
    ['INVALID_RECORD', 'INVALID_TOPIC_EXCEPTION', 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'TOPIC_AUTHORIZATION_FAILED', 'UNKNOWN_TOPIC_OR_PARTITION'],
  );
  for (const type of PERMANENT_KAFKA_ERRORS) assert.equal(canRetryKafkaError(type), false, type);
  assert.equal(canRetryKafkaError('NOT_LEADER_FOR_PARTITION'), true);
  assert.equal(canRetryKafkaError(null), true);
});

test('should call only MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE too large', () => {
  assert.equal(isTooLargeError('MESSAGE_TOO_LARGE'), true);
  assert.equal(isTooLargeError('RECORD_LIST_TOO_LARGE'), true);
  assert.equal(isTooLargeError('INVALID_RECORD'), false);
  assert.equal(isTooLargeError(null), false);
});
