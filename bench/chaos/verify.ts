/**
 * What the chaos run left behind, checked against what was produced: every offset of
 * every partition must be exactly one Parquet row or a dead letter. Parquet is read back
 * by DuckDB (an independent reader), the dead-letter topic by a fresh consumer.
 */
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel } from 'kafkajs';

export interface Verification {
  /** Messages in the topic (sum of the partitions' high watermarks). */
  produced: number;
  rows: number;
  /** Rows whose (partition, offset) is in the output more than once. */
  duplicateRows: number;
  deadLetters: number;
  /** Dead letters for the same source offset more than once (the dead-letter topic is at-least-once). */
  duplicateDeadLetters: number;
  /** Offsets that are both a row and a dead letter. */
  rowAndDeadLetter: number;
  /** Offsets that are neither. */
  missing: number;
  /** Distinct model versions that wrote rows. */
  modelVersions: number;
}

/** The markdown table rows of a verification, as the chaos and soak reports print them. */
export function verificationRows(v: Verification): string[] {
  const n = (x: number): string => x.toLocaleString('en-US');
  return [
    `| messages produced | ${n(v.produced)} |`,
    `| rows written | ${n(v.rows)} |`,
    `| dead letters | ${n(v.deadLetters)} |`,
    `| duplicate rows | ${n(v.duplicateRows)} |`,
    `| missing (neither row nor dead letter) | ${n(v.missing)} |`,
    `| both a row and a dead letter | ${n(v.rowAndDeadLetter)} |`,
  ];
}

export async function verifyRun(opts: { brokers: string[]; topic: string; deadLetterTopic: string; outDir: string }): Promise<Verification> {
  const kafka = new Kafka({ clientId: 'textstream-chaos-verify', brokers: opts.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  let deadLetterCount: number;
  try {
    ends = new Map((await admin.fetchTopicOffsets(opts.topic)).map((p) => [p.partition, BigInt(p.high)]));
    deadLetterCount = (await admin.fetchTopicOffsets(opts.deadLetterTopic).catch(() => [])).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
  const { positions: rowPositions, rows, modelVersions } = await readOutputPositions(opts.outDir);
  const letterPositions = await readDeadLetterPositions(kafka, opts.deadLetterTopic, deadLetterCount);

  const rowSet = new Set(rowPositions);
  const letterSet = new Set(letterPositions);
  let missing = 0;
  let rowAndDeadLetter = 0;
  let produced = 0;
  for (const [partition, end] of ends) {
    for (let offset = 0n; offset < end; offset++) {
      produced++;
      const key = `${partition}/${offset}`;
      const isRow = rowSet.has(key);
      const isLetter = letterSet.has(key);
      if (isRow && isLetter) rowAndDeadLetter++;
      if (!isRow && !isLetter) missing++;
    }
  }
  return {
    produced,
    rows,
    duplicateRows: rows - rowSet.size,
    deadLetters: letterPositions.length,
    duplicateDeadLetters: letterPositions.length - letterSet.size,
    rowAndDeadLetter,
    missing,
    modelVersions,
  };
}

/** Every "partition/offset" in the Parquet files under `outDir`, the row count and the distinct model versions. */
export async function readOutputPositions(outDir: string): Promise<{ positions: string[]; rows: number; modelVersions: number }> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const glob = path.join(outDir, '**', '*.parquet');
    const reader = await db.runAndReadAll(
      `SELECT partition::INTEGER AS p, "offset"::VARCHAR AS o, model_version::BIGINT AS v FROM read_parquet('${glob}', hive_partitioning = false)`,
    );
    const rows = reader.getRowObjectsJS() as Array<{ p: number; o: string; v: bigint }>;
    return { positions: rows.map((r) => `${r.p}/${r.o}`), rows: rows.length, modelVersions: new Set(rows.map((r) => r.v)).size };
  } catch (err) {
    if (/No files found/.test(String(err))) return { positions: [], rows: 0, modelVersions: 0 };
    throw err;
  } finally {
    db.closeSync();
  }
}

/** The source position of every dead letter, from its headers, reading the topic to its end. */
async function readDeadLetterPositions(kafka: Kafka, topic: string, count: number): Promise<string[]> {
  if (count === 0) return [];
  const consumer = kafka.consumer({ groupId: `textstream-chaos-verify-${Date.now()}` });
  const positions: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${positions.length} of ${count} dead letters within 60 s`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const partition = message.headers?.['textstream.source.partition']?.toString();
            const offset = message.headers?.['textstream.source.offset']?.toString();
            positions.push(`${partition}/${offset}`);
            if (positions.length >= count) {
              clearTimeout(timer);
              resolve();
            }
            await Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return positions;
}
