/** The quality bench's result and its Markdown rendering. */
import type { MachineInfo } from '../machine.js';

/** Accuracy (threshold 0.5), AUC and log loss over some rows of the stream. */
export interface Measures {
  rows: number;
  accuracy: number;
  auc: number | null;
  logLoss: number;
}

export interface ModelResult {
  /** 'textstream', 'keras-defaults', 'keras-same-settings', 'keras-wide-and-deep', 'sklearn-sgd' or 'river-nb'. */
  model: string;
  /** textstream: the whole replay (read, clean, tokenize, score, train, write); the others: their score-then-learn loop. */
  rowsPerSec: number;
  whole: Measures;
  /** Rows after the vocabulary's bootstrap window. */
  afterBootstrap: Measures;
  secondHalf: Measures;
}

export interface ReferenceOutput {
  versions: Record<string, string>;
  runs: { seed: number; rows: number; results: ModelResult[] }[];
}

export interface QualityBenchResult extends ReferenceOutput {
  date: string;
  machine: MachineInfo;
  pipeline: string;
  settings: {
    numWords: number;
    maxLen: number;
    bootstrapRows: number;
    embeddingDim: number;
    units: number;
    trainBatchSize: number;
    learningRate: number;
    clipNorm: number | null;
  };
  kerasDefaults: { learningRate: number; clipNorm: number | null };
  backend: string;
  lstm: string;
  seconds: number;
}

const MODEL_NAMES: Record<string, (r: QualityBenchResult) => string> = {
  textstream: (r) => `**textstream** (replay; lr ${r.settings.learningRate}, clipNorm ${r.settings.clipNorm ?? 'none'})`,
  'keras-defaults': (r) => `Keras, seed network, Adam defaults (lr ${r.kerasDefaults.learningRate})`,
  'keras-same-settings': (r) => `Keras, seed network, textstream's settings (lr ${r.settings.learningRate}, global_clipnorm ${r.settings.clipNorm ?? 'none'})`,
  'keras-wide-and-deep': (r) => `Keras, seed network + wide branch over hashed 1–2-grams (lr ${r.settings.learningRate}; not in the product)`,
  'sklearn-sgd': () => 'scikit-learn: hashed 1–2-grams + SGD logistic regression',
  'river-nb': () => 'River: BagOfWords + MultinomialNB',
};

const percent = (x: number): string => `${(100 * x).toFixed(2)} %`;
const auc = (x: number | null): string => (x === null ? '—' : x.toFixed(4));
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export function renderQualityTable(r: QualityBenchResult): string {
  const name = (model: string): string => MODEL_NAMES[model]?.(r) ?? model;
  const s = r.settings;
  const lines = [
    '# Prequential quality on the bundled corpus (every row scored before the model learns from it)',
    '',
    `${r.pipeline}, ${r.runs.length} seeded order${r.runs.length === 1 ? '' : 's'}; vocabulary of ${s.numWords} words fitted on the first ${s.bootstrapRows} messages, ` +
      `sequences of ${s.maxLen}, Embedding(${s.numWords}, ${s.embeddingDim}) → LSTM(${s.units}) → Dense(1, sigmoid), ` +
      `Adam, steps of ${s.trainBatchSize} rows; tfjs backend ${r.backend}, ${r.lstm} LSTM. ` +
      `${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node ${r.machine.node}; ` +
      Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ') + '.',
    '',
    '| seed | model | accuracy | AUC | log loss | accuracy after bootstrap | accuracy, 2nd half | AUC, 2nd half | rows/s |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const run of r.runs) {
    for (const m of run.results) {
      lines.push(
        `| ${run.seed} | ${name(m.model)} | ${percent(m.whole.accuracy)} | ${auc(m.whole.auc)} | ${m.whole.logLoss.toFixed(3)} | ` +
          `${percent(m.afterBootstrap.accuracy)} | ${percent(m.secondHalf.accuracy)} | ${auc(m.secondHalf.auc)} | ${Math.round(m.rowsPerSec).toLocaleString('en-US')} |`,
      );
    }
  }
  lines.push('', r.runs.length === 1 ? 'The same, as the summary over orders:' : `Mean over the ${r.runs.length} orders:`, '');
  lines.push('| model | accuracy | AUC | log loss | accuracy, 2nd half | rows/s |', '|---|---:|---:|---:|---:|---:|');
  const models = r.runs[0]?.results.map((m) => m.model) ?? [];
  for (const model of models) {
    const of = r.runs.map((run) => run.results.find((m) => m.model === model)!);
    const aucs = of.map((m) => m.whole.auc).filter((x): x is number => x !== null);
    lines.push(
      `| ${name(model)} | ${percent(mean(of.map((m) => m.whole.accuracy)))} | ${aucs.length === of.length ? mean(aucs).toFixed(4) : '—'} | ` +
        `${mean(of.map((m) => m.whole.logLoss)).toFixed(3)} | ${percent(mean(of.map((m) => m.secondHalf.accuracy)))} | ` +
        `${Math.round(mean(of.map((m) => m.rowsPerSec))).toLocaleString('en-US')} |`,
    );
  }
  lines.push(
    '',
    "rows/s: textstream's is the whole replay (read, clean, tokenize, score, train, write Parquet); the references' is their " +
      'score-then-learn loop alone, on texts and sequences made beforehand. Keras tokenizes the same cleaned texts with its own ' +
      "Tokenizer fitted on the same bootstrap window (the parity tests show it gives textstream's sequences).",
    `Run in ${r.seconds.toFixed(0)} s.`,
    '',
  );
  return lines.join('\n');
}
