/**
 * Chooses and initialises the tfjs backend. The tfjs engine is process-wide (tfjs owns
 * it), so this is called once at start-up and its answer logged and exported as a metric
 * label: a run that quietly trained on the pure-JS cpu backend would be ~10× slower with
 * nobody knowing why.
 *
 * - 'auto': @tensorflow/tfjs-node when the package is installed, else wasm. A tfjs-node
 *   that is installed but fails to load is an error, not a reason to fall back: a broken
 *   native install should be fixed, not hidden.
 * - 'tensorflow' | 'wasm' | 'cpu': exactly that backend, or a BackendError saying why not.
 * - cpu is never chosen unless asked for.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BackendError } from '../errors.js';
import { registerCpuKernels, registerWasmKernels } from './kernels.js';

export const Backends = {
  AUTO: 'auto',
  TENSORFLOW: 'tensorflow',
  WASM: 'wasm',
  CPU: 'cpu',
} as const;
export type RequestedBackend = (typeof Backends)[keyof typeof Backends];
export type BackendName = Exclude<RequestedBackend, 'auto'>;

export interface BackendInfo {
  /** The backend tfjs now runs on; use it as a metric label. */
  name: BackendName;
  requested: RequestedBackend;
  /** Why this backend was chosen, for the start-up log line. */
  reason: string;
  /** wasm only: whether the SIMD build was loaded (null on other backends). */
  simd: boolean | null;
}

export interface SelectBackendOptions {
  /**
   * wasm only: set false to load the non-SIMD build (for measurement; SIMD scores
   * ≈ 1.3–1.5× faster here and trains at the same speed). wasm threads are not offered:
   * tfjs disables them under Node.
   */
  simd?: boolean;
}

const TFJS_NODE = '@tensorflow/tfjs-node';
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'] as const;

const require = createRequire(import.meta.url);

let selected: BackendInfo | null = null;

/** The backend the last successful selectBackend chose, or null if none was selected. */
export function currentBackend(): BackendInfo | null {
  return selected !== null && tf.getBackend() === selected.name ? selected : null;
}

export async function selectBackend(requested: RequestedBackend, options: SelectBackendOptions = {}): Promise<BackendInfo> {
  selected = await choose(requested, options);
  return selected;
}

async function choose(requested: RequestedBackend, options: SelectBackendOptions): Promise<BackendInfo> {
  switch (requested) {
    case 'auto': {
      if (resolvable(TFJS_NODE)) {
        return { ...(await useTensorflow()), requested, reason: `auto: ${TFJS_NODE} is installed` };
      }
      return { ...(await useWasm(options)), requested, reason: `auto: ${TFJS_NODE} is not installed, using wasm` };
    }
    case 'tensorflow':
      return { ...(await useTensorflow()), requested, reason: 'requested' };
    case 'wasm':
      return { ...(await useWasm(options)), requested, reason: 'requested' };
    case 'cpu':
      return { ...(await useCpu()), requested, reason: 'requested' };
    default:
      throw new BackendError(`unknown backend ${JSON.stringify(requested)}; expected auto, tensorflow, wasm or cpu`);
  }
}

function resolvable(specifier: string): boolean {
  try {
    require.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (cause) {
    throw new BackendError(`could not initialise the ${name} backend: ${String(cause)}`, { cause });
  }
  // tfjs reports a failed initialisation by returning false (and logging a warning).
  if (!ok || tf.getBackend() !== name) {
    throw new BackendError(`could not initialise the ${name} backend (tfjs reported failure; see its warning above)`);
  }
}

async function useTensorflow(): Promise<Omit<BackendInfo, 'requested' | 'reason'>> {
  if (!resolvable(TFJS_NODE)) {
    throw new BackendError(
      `backend 'tensorflow' needs ${TFJS_NODE}, which is not installed (it is an optional dependency that ` +
        'npm drops when its native library cannot be downloaded; scripts/tfjs-node.sh builds it offline)',
    );
  }
  try {
    // A variable specifier: the package is optional and absent from the type graph.
    const specifier: string = TFJS_NODE;
    await import(specifier);
  } catch (cause) {
    throw new BackendError(`${TFJS_NODE} is installed but failed to load: ${String(cause)}`, { cause });
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new BackendError(
      `${TFJS_NODE} loaded but registered no 'tensorflow' backend with this process' tfjs-core ` +
        `(${tf.version_core}); its @tensorflow/tfjs version must match`,
    );
  }
  await activate('tensorflow');
  return { name: 'tensorflow', simd: null };
}

async function useWasm(options: SelectBackendOptions): Promise<Omit<BackendInfo, 'requested' | 'reason'>> {
  // setWasmPaths and the SIMD flag only take effect before the backend is first
  // initialised (tf.findBackend would itself start initialising it, so look in the registry).
  if (tf.engine().registry['wasm'] === undefined) {
    const dir = wasmDir();
    if (options.simd === false) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
    // Load the .wasm files from the installed package, not from wherever the bundled
    // JS happens to sit (a bundler or a different cwd would otherwise break this).
    setWasmPaths(dir + path.sep);
  }
  await activate('wasm');
  registerWasmKernels();
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  return { name: 'wasm', simd };
}

function wasmDir(): string {
  let main: string;
  try {
    main = require.resolve(WASM_PACKAGE);
  } catch (cause) {
    throw new BackendError(`backend 'wasm' needs ${WASM_PACKAGE}, which is not installed`, { cause });
  }
  const dir = path.dirname(main);
  const missing = WASM_FILES.filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new BackendError(`${WASM_PACKAGE} is incomplete: ${missing.join(', ')} missing from ${dir}`);
  }
  return dir;
}

async function useCpu(): Promise<Omit<BackendInfo, 'requested' | 'reason'>> {
  await activate('cpu');
  // tfjs' cpu backend prints an advertisement for tfjs-node on its first tensor; the
  // backend here is chosen on purpose and logged, so that banner is only noise on stderr.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  registerCpuKernels();
  return { name: 'cpu', simd: null };
}
