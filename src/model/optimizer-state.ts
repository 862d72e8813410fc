/**
 * A network's weights with its optimiser's state, in and out of tfjs: what a checkpoint
 * captures (tfjs' ModelArtifacts, optimiser included, plus Adam's beta powers, which tfjs
 * leaves out) and how a checkpoint's state is loaded back into a freshly built network.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import type { AdamPowers, CheckpointState } from './checkpoint.js';

/** The model's ModelArtifacts with the optimiser's weights (the caller serialises the learner). */
export async function captureArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  // tfjs' Adam.getWeights() (called by save with includeOptimizer) makes an iterations
  // scalar it never disposes: one leaked tensor per checkpoint. The scope frees it; the
  // learner runs one call at a time, so nothing else allocates inside it.
  tf.engine().startScope();
  try {
    // A capturing IOHandler: tfjs hands us the artifacts, checkpoint.ts writes them.
    await model.save(
      {
        save: (a) => {
          artifacts = a;
          return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
        },
      },
      { includeOptimizer: true },
    );
  } finally {
    tf.engine().endScope();
  }
  return artifacts!;
}

/**
 * Loads model and optimiser weights into a network built from the checkpoint's config.
 * (Rather than tf.loadLayersModel on the stored topology: the network is always ours, and
 * tfjs' LSTM deserialisation leaks the tensors network.ts builds inside tidy.)
 */
export async function restoreWeights(model: tf.LayersModel, checkpoint: CheckpointState): Promise<void> {
  const { weightData, weightSpecs } = checkpoint.artifacts;
  if (weightData === undefined || weightSpecs === undefined) throw new CheckpointError('checkpoint has no weights');
  const decoded = tf.io.decodeWeights(weightData, weightSpecs);
  try {
    const modelWeights: tf.NamedTensorMap = {};
    const optimizerWeights: Parameters<tf.Optimizer['setWeights']>[0] = [];
    for (const spec of weightSpecs) {
      const tensor = decoded[spec.name]!;
      if (spec.group === 'optimizer') optimizerWeights.push({ name: spec.name, tensor });
      else modelWeights[spec.name] = tensor;
    }
    // strict: every weight of the network must be present with its exact shape.
    model.loadWeights(modelWeights, true);
    await model.optimizer.setWeights(optimizerWeights);
    if (checkpoint.adamPowers !== null) restoreAdamPowers(model.optimizer, checkpoint.adamPowers);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/**
 * tfjs' AdamOptimizer keeps beta1^t and beta2^t in two (TypeScript-private) variables that
 * its getWeights/setWeights leave out; see AdamPowers for why they are saved.
 */
interface AdamInternals {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

/** Adam's beta1^t and beta2^t for a checkpoint; null when the optimiser is not Adam. */
export function readAdamPowers(optimizer: tf.Optimizer): AdamPowers | null {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamInternals;
  if (!(accBeta1 instanceof tf.Variable) || !(accBeta2 instanceof tf.Variable)) return null;
  return { beta1Power: accBeta1.dataSync()[0]!, beta2Power: accBeta2.dataSync()[0]! };
}

function restoreAdamPowers(optimizer: tf.Optimizer, powers: AdamPowers): void {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamInternals;
  if (!(accBeta1 instanceof tf.Variable) || !(accBeta2 instanceof tf.Variable)) {
    throw new CheckpointError('checkpoint holds Adam state but the restored optimiser is not Adam');
  }
  tf.tidy(() => {
    accBeta1.assign(tf.scalar(powers.beta1Power));
    accBeta2.assign(tf.scalar(powers.beta2Power));
  });
}
