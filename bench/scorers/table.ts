/** The scaling bench's result and its markdown rendering. */
import type { MachineInfo } from '../machine.js';
import { median } from '../stats.js';
import type { CorpusTopic } from './topic.js';
import type { LstmThreads, ScorerRun, TrainResult } from './run.js';

export interface ScorersBenchResult {
  machine: MachineInfo;
  /** The pipeline the trainer and scorers run (with the bench's topic, group and folders). */
  pipeline: string;
  brokers: string[];
  /** The scorers' source.maxBufferedMessages. */
  maxBufferedMessages: number | null;
  corpus: CorpusTopic;
  train: TrainResult;
  /** Every run, in the order they ran. */
  runs: ScorerRun[];
  /** Configurations that failed, with why. */
  failures: { scorers: number; threads: LstmThreads; rep: number; error: string }[];
}

const fixed = (x: number | null | undefined, digits: number): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));
const count = (x: number): string => x.toLocaleString('en-US');
const threadsLabel = (t: LstmThreads): string => (t === 'unset' ? 'TEXTSTREAM_MODEL_LSTM_THREADS unset (fused LSTM on every core)' : `TEXTSTREAM_MODEL_LSTM_THREADS=${t} per scorer`);
const present = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null && Number.isFinite(x));
const medianOf = (xs: (number | null)[]): number | null => (present(xs).length === 0 ? null : median(present(xs)));
const maxOf = (xs: (number | null)[]): number | null => (present(xs).length === 0 ? null : Math.max(...present(xs)));
const spread = (xs: (number | null)[], digits: number): string => {
  const v = present(xs);
  if (v.length === 0) return '—';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? hi.toFixed(digits) : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`;
};

function exactlyOnce(run: ScorerRun): string {
  const exits = run.perScorer.map((s) => s.exitCode ?? s.exitSignal ?? '?');
  const exitText = exits.every((e) => e === 0) ? 'all exit 0' : `exits ${exits.join(', ')}`;
  const v = run.verification;
  if (typeof v === 'string') return `${exitText}; ${v}`;
  const ok = v.duplicateRows === 0 && v.missing === 0 && v.rowAndDeadLetter === 0 && v.rows + v.deadLetters === v.produced;
  return `${exitText}; ${count(v.rows)} rows + ${v.deadLetters} dead letters of ${count(v.produced)}${ok ? ', exactly once' : `: ${v.duplicateRows} duplicate(s), ${v.missing} missing, ${v.rowAndDeadLetter} both`}`;
}

export function renderScorersTable(r: ScorersBenchResult): string {
  const m = r.machine;
  const lines = [
    `# Scorer scaling: N \`textstream run --role score\` processes on a ${r.corpus.partitions}-partition topic`,
    '',
    `Machine: ${m.cores} cores, ${m.cpuModel}${m.mhz === null ? '' : ` (${Math.round(m.mhz)} MHz)`}, node ${m.node}, ${m.platform}. ` +
      `The broker (${r.brokers.join(',')}) runs on the same cores.`,
    '',
    `Topic: ${count(r.corpus.messages)} messages (the ${count(r.corpus.messages / r.corpus.repeat)}-message corpus × ${r.corpus.repeat}, distinct keys), ` +
      `${r.corpus.partitions} partitions, produced in ${r.corpus.produceSeconds.toFixed(1)} s. ` +
      `Pipeline ${r.pipeline} (brokers, topic, group, folders and snapshots.topic set by the bench); ` +
      `scorers' source.maxBufferedMessages ${r.maxBufferedMessages ?? '?'}.`,
    '',
    `Trainer: one \`--role train --exit-when-idle\` over the first copy of the corpus (the others are produced after it stopped), ${r.train.seconds.toFixed(1)} s, ` +
      `${r.train.rowsTrained === null ? '?' : count(r.train.rowsTrained)} rows trained, prequential accuracy ${r.train.accuracy === null ? '—' : `${(100 * r.train.accuracy).toFixed(1)} %`}, ` +
      `${r.train.snapshots ?? '?'} snapshot(s) published (${r.train.snapshotMessages} chunk message(s) on the snapshot topic).`,
    '',
    'Seconds: from spawning the N scorers (fresh consumer group, fresh output folder) to the group\'s committed offsets covering the topic; ' +
      'start-up, group join and the last commit (up to source.commitIntervalMs) included. ' +
      '"Snapshot read": from the tfjs backend being ready to the snapshot read from its topic and decoded into a model (median over the scorers); "loaded at": seconds after its spawn (node and tfjs load first). ' +
      '"Group settled": the last partition assignment, seconds after the start. "Steady": messages scored per second by all scorers (their /metrics, every second) from the later of the group settling and 25 % of the topic scored to 75 % scored — start-up, rebalances and the last commit left out. ' +
      'CPU: user + system seconds per scorer process (start-up included); machine busy: all cores, over the run; broker: its CPU seconds over the run; ' +
      'other load: cores used during the run by anything but the scorers, the broker and the bench (other work on a shared machine).',
  ];
  const settings = [...new Set(r.runs.map((run) => run.threads))];
  const base = medianOf(r.runs.filter((run) => run.scorers === 1 && run.threads === settings[0]).map((run) => run.messagesPerSecond));
  for (const threads of settings) {
    const runs = r.runs.filter((run) => run.threads === threads);
    const one = medianOf(runs.filter((run) => run.scorers === 1).map((run) => run.messagesPerSecond));
    lines.push(
      '',
      `## ${threadsLabel(threads)}`,
      '',
      `| scorers | seconds | messages/s | speed-up vs 1 | snapshot read (s) | snapshot loaded at (s, max) | group settled (s) | steady (msg/s) | CPU s per scorer | messages per scorer | machine busy | broker CPU s | other load (cores) |`,
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const n of [...new Set(runs.map((run) => run.scorers))]) {
      const reps = runs.filter((run) => run.scorers === n);
      const rate = medianOf(reps.map((run) => run.messagesPerSecond));
      const seconds = medianOf(reps.map((run) => run.seconds));
      const repsNote = reps.length > 1 ? ` (${reps.map((run) => run.seconds.toFixed(1)).join(', ')})` : '';
      const all = reps.flatMap((run) => run.perScorer);
      const busy = medianOf(reps.map((run) => run.machineBusy));
      lines.push(
        `| ${n} | ${fixed(seconds, 1)}${repsNote} | ${fixed(rate, 0)} | ${one === null || rate === null ? '—' : `${(rate / one).toFixed(2)}×`} | ` +
          `${fixed(medianOf(all.map((s) => (s.snapshotLoadedAt === null || s.backendAt === null ? null : s.snapshotLoadedAt - s.backendAt))), 1)} | ` +
          `${fixed(maxOf(all.map((s) => s.snapshotLoadedAt)), 1)} | ${fixed(medianOf(reps.map((run) => run.groupSettledAt)), 1)} | ` +
          `${fixed(medianOf(reps.map((run) => run.steadyMessagesPerSecond)), 0)} | ${spread(all.map((s) => s.cpuSeconds), 1)} | ` +
          `${reps.length === 1 ? reps[0]!.perScorer.map((s) => (s.messages === null ? '?' : count(s.messages))).join(' / ') : '—'} | ` +
          `${busy === null ? '—' : `${(100 * busy).toFixed(0)} %`} | ` +
          `${fixed(medianOf(reps.map((run) => run.brokerCpuSeconds)), 1)} | ` +
          `${fixed(medianOf(reps.map((run) => (run.otherCpuSeconds === null ? null : run.otherCpuSeconds / run.seconds))), 2)} |`,
      );
    }
    if (threads !== settings[0] && base !== null && one !== null) {
      lines.push('', `1 scorer here vs 1 scorer with ${threadsLabel(settings[0]!)}: ${(one / base).toFixed(2)}×.`);
    }
  }
  lines.push(
    '',
    '## Per run',
    '',
    '| threads | scorers | rep | seconds | other load before / during (cores) | start-up per scorer: backend / snapshot loaded / consumer started (s after spawn) | stage seconds per scorer (clean, model, sink) | backpressure pauses / rebalances per scorer | output |',
    '|---|---:|---:|---:|---|---|---|---|---|',
  );
  for (const run of r.runs) {
    const startup = run.perScorer.map((s) => `${fixed(s.backendAt, 1)}/${fixed(s.snapshotLoadedAt, 1)}/${fixed(s.startedAt, 1)}`).join(', ');
    const stages = run.perScorer.map((s) => (s.stages === null ? '?' : `${fixed(s.stages.clean, 1)}, ${fixed(s.stages.model, 1)}, ${fixed(s.stages.sink, 1)}`)).join(' · ');
    const other = `${fixed(run.backgroundBefore, 2)} / ${fixed(run.otherCpuSeconds === null ? null : run.otherCpuSeconds / run.seconds, 2)}`;
    const flow = run.perScorer.map((s) => `${s.backpressurePauses ?? '?'}/${s.rebalances ?? '?'}`).join(', ');
    lines.push(`| ${run.threads} | ${run.scorers} | ${run.rep + 1} | ${run.seconds.toFixed(1)} | ${other} | ${startup} | ${stages} | ${flow} | ${exactlyOnce(run)} |`);
  }
  const warned = r.runs.flatMap((run) => run.perScorer.flatMap((s, i) => s.warnings.map((w) => `threads ${run.threads}, ${run.scorers} scorer(s), rep ${run.rep + 1}, scorer ${i}: ${w}`)));
  if (warned.length > 0) lines.push('', 'Warnings the scorers logged:', ...[...new Set(warned)].map((w) => `- ${w}`));
  for (const f of r.failures) lines.push('', `FAILED: ${f.scorers} scorer(s), threads ${f.threads}, rep ${f.rep + 1}: ${f.error}`);
  return `${lines.join('\n')}\n`;
}
