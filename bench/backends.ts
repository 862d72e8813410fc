/**
 * The tfjs backends side by side. tfjs' engine is process-wide and a backend cannot be
 * unloaded, so each backend gets its own process: bench/model-throughput.js, whose JSON
 * is read back. Its inputs are random token ids (the cost of an LSTM does not depend on
 * which ids it sees), so this table compares backends, not data.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { reasonOf } from './result.js';

const run = promisify(execFile);

export interface BackendFigures {
  backend: string;
  /** Samples/s; null when the backend was skipped or the figure not measured. */
  train: number | null;
  score32: number | null;
  score256: number | null;
  /** learner.process on 32-row labelled batches (score + one step). */
  learner: number | null;
  simd: boolean | null;
  /** The LSTM layer the model ran ('auto' resolved). */
  lstm: string | null;
  skipped?: string;
  note?: string;
}

interface ThroughputJson {
  backend: { name: string; simd: boolean | null };
  lstm: string;
  trainSamplesPerSec: number;
  scoreSamplesPerSec: Record<string, number>;
  learnerProcessSamplesPerSec: number | null;
}

const TFJS_NODE = '@tensorflow/tfjs-node';

interface Plan {
  backend: 'wasm' | 'cpu' | 'tensorflow';
  args: (seconds: number) => string[];
  note?: string;
  /** Why the backend cannot run here, checked before starting a process. */
  unavailable?: () => string | null;
}

const PLANS: readonly Plan[] = [
  { backend: 'wasm', args: (s) => ['--seconds', String(s), '--score-batches', '32,256', '--min-windows', '1'] },
  {
    backend: 'cpu',
    // ≈ 8 trained samples/s: one window of each, score at batch 32 only, no learner loop.
    args: (s) => ['--seconds', String(Math.min(s, 2)), '--score-batches', '32', '--min-windows', '1', '--no-learner'],
    note: 'short run: pure JS, seconds per step',
  },
  {
    backend: 'tensorflow',
    args: (s) => ['--seconds', String(s), '--score-batches', '32,256', '--min-windows', '1'],
    unavailable: () => {
      try {
        createRequire(import.meta.url).resolve(TFJS_NODE);
        return null;
      } catch {
        return `${TFJS_NODE} is not installed (npm drops it offline; 'bash scripts/tfjs-node.sh' builds it from the Python venv's TensorFlow)`;
      }
    },
  },
];

export async function measureBackends(opts: { repo: string; seconds: number; log: (line: string) => void }): Promise<BackendFigures[]> {
  const script = path.join(opts.repo, 'dist', 'bench', 'model-throughput.js');
  const out: BackendFigures[] = [];
  for (const plan of PLANS) {
    const empty = { backend: plan.backend, train: null, score32: null, score256: null, learner: null, simd: null, lstm: null };
    const unavailable = plan.unavailable?.() ?? null;
    if (unavailable !== null) {
      out.push({ ...empty, skipped: unavailable });
      continue;
    }
    opts.log(`backends: ${plan.backend}`);
    try {
      const { stdout } = await run(process.execPath, [script, '--backend', plan.backend, ...plan.args(opts.seconds)], {
        cwd: opts.repo,
        timeout: 15 * 60_000,
        maxBuffer: 4 << 20,
      });
      const json = JSON.parse(stdout) as ThroughputJson;
      out.push({
        backend: json.backend.name,
        train: json.trainSamplesPerSec,
        score32: json.scoreSamplesPerSec['batch32'] ?? null,
        score256: json.scoreSamplesPerSec['batch256'] ?? null,
        learner: json.learnerProcessSamplesPerSec,
        simd: json.backend.simd,
        lstm: json.lstm,
        ...(plan.note === undefined ? {} : { note: plan.note }),
      });
    } catch (err) {
      const stderr = ((err as { stderr?: string }).stderr ?? '').trim().split('\n').at(-1);
      out.push({ ...empty, skipped: stderr !== undefined && stderr !== '' ? stderr : reasonOf(err) });
    }
  }
  return out;
}
