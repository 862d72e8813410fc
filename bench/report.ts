/**
 * Assembles a bench result (ratios against Keras, fractions of the measured peak) and
 * renders it as Markdown tables, so the output can be pasted into an issue as is.
 */
import type { BackendInfo } from '../src/model/backend.js';
import type { BackendFigures } from './backends.js';
import { KerasRows, type KerasResult } from './keras.js';
import type { ComputeLimit, MachineInfo } from './machine.js';
import { ModelRows, PROCESS_BATCH, SCORE_BATCHES } from './model.js';
import { ratioOf, type LimitRow, type Ratio, type Row } from './result.js';
import { StageRows } from './stages.js';
import { formatFigure } from './stats.js';
import { formatShare } from './cpu.js';
import { Workloads, type WorkerRow } from './worker-rows.js';

export interface BenchResult {
  settings: { rows: number; reps: number; seconds: number; kafka: boolean; keras: boolean; cleanThreads: number[] };
  corpus: { path: string; built: boolean; rows: number; deadLetters: number };
  machine: MachineInfo;
  backend: BackendInfo;
  lstm: {
    /** The implementations the model rows were measured for, as each learner reported it. */
    measured: { label: string; resolved: string }[];
    /** What the pipeline's default network (used by replay and Kafka) asks for. */
    pipelineDefault: string;
  };
  stages: Row[];
  /** Clean, replay and Kafka per clean.threads setting, with CPU shares. */
  worker: WorkerRow[];
  keras: { rows: Row[]; skipped?: string } & Partial<Omit<KerasResult, 'rows'>>;
  ratios: Ratio[];
  limit: ComputeLimit & { rows: LimitRow[] };
  backends: BackendFigures[];
  seconds: number;
}

const find = (rows: readonly Row[], name: string): Row | undefined => rows.find((r) => r.name === name);

/** ours / Keras for the tokenizer and for each measured LSTM implementation's model figures. */
export function makeRatios(stages: readonly Row[], keras: readonly Row[], lstmLabels: readonly string[], trainBatch: number): Ratio[] {
  const ratios = [
    ratioOf(StageRows.TOKENIZER_FIT, find(stages, StageRows.TOKENIZER_FIT), find(keras, KerasRows.TOKENIZER_FIT)),
    ratioOf(StageRows.TOKENIZE, find(stages, StageRows.TOKENIZE), find(keras, KerasRows.TOKENIZE)),
  ];
  for (const lstm of lstmLabels) {
    const train = ModelRows.train(trainBatch, lstm);
    ratios.push(ratioOf(train, find(stages, train), find(keras, KerasRows.train(trainBatch))));
    const process = ModelRows.process(PROCESS_BATCH, trainBatch, lstm);
    ratios.push(ratioOf(process, find(stages, process), find(keras, KerasRows.scoreThenTrain(trainBatch))));
    for (const batch of SCORE_BATCHES) {
      const score = ModelRows.score(batch, lstm);
      ratios.push(ratioOf(score, find(stages, score), find(keras, KerasRows.predict(batch))));
    }
  }
  return ratios;
}

/** Every measured model figure (ours and Keras') as a fraction of the machine's measured all-core peak. */
export function makeLimitRows(stages: readonly Row[], keras: readonly Row[], limit: ComputeLimit): LimitRow[] {
  if (limit.peakFlops === null) return [];
  const peak = limit.peakFlops;
  const out: LimitRow[] = [];
  for (const row of [...stages, ...keras]) {
    if (row.value === null) continue;
    // A prequential step is a training step whose forward pass is also the score.
    const isTrain = /^(?:train batch|process batch|Keras train_on_batch|Keras predict_on_batch \+ train_on_batch)/.test(row.name);
    const isScore = /^(?:score batch|Keras predict)/.test(row.name);
    if (!isTrain && !isScore) continue;
    const flopsPerSample = isTrain ? limit.trainFlops : limit.forwardFlops;
    out.push({ name: row.name, samplesPerSec: row.value, flopsPerSample, fraction: (row.value * flopsPerSample) / peak });
  }
  return out;
}

/** Table cells must not contain the column separator. */
const cell = (text: string): string => text.replaceAll('|', '¦').replaceAll('\n', ' ');

function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[]): string[] {
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
}

function figureRows(rows: readonly Row[]): string[][] {
  return rows.map((r) => [
    r.name,
    r.value === null ? `skipped: ${r.skipped ?? 'no figure'}` : formatFigure(r.value),
    r.unit,
    r.runs.map(formatFigure).join(', '),
    r.note ?? '',
  ]);
}

const orDash = (x: number | null): string => (x === null ? '–' : formatFigure(x));

export function renderTable(result: BenchResult): string {
  const { machine, backend, limit, settings } = result;
  const lines: string[] = [];
  const lstm =
    `model rows per implementation: ${result.lstm.measured.map((m) => (m.resolved === m.label ? m.label : `${m.label} (${m.resolved})`)).join(', ')}; ` +
    `replay and Kafka use the pipeline's model.lstm (${result.lstm.pipelineDefault})`;
  lines.push(
    '# textstream bench',
    '',
    `- data: ${result.corpus.rows} rows of ${result.corpus.path}${result.corpus.built ? ' (built by this run)' : ''}, tokenized once; ` +
      `median of ${settings.reps} repetition(s), ${settings.seconds} s per model repetition; whole run ${result.seconds.toFixed(0)} s`,
    `- machine: ${machine.cores} cores, ${machine.cpuModel} @ ${machine.mhz === null ? '? ' : machine.mhz.toFixed(0)} MHz` +
      ` (${machine.mhzSource ?? 'no clock found'}), ${machine.platform}, node ${machine.node}`,
    `- tfjs backend: ${backend.name}${backend.simd === null ? '' : backend.simd ? ' (SIMD)' : ' (no SIMD)'} — ${backend.reason}`,
    `- LSTM: ${lstm}`,
    '',
    '## Stages (ours)',
    '',
    ...table(['stage', 'figure', 'unit', 'runs', 'note'], figureRows(result.stages), ['l', 'r', 'l', 'l', 'l']),
    '',
  );

  lines.push(...renderWorkerTable(result.worker, machine.cores), '');

  const k = result.keras;
  const kerasTitle =
    k.versions === undefined
      ? '## Keras reference'
      : `## Keras reference (Keras ${k.versions.keras}, tf_keras ${k.versions.tfKeras}, TensorFlow ${k.versions.tensorflow}, ` +
        `intra-op threads ${k.threads?.intraOp === 0 ? 'default (one per core)' : String(k.threads?.intraOp)})`;
  lines.push(kerasTitle, '');
  if (k.mismatchedRows !== undefined) {
    lines.push(`Same texts and token sequences as ours; Keras' own tokenizer differs from ours on ${k.mismatchedRows} of ${result.corpus.rows} rows.`, '');
  }
  lines.push(...table(['measure', 'figure', 'unit', 'runs', 'note'], figureRows(k.rows), ['l', 'r', 'l', 'l', 'l']), '');

  lines.push('## Ours / Keras', '');
  lines.push(
    ...table(
      ['measure', 'ours', 'Keras', 'ours/Keras'],
      result.ratios.map((r) => {
        const ours = find(result.stages, r.ours)?.value ?? null;
        const keras = find(k.rows, r.keras)?.value ?? null;
        return [r.name, orDash(ours), orDash(keras), r.value === null ? 'skipped: no figure on one side' : r.value.toPrecision(3)];
      }),
      ['l', 'r', 'r', 'r'],
    ),
    '',
  );

  lines.push('## Measured peak (the addon\'s FMA loop: 12 independent accumulators in registers, best of 5 windows)', '');
  if (limit.peak.unavailable !== null) {
    lines.push(`Not measured: ${limit.peak.unavailable}`, '');
  } else {
    lines.push(
      ...table(
        ['FMA loop', 'GFLOP/s', 'FLOP/cycle/core at the reported clock'],
        limit.peak.runs.map((r) => [
          `${r.isa}, ${r.threads} thread${r.threads === 1 ? '' : 's'}`,
          r.gflops.toFixed(1),
          machine.mhz === null ? '–' : (r.gflops * 1e3 / machine.mhz / r.threads).toFixed(1),
        ]),
        ['l', 'r', 'r'],
      ),
      '',
    );
  }

  lines.push('## Compute limit', '');
  if (limit.peakFlops === null || limit.peakRun === null) {
    lines.push(`No measured peak (${limit.peak.unavailable ?? 'no all-core run'}): no limit computed.`, '');
  } else {
    lines.push(
      `- limit: ${(limit.peakFlops / 1e9).toFixed(1)} GFLOP/s measured (${limit.peakRun.isa} FMA loop on ${limit.peakRun.threads} thread${limit.peakRun.threads === 1 ? '' : 's'}, the table above)`,
      `- per sample (from the network's dimensions): forward ${(limit.forwardFlops / 1e6).toFixed(2)} MFLOP, training ${(limit.trainFlops / 1e6).toFixed(1)} MFLOP (3× forward)` +
        ` → at most ${formatFigure(limit.scoreLimit ?? 0)} scored, ${formatFigure(limit.trainLimit ?? 0)} trained samples/s`,
      '',
      ...table(
        ['model figure', 'samples/s', 'MFLOP/sample', 'GFLOP/s', '% of measured peak'],
        limit.rows.map((r) => [
          r.name,
          formatFigure(r.samplesPerSec),
          (r.flopsPerSample / 1e6).toFixed(2),
          ((r.samplesPerSec * r.flopsPerSample) / 1e9).toFixed(2),
          (100 * r.fraction).toPrecision(3),
        ]),
        ['l', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }

  lines.push('## tfjs backends (bench/model-throughput.js, one process each, model.lstm auto, random token ids)', '');
  lines.push(
    ...table(
      ['backend', 'LSTM', 'train batch 32', 'score batch 32', 'score batch 256', 'learner.process batch 32', 'note'],
      result.backends.map((b) =>
        b.skipped !== undefined
          ? [b.backend, '–', `skipped: ${b.skipped}`, '–', '–', '–', '']
          : [
              `${b.backend}${b.simd === true ? ' (SIMD)' : ''}`,
              b.lstm ?? '–',
              orDash(b.train),
              orDash(b.score32),
              orDash(b.score256),
              orDash(b.learner),
              b.note ?? '',
            ],
      ),
      ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
  );
  return lines.join('\n');
}

/** A whole-worker row's name: the workload and its clean.threads setting (0 = main thread). */
export const workerRowName = (row: Pick<WorkerRow, 'workload' | 'cleanThreads'>): string => `${row.workload} [clean.threads ${row.cleanThreads}]`;

/** The whole-worker section: every workload per clean.threads setting, side by side with its CPU share. */
export function renderWorkerTable(rows: readonly WorkerRow[], cores: number): string[] {
  return [
    '## Whole worker',
    '',
    `Throughput of the whole pipeline and the CPU share of the measured process (user + system over wall, of ${cores} cores) in the same window, ` +
      "with the machine's busy share beside it (other processes included) and the throughput per CPU-second of the process. " +
      'Kafka figures run from the first record taken to the last row scored; start-up is its own column; every Kafka run is checked exactly once ' +
      '(rows + dead letters = produced, no duplicate or missing (partition, offset)).',
    '',
    ...table(
      ['workload', 'figure', 'unit', `CPU (of ${cores} cores)`, 'per CPU-second', 'start-up s', 'exactly once', 'runs', 'note'],
      sortedWorkerRows(rows).map((r) => [
        workerRowName(r),
        r.value === null ? `skipped: ${r.skipped ?? 'no figure'}` : formatFigure(r.value),
        r.unit,
        formatShare(r.cpu, r.machine),
        r.perCpuSecond === null ? '–' : formatFigure(r.perCpuSecond),
        r.startupSeconds === null ? '–' : r.startupSeconds.toFixed(1),
        r.exactlyOnce ?? '–',
        r.runs.map(formatFigure).join(', '),
        r.note ?? '',
      ]),
      ['l', 'r', 'l', 'r', 'r', 'r', 'l', 'l', 'l'],
    ),
  ];
}

const workloadOrder: readonly string[] = Object.values(Workloads);

/** Each workload's settings side by side, workloads in pipeline order (clean, replay, Kafka). */
function sortedWorkerRows(rows: readonly WorkerRow[]): WorkerRow[] {
  return [...rows].sort((a, b) => workloadOrder.indexOf(a.workload) - workloadOrder.indexOf(b.workload) || a.cleanThreads - b.cleanThreads);
}
