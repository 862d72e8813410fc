/**
 * The seed's LSTM layer with its whole time loop fused into one native call forward and
 * one backward (src/model/native/fused_lstm.cc), instead of tfjs-layers' handful of tensor
 * ops per timestep.
 *
 * It is a drop-in for `tf.layers.lstm({ activation: 'tanh', recurrentActivation:
 * 'sigmoid', unitForgetBias: true })` with return_sequences false and no mask (the
 * pipeline pads with token 0 and masks nothing): the same weights, named the same
 * (`<layer>/kernel` [in, 4·units], `<layer>/recurrent_kernel` [units, 4·units],
 * `<layer>/bias` [4·units], gate order i, f, c, o), the same initialisers and seeds, so
 * checkpoints move between the two layers in either direction. The embedding before it,
 * the dense layer after it and Adam stay in tfjs on whatever backend is selected: the op
 * reads its inputs with dataSync and returns plain tensors, so the model code does not
 * fork per backend.
 *
 * The addon is built by scripts/build-native.sh (npm ci and npm test run it) into
 * .cache/native/. When it is missing, `fusedLstmUnavailableReason()` says why.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { BackendError, ModelError } from '../errors.js';

interface NativeLstm {
  forward(
    x: Float32Array, kernel: Float32Array, recurrentKernel: Float32Array, bias: Float32Array,
    batch: number, steps: number, inputDim: number, units: number, threads: number,
    h: Float32Array, gates: Float32Array | null, cells: Float32Array | null, hiddens: Float32Array | null,
  ): void;
  backward(
    x: Float32Array, kernel: Float32Array, recurrentKernel: Float32Array,
    batch: number, steps: number, inputDim: number, units: number, threads: number,
    gates: Float32Array, cells: Float32Array, hiddens: Float32Array, dh: Float32Array,
    dx: Float32Array, dKernel: Float32Array, dRecurrentKernel: Float32Array, dBias: Float32Array,
  ): void;
  adam(
    param: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array,
    paramOut: Float32Array, mOut: Float32Array, vOut: Float32Array, scalars: Float64Array, threads: number,
  ): void;
  segmentSum(x: Float32Array, ids: Int32Array, inner: number, out: Float32Array): void;
  sumOfSquares(a: Float32Array): number;
  peakIsas(): string[];
  peak(isa: string, iterations: number, threads: number, one: number): FmaLoopRun;
}

/** One run of the addon's register-resident FMA loop (see src/model/native/fma_peak.cc). */
export interface FmaLoopRun {
  /** FLOPs the loop performs by construction: 2 × iterations × accumulators × lanes × threads. */
  flop: number;
  /** FMAs the accumulators counted (with one = 1): flop / 2 when the loop ran as counted. */
  fmas: number;
  seconds: number;
  lanes: number;
  accumulators: number;
}

/**
 * Where scripts/build-native.sh puts the addon (dist/src/model/ → the repository or image
 * root), unless TEXTSTREAM_FUSED_LSTM_ADDON names another build.
 */
const FUSED_LSTM_ADDON =
  process.env.TEXTSTREAM_FUSED_LSTM_ADDON ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../.cache/native/fused_lstm.node');

let addon: NativeLstm | null | undefined;
let unavailableReason: string | null = null;

function loadAddon(): NativeLstm | null {
  if (addon !== undefined) return addon;
  try {
    addon = createRequire(import.meta.url)(FUSED_LSTM_ADDON) as NativeLstm;
  } catch (cause) {
    addon = null;
    unavailableReason = `the fused LSTM addon ${FUSED_LSTM_ADDON} could not be loaded (${(cause as Error).message.split('\n')[0]}); build it with \`bash scripts/build-native.sh\` (needs g++)`;
  }
  return addon;
}

/** Null when the fused LSTM can run here; otherwise why not (for logs and errors). */
export function fusedLstmUnavailableReason(): string | null {
  loadAddon();
  return unavailableReason;
}

/** The vector ISAs the addon's FMA loop can run on this CPU, widest first; [] without the addon. */
export function fmaLoopIsas(): string[] {
  return loadAddon()?.peakIsas() ?? [];
}

/**
 * The addon's FMA loop for `isa` on `threads` threads at once, `iterations` each (below
 * 2^24). It measures the machine's compute peak for the bench; `one` must be 1 for
 * `fmas` to count the FMAs (it is an argument so the compiler cannot fold it away).
 */
export function fmaLoop(isa: string, iterations: number, threads: number, one = 1): FmaLoopRun {
  const native = loadAddon();
  if (native === null) throw new BackendError(unavailableReason!);
  return native.peak(isa, iterations, threads, one);
}

/**
 * The addon's embedding-gradient scatter and gradient sum of squares (bit-identical to
 * the JavaScript loops in kernels.ts and training-step.ts, which run without the addon),
 * or null when the addon is not loaded.
 */
export function nativeGradientHelpers(): Pick<NativeLstm, 'segmentSum' | 'sumOfSquares'> | null {
  return loadAddon();
}

let threads: number | null = null;

/**
 * Threads per call (the batch is split by sample): model.lstmThreads, set once per process
 * by the runtime; null: the cores Node may use.
 */
export function setFusedLstmThreads(count: number | null): void {
  threads = count;
}

function threadCount(): number {
  return threads ?? os.availableParallelism();
}

/**
 * The addon's one-pass Adam update (see fused-adam.ts) with the fused kernels' thread
 * count bound, or null when the addon is not loaded.
 */
export function nativeAdamUpdate(): ((...args: Parameters<NativeLstm['adam']> extends [...infer A, number] ? A : never) => void) | null {
  const native = loadAddon();
  if (native === null) return null;
  return (...args) => native.adam(...args, threadCount());
}

/** The part of the wasm backend that hands out views of tensors in its heap. */
interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/**
 * A tensor's values without a copy where the backend allows: on wasm a view of its heap,
 * which stays valid only until the next wasm allocation, so call this right before the
 * native call that reads it and allocate no tensor in between. Elsewhere dataSync (no copy
 * on cpu).
 */
function values(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof backend.typedArrayFromHeap === 'function' ? backend.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}
/** `values` for other modules (the learner's finiteness check reads gradients this way). */
export { values as tensorValues };

/**
 * What a training forward pass keeps for its backward pass (gates, cells, hiddens: ≈ 5 MB
 * for the seed batch), reused across steps instead of allocating and zeroing it per step.
 * One training pass at a time: a second forward before the first's backward would
 * overwrite it, which `generation` detects.
 */
class LstmWorkspace {
  gates = new Float32Array(0);
  cells = new Float32Array(0);
  hiddens = new Float32Array(0);
  generation = 0;

  /** Views of exactly the sizes this pass needs, growing the buffers when too small. */
  claim(batch: number, steps: number, units: number): { gates: Float32Array; cells: Float32Array; hiddens: Float32Array; generation: number } {
    const stateSize = batch * steps * units;
    if (this.cells.length < stateSize) {
      this.gates = new Float32Array(4 * stateSize);
      this.cells = new Float32Array(stateSize);
      this.hiddens = new Float32Array(stateSize);
    }
    return {
      gates: this.gates.subarray(0, 4 * stateSize),
      cells: this.cells.subarray(0, stateSize),
      hiddens: this.hiddens.subarray(0, stateSize),
      generation: ++this.generation,
    };
  }
}

/**
 * The LSTM over x [batch, steps, inputDim] → h_last [batch, units]. With `training`, the
 * result is differentiable with respect to all four inputs and the pass's state is kept in
 * `workspace` until the backward pass; without, nothing is kept (scoring).
 */
export function fusedLstm(
  x: tf.Tensor3D,
  kernel: tf.Tensor2D,
  recurrentKernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  training: boolean,
  workspace: LstmWorkspace = new LstmWorkspace(),
): tf.Tensor2D {
  const native = loadAddon();
  if (native === null) throw new BackendError(unavailableReason!);
  const [batch, steps, inputDim] = x.shape;
  const units = recurrentKernel.shape[0];
  const threads = threadCount();
  if (!training) {
    const h = new Float32Array(batch * units);
    native.forward(values(x), values(kernel), values(recurrentKernel), values(bias), batch, steps, inputDim, units, threads, h, null, null, null);
    return tf.tensor2d(h, [batch, units]);
  }
  // customGrad's callback receives the inputs then `save`, which keeps tensors alive for
  // the backward pass (the recurrent state itself lives in the workspace).
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, ks, rs, bs, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([xs, ks, rs]);
    const h = new Float32Array(batch * units);
    const saved = workspace.claim(batch, steps, units);
    native.forward(values(xs), values(ks), values(rs), values(bs), batch, steps, inputDim, units, threads, h, saved.gates, saved.cells, saved.hiddens);
    return {
      value: tf.tensor2d(h, [batch, units]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], [xSaved, kSaved, rSaved]: tf.Tensor[]) => {
        if (workspace.generation !== saved.generation) {
          throw new ModelError('fused LSTM: another training pass ran between this forward pass and its backward pass');
        }
        const dx = new Float32Array(batch * steps * inputDim);
        const dKernel = new Float32Array(ks.size);
        const dRecurrent = new Float32Array(rs.size);
        const dBias = new Float32Array(4 * units);
        native.backward(values(xSaved!), values(kSaved!), values(rSaved!), batch, steps, inputDim, units, threads, saved.gates, saved.cells, saved.hiddens,
          values(Array.isArray(dy) ? dy[0]! : dy), dx, dKernel, dRecurrent, dBias);
        return [tf.tensor3d(dx, x.shape), tf.tensor2d(dKernel, kernel.shape), tf.tensor2d(dRecurrent, recurrentKernel.shape), tf.tensor1d(dBias)];
      },
    };
  });
  return op(x, kernel, recurrentKernel, bias);
}

export interface FusedLstmLayerArgs {
  name: string;
  units: number;
  kernelInitializer: Initializer;
  recurrentInitializer: Initializer;
}

type LayerVariable = ReturnType<tf.layers.Layer['addWeight']>;
type Initializer = ReturnType<typeof tf.initializers.zeros>;

/** The layer form of `fusedLstm`, for tf.sequential. */
export class FusedLstmLayer extends tf.layers.Layer {
  static readonly className = 'FusedLSTM';
  readonly units: number;
  readonly #kernelInitializer: Initializer;
  readonly #recurrentInitializer: Initializer;
  #kernel: LayerVariable | null = null;
  #recurrentKernel: LayerVariable | null = null;
  #bias: LayerVariable | null = null;
  readonly #workspace = new LstmWorkspace();

  constructor(args: FusedLstmLayerArgs) {
    super({ name: args.name });
    this.units = args.units;
    this.#kernelInitializer = args.kernelInitializer;
    this.#recurrentInitializer = args.recurrentInitializer;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inputDim = shape[shape.length - 1]!;
    const gates = 4 * this.units;
    // Creation order kernel, recurrent kernel, bias: the order tf.layers.lstm draws its
    // initialisers in and lists its weights in, so getWeights() lines up with it.
    this.#kernel = this.addWeight('kernel', [inputDim, gates], 'float32', this.#kernelInitializer);
    this.#recurrentKernel = this.addWeight('recurrent_kernel', [this.units, gates], 'float32', this.#recurrentInitializer);
    this.#bias = this.addWeight('bias', [gates], 'float32', tf.initializers.zeros());
    // Keras' unit_forget_bias: the forget gate's bias starts at 1.
    const units = this.units;
    tf.tidy(() => {
      this.#bias!.write(tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])]));
    });
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [shape[0]!, this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor3D;
    return fusedLstm(x, this.#kernel!.read() as tf.Tensor2D, this.#recurrentKernel!.read() as tf.Tensor2D, this.#bias!.read() as tf.Tensor1D, kwargs.training === true, this.#workspace);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}
tf.serialization.registerClass(FusedLstmLayer);
