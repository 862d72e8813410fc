/**
 * Topic administration for the parts that write to Kafka: creating a topic that is
 * missing, and reading a topic's configuration, above all its `max.message.bytes`, the
 * size a writer's requests must stay under.
 */
import kafkajs from 'kafkajs';
import type { Admin } from './types.js';

/** Kafka's default `max.message.bytes`: what a topic gets when it does not set its own. */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** Record-batch header (61 bytes) plus room: what a writer keeps free of a request's size limit. */
export const RECORD_BATCH_OVERHEAD = 512;

/** How to create a topic that is missing (replication: the broker's default). */
export interface NewTopic {
  numPartitions: number;
  configEntries: { name: string; value: string }[];
}

/** What `ensureTopic` found: the topic was there (or another process created it first), this call created it, or it is absent. */
export type TopicPresence = 'exists' | 'created' | 'missing';

/**
 * Creates `topic` when it is missing and `create` says how; `create` is called only then,
 * so it may read other topics first. 'missing' only when `create` is null. Errors are
 * kafkajs' own: the caller says what it was doing.
 */
export async function ensureTopic(admin: Admin, topic: string, create: (() => NewTopic | Promise<NewTopic>) | null): Promise<TopicPresence> {
  if ((await admin.listTopics()).includes(topic)) return 'exists';
  if (create === null) return 'missing';
  const { numPartitions, configEntries } = await create();
  // Waiting for leaders (kafkajs' default, spelt out): a producer may send as soon as this returns.
  // false: another process created it first, which is just as good.
  const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, configEntries }] });
  return created ? 'created' : 'exists';
}

/** The named settings of a topic, or null when they cannot be read (ACLs may deny it; the broker still enforces them). */
export async function readTopicConfig(admin: Admin, topic: string, configNames: readonly string[]): Promise<ReadonlyMap<string, string> | null> {
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: [...configNames] }],
    });
    return new Map((resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
  } catch {
    return null;
  }
}

/** `max.message.bytes` from a topic's settings; Kafka's default when it is absent, unreadable or not above `floor`. */
export function maxMessageBytesOf(config: ReadonlyMap<string, string> | null, floor = 0): number {
  const bytes = Number(config?.get('max.message.bytes'));
  return Number.isSafeInteger(bytes) && bytes > floor ? bytes : KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
}

/**
 * A topic's `max.message.bytes` (the largest record batch it accepts), or Kafka's default
 * when it cannot be read or leaves no room beyond a batch's framing. For writers that
 * split their records into requests (dead letters, `textstream produce`).
 */
export async function readTopicMaxMessageBytes(admin: Admin, topic: string): Promise<number> {
  return maxMessageBytesOf(await readTopicConfig(admin, topic, ['max.message.bytes']), RECORD_BATCH_OVERHEAD);
}
