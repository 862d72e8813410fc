/**
 * Replacing a network's model weights alone (federated averaging, see averaging.ts):
 * its optimiser's state is one trainer's own history and stays as it is.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';

/**
 * Writes every model weight of `model` from `weights` (keyed by the names a checkpoint's
 * model group uses, e.g. 'lstm/kernel'), copying the values. Every name and
 * shape is checked before anything is written: a mismatch is a CheckpointError that names
 * the weight, and changes nothing.
 */
export function replaceModelWeights(
  model: tf.LayersModel,
  weights: ReadonlyMap<string, { readonly shape: readonly number[]; readonly values: Float32Array }>,
): void {
  const variables = model.weights;
  const known = new Set(variables.map((v) => v.originalName));
  for (const name of weights.keys()) {
    if (!known.has(name)) throw new CheckpointError(`weight ${name} is not a weight of this model (it has ${[...known].join(', ')})`);
  }
  const writes = variables.map((variable) => {
    const name = variable.originalName;
    const w = weights.get(name);
    if (w === undefined) throw new CheckpointError(`weight ${name} is missing`);
    if (variable.dtype !== 'float32') throw new CheckpointError(`weight ${name} is ${variable.dtype}; only float32 weights can be set`);
    const size = variable.shape.reduce<number>((n, d) => n * (d ?? 0), 1);
    if (w.shape.length !== variable.shape.length || w.shape.some((d, i) => d !== variable.shape[i]) || w.values.length !== size) {
      throw new CheckpointError(
        `weight ${name} has shape [${w.shape.join(', ')}] and ${w.values.length} values; the model's is [${variable.shape.join(', ')}] (${size} values)`,
      );
    }
    return { variable, values: w.values };
  });
  // A copy: on the cpu backend a tensor keeps the very array it was made from, and the
  // variable takes over the tensor's data, so it would alias the caller's array.
  tf.tidy(() => {
    for (const { variable, values } of writes) variable.write(tf.tensor(values.slice(), variable.shape as number[], 'float32'));
  });
}
