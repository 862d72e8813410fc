/**
 * `npm run bench:quality`: how well the product predicts, against the references a data
 * scientist would try first, on the same rows in the same order (issue 15).
 *
 * For each seeded order of the bundled corpus (`textstream dataset spamassassin --seed S`)
 * it runs a real `textstream replay` of the pipeline (its cleaning, tokenizer, batches and
 * learner; text written to the output), then bench/quality_reference.py reads that output
 * and measures, on the same cleaned texts in the same order, the seed's network in Keras
 * (Keras' defaults, and textstream's training settings), scikit-learn's online logistic
 * regression over hashed unigrams and bigrams, River's naive Bayes, and the seed's network
 * with a wide branch over hashed n-grams beside it (what it would take to match the
 * linear models). Every model scores each row before it learns from it. Figures are
 * printed, never asserted.
 *
 *   npm run bench:quality -- [--seeds 42,7,1234] [--pipeline file.yaml] [--json]
 *
 * Pipeline settings can be changed for a run with the usual environment overrides, e.g.
 * `TEXTSTREAM_MODEL_LEARNING_RATE=0.001 TEXTSTREAM_MODEL_CLIP_NORM=null npm run bench:quality`.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { loadPipeline } from '../src/config/load.js';
import type { PipelineConfig } from '../src/config/schema.js';
import { buildSpamAssassinDataset } from '../src/datasets/spamassassin.js';
import { replay } from '../src/runtime/replay.js';
import { python } from './keras.js';
import { readMachine } from './machine.js';
import { parseOrExit } from './options.js';
import { renderQualityTable, type QualityBenchResult, type ReferenceOutput } from './quality/table.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const program = new Command('npm run bench:quality --')
  .description(
    'Prequential accuracy, AUC and log loss of a real replay of the bundled corpus in several seeded orders, ' +
      "against Keras (the seed's network), scikit-learn (online logistic regression) and River (naive Bayes) on the same rows.",
  )
  .option(
    '--seeds <s[,s…]>',
    'shuffle seeds of the corpus (textstream dataset spamassassin --seed S), one replay each',
    (v: string) =>
      [...new Set(v.split(',').map((s) => {
        const n = Number(s.trim());
        if (s.trim() === '' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected integers, got "${s}"`);
        return n;
      }))],
    [42, 7, 1234],
  )
  .option('--pipeline <file>', 'pipeline definition to replay (a parquet source)', path.join(repo, 'pipelines', 'spamassassin.yaml'))
  .option('--json', 'print the result object as JSON instead of the table', false)
  .addHelpText('after', '\nEach seed takes ≈ 60 s on 2 cores: the replay ≈ 10 s, the references ≈ 50 s (Keras three times, scikit-learn, River).')
  .allowExcessArguments(false)
  .exitOverride();

parseOrExit(program);
const o = program.opts<{ seeds: number[]; pipeline: string; json: boolean }>();
const started = performance.now();
const log = (line: string): void => void process.stderr.write(`quality [${((performance.now() - started) / 1000).toFixed(0)} s]: ${line}\n`);
const logger = pino({ level: 'warn' }, pino.destination(2));

const config = await loadPipeline(o.pipeline);
if (config.source.type !== 'parquet') {
  process.stderr.write(`bench:quality: ${o.pipeline} reads ${config.source.type}; it replays a parquet source\n`);
  process.exit(2);
}
const work = await mkdtemp(path.join(os.tmpdir(), 'textstream-quality-'));
try {
  const replays = [];
  for (const seed of o.seeds) {
    const input = path.join(repo, 'data', `spamassassin-seed-${seed}.parquet`);
    if (!(await exists(input))) {
      log(`building ${path.relative(repo, input)} (seed ${seed})`);
      await buildSpamAssassinDataset({ out: input, seed });
    }
    log(`seed ${seed}: textstream replay`);
    replays.push({ seed, ...(await replayInto(config, input, path.join(work, `seed-${seed}`))) });
    const last = replays.at(-1)!;
    log(`  ${last.rows} rows in ${last.seconds.toFixed(1)} s, accuracy ${(100 * last.replayAccuracy).toFixed(2)} %`);
  }

  const { tokenizer, model } = config;
  const spec = {
    settings: {
      numWords: tokenizer.numWords,
      maxLen: tokenizer.maxLen,
      bootstrapRows: tokenizer.bootstrapRows,
      embeddingDim: model.embeddingDim,
      units: model.units,
      trainBatchSize: model.trainBatchSize,
      learningRate: model.learningRate,
      clipNorm: model.clipNorm,
    },
    // The seed's training: Keras' Adam defaults.
    kerasDefaults: { learningRate: 0.001, clipNorm: null },
    runs: replays.map((r) => ({ seed: r.seed, outputDir: r.outputDir, seconds: r.seconds, replayAccuracy: r.replayAccuracy })),
  };
  const specPath = path.join(work, 'spec.json');
  await writeFile(specPath, JSON.stringify(spec));
  log('references: Keras, scikit-learn, River (bench/quality_reference.py)');
  // A first run installs TensorFlow, scikit-learn and River: minutes, not seconds.
  const interpreter = await python(repo);
  const { stdout } = await run(interpreter, [path.join(repo, 'bench', 'quality_reference.py'), specPath], {
    cwd: repo,
    maxBuffer: 64 << 20,
    timeout: 60 * 60_000,
  });
  const references = JSON.parse(stdout) as ReferenceOutput;
  const result: QualityBenchResult = {
    date: new Date().toISOString(),
    machine: readMachine(),
    pipeline: path.relative(process.cwd(), o.pipeline) || o.pipeline,
    settings: spec.settings,
    kerasDefaults: spec.kerasDefaults,
    backend: replays[0]?.backend ?? 'none',
    lstm: replays[0]?.lstm ?? 'none',
    versions: references.versions,
    runs: references.runs,
    seconds: (performance.now() - started) / 1000,
  };
  process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : renderQualityTable(result));
} finally {
  await rm(work, { recursive: true, force: true });
}

/** One replay of `input` with text in the output and nothing kept: no checkpoint, no metrics server. */
async function replayInto(pipeline: Readonly<PipelineConfig>, input: string, sinkDir: string) {
  const overridden: Readonly<PipelineConfig> = {
    ...pipeline,
    sink: { ...pipeline.sink, dir: sinkDir, includeText: true },
    deadLetter: { ...pipeline.deadLetter, path: null },
    model: { ...pipeline.model, checkpoints: false },
    metrics: { ...pipeline.metrics, enabled: false },
  };
  const at = performance.now();
  const summary = await replay(overridden, { input, logger, signal: new AbortController().signal });
  const seconds = (performance.now() - at) / 1000;
  if (summary.deadLetters > 0) log(`  ${summary.deadLetters} dead letters (not in the comparison)`);
  return {
    outputDir: path.join(sinkDir, pipeline.name),
    rows: summary.rowsWritten,
    seconds,
    replayAccuracy: summary.evaluation.accuracy ?? Number.NaN,
    backend: summary.backend.name,
    lstm: summary.lstm,
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
