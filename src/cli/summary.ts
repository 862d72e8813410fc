import { Stages } from '../metrics/definitions.js';
import type { BackendInfo } from '../model/backend.js';
import type { EvaluationSnapshot } from '../model/evaluation.js';
import type { RunSummary } from '../runtime/pipeline.js';
import type { ReplaySummary } from '../runtime/replay.js';
import type { WorkerSummary } from '../runtime/worker.js';

/** What a replay and a worker both report at the end. */
type FinishedRun = RunSummary & {
  backend: BackendInfo;
  lstm: 'fused' | 'stock';
  evaluation: EvaluationSnapshot;
  checkpointDir: string | null;
};

const pct = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`);
const num = (x: number): string => x.toLocaleString('en-US');

export function formatReplaySummary(s: ReplaySummary): string {
  const built = s.datasetBuilt ? ' (built by this run from source.dataset: the file did not exist)' : '';
  const resumed = s.resumedAtRow === null ? '' : ` from row ${s.resumedAtRow} (--resume: the checkpoint had learnt the rows before)`;
  return formatRunSummary(s, `textstream replay of ${s.input}${built}${resumed}`, s.deadLetterPath, true);
}

const RoleNames = { all: 'worker', train: 'trainer', score: 'scorer' } as const;

export function formatWorkerSummary(s: WorkerSummary): string {
  const heading = `textstream ${RoleNames[s.role]} on topic ${s.topic} (group ${s.groupId})`;
  const text = formatRunSummary(
    s,
    heading,
    s.deadLetterTopic === null ? 'counted only (the scorers dead-letter them)' : `topic ${s.deadLetterTopic}`,
    s.role !== 'train',
    // A scorer does not evaluate: its model's figures are the trainer's at publish time.
    s.role === 'score' ? "; the trainer's, from the snapshot in use" : '',
  );
  if (s.role === 'all') return text;
  return `${text}  model snapshots ${s.role === 'train' ? 'published' : 'swapped in'}: ${s.snapshots}\n`;
}

/** The end-of-run report: counts, model quality, per-stage throughput, output files. */
function formatRunSummary(s: FinishedRun, heading: string, deadLetterTarget: string, writesFiles: boolean, evaluatedBy = ''): string {
  const e = s.evaluation;
  const majority = e.count > 0 ? Math.max(e.positives, e.negatives) / e.count : null;
  const reasons = Object.entries(s.deadLettersByReason)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  const lines = [
    '',
    `${heading}${s.aborted ? ' (stopped early)' : ''}`,
    `  rows in               ${num(s.rowsIn)}`,
    writesFiles ? `  rows written          ${num(s.rowsWritten)} in ${s.files.length} Parquet file(s)` : `  rows done             ${num(s.rowsWritten)} (a trainer writes no output)`,
    `  dead letters          ${num(s.deadLetters)}${reasons ? ` (${reasons})` : ''} → ${deadLetterTarget}`,
    `  rows trained          ${num(s.rowsTrained)} (model version ${s.modelVersion}, backend ${s.backend.name}, ${s.lstm} LSTM)`,
    ...(s.rowsRetrained > 0 ? [`  rows re-trained       ${num(s.rowsRetrained)} (lost from the model by a crash; read again, not written again)`] : []),
    `  prequential accuracy  ${pct(e.accuracy)} on ${num(e.count)} labelled rows (majority class ${pct(majority)}${evaluatedBy})`,
    `  prequential AUC       ${e.auc === null ? 'n/a' : e.auc.toFixed(4)}`,
    `  prequential log loss  ${e.logLoss === null ? 'n/a' : e.logLoss.toFixed(4)}`,
    `  wall time             ${s.seconds.toFixed(1)} s (${(s.rowsIn / s.seconds).toFixed(0)} rows/s end to end)`,
    '',
    '  stage        rows out    seconds     rows/s',
  ];
  for (const stage of Stages) {
    const t = s.stages.get(stage);
    if (!t) continue;
    const rate = t.seconds > 0 ? (t.output / t.seconds).toFixed(0) : '-';
    lines.push(`  ${stage.padEnd(10)} ${num(t.output).padStart(10)} ${t.seconds.toFixed(2).padStart(10)} ${rate.padStart(10)}`);
  }
  const shown = writesFiles ? s.files.slice(0, 10) : [];
  if (writesFiles) lines.push('', '  output files:');
  for (const f of shown) lines.push(`    ${f.path} (${num(f.rows)} rows, ${num(f.bytes)} bytes)`);
  if (writesFiles && s.files.length > shown.length) lines.push(`    … and ${s.files.length - shown.length} more`);
  if (s.checkpointDir) lines.push(`  checkpoint: ${s.checkpointDir}`);
  return `${lines.join('\n')}\n`;
}

export function replaySummaryJSON(s: ReplaySummary): string {
  return `${JSON.stringify({ input: s.input, datasetBuilt: s.datasetBuilt, resumedAtRow: s.resumedAtRow, ...runSummaryFields(s), deadLetterPath: s.deadLetterPath })}\n`;
}

export function workerSummaryJSON(s: WorkerSummary): string {
  return `${JSON.stringify({ role: s.role, topic: s.topic, groupId: s.groupId, ...runSummaryFields(s), deadLetterTopic: s.deadLetterTopic, snapshots: s.snapshots })}\n`;
}

/**
 * The summary as JSON (`--json`): the same figures as the text, with stable names,
 * offsets as decimal strings (they are 64-bit) and stages as an object.
 */
function runSummaryFields(s: FinishedRun): Record<string, unknown> {
  const e = s.evaluation;
  return {
    aborted: s.aborted,
    rowsIn: s.rowsIn,
    rowsWritten: s.rowsWritten,
    rowsTrained: s.rowsTrained,
    rowsReplayed: s.rowsReplayed,
    rowsRetrained: s.rowsRetrained,
    deadLetters: s.deadLetters,
    deadLettersByReason: s.deadLettersByReason,
    modelVersion: s.modelVersion,
    backend: s.backend.name,
    lstm: s.lstm,
    evaluation: { labelledRows: e.count, accuracy: e.accuracy, auc: e.auc, logLoss: e.logLoss, positives: e.positives, negatives: e.negatives },
    seconds: s.seconds,
    rowsPerSecond: s.seconds > 0 ? s.rowsIn / s.seconds : null,
    stages: Object.fromEntries([...s.stages].map(([stage, t]) => [stage, { rowsOut: t.output, seconds: t.seconds }])),
    files: s.files.map((f) => ({ ...f, firstOffset: f.firstOffset.toString(), lastOffset: f.lastOffset.toString() })),
    checkpointDir: s.checkpointDir,
  };
}
