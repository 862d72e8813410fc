/**
 * Adam's update in one native pass per variable instead of tfjs' ten or so whole-tensor
 * ops (each an allocation and a pass over memory). On the seed network the 640 000-weight
 * embedding made tfjs' update ≈ 40 % of a training step.
 *
 * The arithmetic is tfjs' AdamOptimizer.applyGradients operation for operation, each
 * rounded to float32 as tfjs' ops round it, so the weights, moments and beta powers come
 * out bit-identical (test/model/fused-adam.test.ts checks it against tfjs' own update);
 * the moments live in the optimiser's own variables, named as tfjs names them, so
 * checkpoints (optimizer-state.ts) see no difference. It runs on the wasm backend (a
 * kernel that writes into fresh heap tensors, no copy through JavaScript) when the addon
 * is built; elsewhere FusedAdamOptimizer is tfjs' Adam.
 */
import * as tf from '@tensorflow/tfjs';
import type { DataType, TensorInfo } from '@tensorflow/tfjs';
import { nativeAdamUpdate } from './fused-lstm.js';

const KERNEL = 'TextstreamFusedAdam';

/** The AdamOptimizer fields tfjs keeps TypeScript-private; the update reads and writes them. */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

interface HeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

let registered = false;

function registerKernel(update: NonNullable<ReturnType<typeof nativeAdamUpdate>>): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const heap = backend as unknown as HeapBackend;
      const { param, m, v, grad } = inputs as Record<'param' | 'm' | 'v' | 'grad', TensorInfo>;
      // Allocate before taking heap views: an allocation may grow (and detach) the heap.
      const outs = [param, m, v].map((t) => heap.makeOutput(t.shape, 'float32'));
      const [p, mo, vo] = outs.map((t) => heap.typedArrayFromHeap(t)) as [Float32Array, Float32Array, Float32Array];
      update(heap.typedArrayFromHeap(param), heap.typedArrayFromHeap(m), heap.typedArrayFromHeap(v), heap.typedArrayFromHeap(grad), p, mo, vo,
        attrs!['scalars'] as Float64Array);
      return outs;
    },
  });
}

type Gradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

/**
 * tfjs' AdamOptimizer whose update runs in one native pass per variable where it can
 * (wasm backend, addon built) and is tfjs' own elsewhere. Everything else (its class name
 * for serialisation, getWeights/setWeights, the beta powers) is tfjs' Adam, so
 * trainOnBatch, the guarded training step and checkpoints use it unchanged.
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Gradients): void {
    const update = nativeAdamUpdate();
    if (update === null || tf.getBackend() !== 'wasm') {
      super.applyGradients(variableGradients);
      return;
    }
    registerKernel(update);
    // The order tfjs iterates in: the array's, or the map's keys'.
    const gradients = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name]! }));
    fusedUpdate(this as unknown as AdamInternals, gradients);
  }
}

function fusedUpdate(adam: AdamInternals, gradients: { name: string; tensor: tf.Tensor | null | undefined }[]): void {
  tf.tidy(() => {
    // tfjs computes 1 - β^t as a float32 op on the float32 power; for a float32 β^t in
    // (0, 1) the double subtraction is exact, so fround gives the same float32.
    const oneMinusAccBeta1 = Math.fround(1 - adam.accBeta1.dataSync()[0]!);
    const oneMinusAccBeta2 = Math.fround(1 - adam.accBeta2.dataSync()[0]!);
    // Each scalar as tfjs makes it: a float32 tensor of the JavaScript number.
    const scalars = Float64Array.from(
      [adam.beta1, 1 - adam.beta1, adam.beta2, 1 - adam.beta2, oneMinusAccBeta1, oneMinusAccBeta2, adam.epsilon, -adam.learningRate],
      Math.fround,
    );
    gradients.forEach(({ name, tensor: gradient }, i) => {
      const value = tf.engine().registeredVariables[name]!;
      // Created as tfjs creates them (names included), so checkpoints see the same slots.
      adam.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      adam.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      if (gradient == null) return;
      const m = adam.accumulatedFirstMoment[i].variable;
      const v = adam.accumulatedSecondMoment[i].variable;
      const [newValue, newM, newV] = tf.engine().runKernel<tf.Tensor[]>(KERNEL, { param: value, m, v, grad: gradient }, { scalars });
      m.assign(newM!);
      v.assign(newV!);
      value.assign(newValue!);
    });
    adam.accBeta1.assign(tf.mul(adam.accBeta1, adam.beta1));
    adam.accBeta2.assign(tf.mul(adam.accBeta2, adam.beta2));
  });
  adam.incrementIterations();
}
