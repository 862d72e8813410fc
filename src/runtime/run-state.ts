/**
 * Where a run keeps its state, per pipeline and input (a replayed file or a Kafka topic),
 * so that no run replaces another's: beside the output, under names that start with `_`,
 * which pandas, pyarrow, DuckDB and Spark skip when they read the output as a dataset.
 *
 *   <sink.dir>/<name>/_checkpoints/<input>/     checkpoints (model.checkpointDir moves them)
 *   <sink.dir>/<name>/_dead-letters/<input>.jsonl  a replay's dead letters (deadLetter.path)
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PipelineConfig } from '../config/schema.js';
import { CHECKPOINTS_FOLDER, latestCheckpointSources, moveCheckpoints } from '../model/checkpoint-roots.js';
import { DEAD_LETTER_FOLDER } from '../sinks/dead-letter-file.js';
import { sourceDirectoryName } from '../sinks/parquet-layout.js';

/** Where the bundled pipeline used to pin its checkpoints, inside the output folder. */
const LEGACY_CHECKPOINTS = 'checkpoint';

/** The checkpoint root of `input`; null when the pipeline saves no checkpoints. */
export function checkpointRoot(config: Readonly<PipelineConfig>, input: string): string | null {
  if (!config.model.checkpoints) return null;
  const base = config.model.checkpointDir ?? path.join(config.sink.dir, config.name, CHECKPOINTS_FOLDER);
  return path.join(base, sourceDirectoryName(input));
}

/** The dead-letter file of a replay of `input`: deadLetter.path when set, else one per input. */
export function deadLetterPath(config: Readonly<PipelineConfig>, input: string): string {
  return config.deadLetter.path ?? path.join(config.sink.dir, config.name, DEAD_LETTER_FOLDER, `${sourceDirectoryName(input)}.jsonl`);
}

/**
 * Moves a checkpoint saved before checkpoints had a folder per input into `root`, when it
 * trained on `input` and `root` has none: model.checkpointDir itself, or the bundled
 * pipeline's old `<sink.dir>/<name>/checkpoint`. A checkpoint of another input stays.
 */
export async function adoptLegacyCheckpoint(config: Readonly<PipelineConfig>, root: string, input: string, logger: Logger): Promise<void> {
  const legacy = config.model.checkpointDir ?? path.join(config.sink.dir, config.name, LEGACY_CHECKPOINTS);
  if ((await stat(legacy).catch(() => null))?.isDirectory() !== true) return;
  const sources = await latestCheckpointSources(legacy);
  if (sources === null || !sources.includes(input)) return;
  const moved = await moveCheckpoints(legacy, root);
  if (moved.length > 0) logger.warn({ from: legacy, to: root, moved }, `moved the checkpoints of ${input} to their own folder ${root}`);
}
