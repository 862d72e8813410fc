import cliProgress from 'cli-progress';
import type { PipelineProgress } from '../runtime/pipeline.js';

export interface ProgressView {
  update(progress: PipelineProgress, accuracy: number | null): void;
  stop(): void;
}

/**
 * A live progress bar on a terminal (rows, rows/s, running accuracy, ETA). When stderr
 * is not a TTY (CI, log collectors) it prints one plain line every few seconds instead,
 * so logs stay readable.
 */
export function makeProgressView(total: number | null, stream: NodeJS.WriteStream = process.stderr): ProgressView {
  const startedAt = Date.now();
  const rate = (rows: number): string => {
    const seconds = (Date.now() - startedAt) / 1000;
    return seconds > 0 ? (rows / seconds).toFixed(0) : '0';
  };
  const acc = (a: number | null): string => (a === null ? '  n/a' : `${(a * 100).toFixed(1)}%`);

  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: ' {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | acc {acc} | dead {dead} | eta {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, 0, { rate: '0', acc: acc(null), dead: 0 });
    return {
      update(p, a) {
        if (total === null) bar.setTotal(p.rowsIn);
        bar.update(p.rowsScored + p.deadLetters, { rate: rate(p.rowsScored + p.deadLetters), acc: acc(a), dead: p.deadLetters });
      },
      stop: () => bar.stop(),
    };
  }

  let lastPrint = 0;
  return {
    update(p, a) {
      const now = Date.now();
      if (now - lastPrint < 5000) return;
      lastPrint = now;
      const done = p.rowsScored + p.deadLetters;
      const of = total === null ? '' : `/${total}`;
      stream.write(`progress: ${done}${of} rows, ${rate(done)} rows/s, accuracy ${acc(a)}, dead letters ${p.deadLetters}\n`);
    },
    stop() {},
  };
}

export interface CountBar {
  /** `total` updates the bar's total (for a bar made without one, the first call sets it). */
  update(done: number, total?: number): void;
  stop(): void;
}

/**
 * A plain count bar (`done/total unit`) for commands other than the pipeline; a line every
 * 5 s off a TTY. `total` may be null when the work learns it only once it starts (files
 * found under a folder): the bar then starts on the first `update(done, total)`.
 */
export function makeCountBar(total: number | null, unit: string, stream: NodeJS.WriteStream = process.stderr): CountBar {
  let of = total;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: ` {bar} {percentage}% | {value}/{total} ${unit} | eta {eta_formatted}`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const start = (n: number, done: number): void => {
      bar.start(n, done);
      started = true;
    };
    if (of !== null) start(of, 0);
    return {
      update(done, newTotal) {
        if (newTotal !== undefined && newTotal !== of) {
          of = newTotal;
          if (started) bar.setTotal(newTotal);
        }
        if (!started && of !== null) start(of, done);
        else if (started) bar.update(done);
      },
      stop() {
        // A bar never started has drawn nothing (and has hidden no cursor) to undo.
        if (started) bar.stop();
      },
    };
  }
  let lastPrint = Date.now();
  return {
    update(done, newTotal) {
      if (newTotal !== undefined) of = newTotal;
      if (Date.now() - lastPrint < 5000) return;
      lastPrint = Date.now();
      stream.write(`progress: ${done}${of === null ? '' : `/${of}`} ${unit}\n`);
    },
    stop() {},
  };
}
