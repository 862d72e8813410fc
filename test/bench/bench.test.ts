/**
 * `npm run bench` end to end, on a tiny input, as a real subprocess: it must exit 0 and
 * print every section with a positive finite figure per row, and its derived numbers
 * (ours/Keras, % of the compute limit) must follow from the figures it printed. No
 * assertion is about speed: the machine is shared and the input is tiny.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanThreadsSupported } from '../../bench/clean-threads.js';
import { fusedLstmUnavailableReason } from '../../src/model/fused-lstm.js';
import { repoRoot } from '../helpers/paths.js';

const run = promisify(execFile);
const script = path.join(repoRoot, 'dist', 'bench', 'run.js');

type Table = Map<string, string[]>;

/** The Markdown table of each `## ` section, rows keyed by their first cell. */
function sections(output: string): Map<string, Table> {
  const out = new Map<string, Table>();
  let current: Table = new Map();
  for (const line of output.split('\n')) {
    if (line.startsWith('## ')) {
      current = new Map();
      // "## Keras reference (Keras 3.15.1, …)" → "Keras reference"
      out.set(line.slice(3).replace(/ \(.*$/, ''), current);
    } else if (line.startsWith('| ') && !line.startsWith('|---')) {
      const cells = line.slice(2, -2).split(' | ').map((c) => c.trim());
      current.set(cells[0]!, cells.slice(1));
    }
  }
  return out;
}

function section(all: Map<string, Table>, title: string): Table {
  const table = all.get(title);
  assert.ok(table, `section "## ${title}" is missing`);
  return table;
}

function figure(rows: Table, name: string, column = 0): number {
  const cells = rows.get(name);
  assert.ok(cells, `row "${name}" is missing`);
  const text = cells[column]!;
  const value = Number(text);
  assert.ok(Number.isFinite(value) && value > 0, `row "${name}" has no positive figure: "${text}"`);
  return value;
}

/** a ≈ b within `relative` (the printed figures are rounded to about 3 significant digits). */
function near(a: number, b: number, relative: number, what: string): void {
  assert.ok(Math.abs(a - b) <= relative * Math.max(Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('should print every bench row with a figure, and ratios and limits derived from the printed figures', { timeout: 300_000 }, async () => {
  const { stdout } = await run(process.execPath, [script, '--rows', '64', '--reps', '1', '--seconds', '0.5', '--no-kafka', '--clean-threads', '0,2'], {
    cwd: repoRoot,
    maxBuffer: 8 << 20,
    timeout: 290_000,
  });
  const all = sections(stdout);
  const stages = section(all, 'Stages');
  const kerasTable = section(all, 'Keras reference');
  const ratioTable = section(all, 'Ours / Keras');
  const limitTable = section(all, 'Compute limit');
  const backends = section(all, 'tfjs backends');
  const worker = section(all, 'Whole worker');

  const lstms = fusedLstmUnavailableReason() === null ? ['stock', 'fused'] : ['stock'];
  const modelRows = lstms.flatMap((l) => [`score batch 32 [${l}]`, `score batch 256 [${l}]`, `train batch 32 [${l}]`]);
  const ours = [
    'clean',
    'tokenizer fit',
    'tokenize',
    'Arrow batch build',
    ...modelRows,
    'Parquet write',
  ];
  for (const name of ours) figure(stages, name);
  if (fusedLstmUnavailableReason() !== null) {
    assert.match(stages.get('train batch 32 [fused]')?.[0] ?? '', /^skipped: /);
  }

  // | workload | figure | unit | CPU | start-up s | exactly once | runs | note |: each
  // workload per clean.threads setting, with the CPU share measured beside it.
  assert.equal(figure(worker, 'clean [clean.threads 0]'), figure(stages, 'clean'), 'the clean row is the stage figure');
  // The clean stage on a pool of 1 … all cores' threads, whatever --clean-threads says (it picks the replay and Kafka settings).
  for (let threads = 1; threads <= os.availableParallelism(); threads++) assert.ok(figure(worker, `clean [clean.threads ${threads}]`) > 0);
  const replays = ['replay, score only', 'replay, score + train'];
  for (const name of replays) {
    figure(worker, `${name} [clean.threads 0]`);
    const cpu = worker.get(`${name} [clean.threads 0]`)![2]!;
    const share = /^(\d+) % \(machine (\d+) %\)$/.exec(cpu);
    assert.ok(share, `${name}: CPU cell "${cpu}"`);
    // /proc/stat counts in 10 ms ticks per core: over a tiny input's window of a fraction of
    // a second the machine's share is known to a few points only.
    assert.ok(Number(share[1]) > 0 && Number(share[1]) <= Number(share[2]) + 10, `${name}: its share is part of the machine's: ${cpu}`);
    // rows per CPU-second = rows/s ÷ (share × cores), to the rounding of the printed share.
    const perCpu = figure(worker, `${name} [clean.threads 0]`, 3);
    const cores = Number(/- machine: (\d+) cores/.exec(stdout)?.[1]);
    near(perCpu, figure(worker, `${name} [clean.threads 0]`) / ((Number(share[1]) / 100) * cores), 0.15, `${name}: per CPU-second`);
  }
  for (const name of replays) {
    const pool = worker.get(`${name} [clean.threads 2]`)?.[0] ?? '';
    if (cleanThreadsSupported()) figure(worker, `${name} [clean.threads 2]`);
    else assert.match(pool, /^skipped: clean\.threads is not a setting of this build/);
  }
  for (const threads of [0, 2]) {
    for (const name of ['Kafka worker, role all', 'Kafka scorer, role score']) assert.equal(worker.get(`${name} [clean.threads ${threads}]`)?.[0], 'skipped: --no-kafka');
  }

  const keras = ['Keras tokenizer fit', 'Keras tokenize', 'Keras train_on_batch 32', 'Keras predict batch 32', 'Keras predict batch 256'];
  for (const name of keras) figure(kerasTable, name);
  assert.match(stdout, /Keras' own tokenizer differs from ours on 0 of 64 rows/);

  // | measure | ours | Keras | ours/Keras |: each side is the figure printed in its own
  // section, and the ratio is their quotient (to the rounding of the printed figures).
  const ratios: [string, string][] = [
    ['tokenizer fit', 'Keras tokenizer fit'],
    ['tokenize', 'Keras tokenize'],
    ...lstms.flatMap((l): [string, string][] => [
      [`train batch 32 [${l}]`, 'Keras train_on_batch 32'],
      [`score batch 32 [${l}]`, 'Keras predict batch 32'],
      [`score batch 256 [${l}]`, 'Keras predict batch 256'],
    ]),
  ];
  for (const [name, kerasName] of ratios) {
    const oursFigure = figure(ratioTable, name, 0);
    const kerasFigure = figure(ratioTable, name, 1);
    assert.equal(oursFigure, figure(stages, name), `ours for ${name}`);
    assert.equal(kerasFigure, figure(kerasTable, kerasName), `Keras for ${name}`);
    near(figure(ratioTable, name, 2), oursFigure / kerasFigure, 0.02, `ratio ${name}`);
  }

  // Compute limit: % = samples/s × FLOP/sample / peak, with the measured peak as printed,
  // which is the fastest all-core row of the measured-peak table.
  const peak = /- limit: ([\d.]+) GFLOP\/s measured \((\w+) FMA loop on (\d+) threads?/.exec(stdout);
  assert.ok(peak, 'the measured peak the fractions use is printed');
  const peakGflops = Number(peak[1]);
  const peakTable = section(all, 'Measured peak');
  assert.ok(peakTable.size >= 2, 'one and all cores per ISA');
  near(figure(peakTable, `${peak[2]}, ${peak[3]} thread${peak[3] === '1' ? '' : 's'}`), peakGflops, 0.001, 'the limit is the table\'s all-core figure');
  for (const [name, table] of [...modelRows.map((n): [string, Table] => [n, stages]), ...keras.slice(2).map((n): [string, Table] => [n, kerasTable])]) {
    const samples = figure(limitTable, name, 0);
    assert.equal(samples, figure(table, name), `samples/s for ${name}`);
    const mflop = figure(limitTable, name, 1);
    assert.ok(mflop > 1 && mflop < 100, `${name}: MFLOP/sample ${mflop}`);
    near(figure(limitTable, name, 3), (100 * samples * mflop * 1e6) / (peakGflops * 1e9), 0.02, `% of limit for ${name}`);
  }
  assert.match(stdout, /forward 6\.6\d MFLOP, training 19\.9 MFLOP/);

  // Backends side by side: wasm and cpu always run; tensorflow only when tfjs-node is installed.
  for (const backend of ['wasm', 'cpu']) {
    // "wasm (SIMD)" where the SIMD build loaded.
    const name = [...backends.keys()].find((k) => k === backend || k.startsWith(`${backend} (`));
    assert.ok(name !== undefined, `backend ${backend} has a row`);
    figure(backends, name, 1);
    figure(backends, name, 2);
  }
  assert.ok([...backends.keys()].some((k) => k.startsWith('tensorflow')), 'the tensorflow backend has a row (figures or why it was skipped)');

  assert.match(stdout, /- machine: \d+ cores, .+ @ \d+ MHz/);
  assert.match(stdout, /- tfjs backend: \w+/);
  assert.match(stdout, /- LSTM: model rows per implementation: stock/);
});
