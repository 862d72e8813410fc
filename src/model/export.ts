/**
 * Export of a checkpoint for Keras.
 *
 * Keras 3 cannot read the tfjs layers format, and it cannot be handed a `.keras` file we
 * write either: its weights live in HDF5 (`model.weights.h5`), which Node cannot write
 * here, and the alternative `model.weights.npz` store in Keras 3.15 fails to load even
 * the files Keras itself writes ("Object arrays cannot be loaded when allow_pickle=False",
 * measured with the project venv). So an export is a directory Keras is one command away
 * from:
 *
 *   model.json      tfjs layers format: topology with the STOCK layer classes (our fused
 *                   LSTM is a class Keras does not know) and the standard weightsManifest
 *   weights.bin     the model weights (no optimiser state), float32, manifest order
 *   tokenizer.json  what Keras' `tokenizer.to_json()` writes (tf_keras' tokenizer_from_json
 *                   reads it)
 *   load_keras.py   scripts/keras_interop.py: rebuilds the network in Keras 3 from
 *                   model.json, loads weights.bin with numpy and saves `model.keras`
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.js';
import { stateFromJSON, stateToKerasJSON } from '../text/tokenizer-json.js';
import type { CheckpointState } from './checkpoint.js';
import { buildNetwork, resolveNetworkConfig } from './network.js';

export const ExportFormats = { KERAS: 'keras' } as const;
export type ExportFormat = (typeof ExportFormats)[keyof typeof ExportFormats];

export const ExportFiles = {
  MODEL: 'model.json',
  WEIGHTS: 'weights.bin',
  TOKENIZER: 'tokenizer.json',
  LOADER: 'load_keras.py',
} as const;

/** The Python template copied to `load_keras.py` (kept in the repository's scripts/). */
export const KERAS_INTEROP_SCRIPT = new URL('../../../scripts/keras_interop.py', import.meta.url);

export interface ExportResult {
  outDir: string;
  files: string[];
  modelVersion: number;
  /** Null when the checkpoint holds no tokenizer. */
  tokenizerWords: number | null;
}

/** Writes the export directory for `checkpoint` (see the file comment). */
export async function exportKeras(checkpoint: CheckpointState, outDir: string): Promise<ExportResult> {
  const { modelJson, weights } = await stockArtifacts(checkpoint);
  const tokenizer = checkpoint.tokenizer === null ? null : stateFromJSON(checkpoint.tokenizer);
  const template = await readFile(KERAS_INTEROP_SCRIPT, 'utf8');

  const payload: [string, string | Uint8Array][] = [
    [ExportFiles.MODEL, JSON.stringify(modelJson)],
    [ExportFiles.WEIGHTS, weights],
    [ExportFiles.LOADER, loaderScript(template, checkpoint)],
  ];
  if (tokenizer !== null) payload.push([ExportFiles.TOKENIZER, stateToKerasJSON(tokenizer)]);

  try {
    await mkdir(outDir, { recursive: true });
  } catch (cause) {
    throw new CheckpointError(`cannot create the export directory ${outDir}: ${String(cause)}`, { cause });
  }
  // Each file is written beside, then renamed: a reader never sees half a file.
  for (const [name, data] of payload) {
    const file = path.join(outDir, name);
    const temp = `${file}.${process.pid}.tmp`;
    try {
      await writeFile(temp, data);
      await rename(temp, file);
    } catch (cause) {
      await rm(temp, { force: true });
      throw new CheckpointError(`cannot write ${file}: ${String(cause)}`, { cause });
    }
  }
  return {
    outDir,
    files: payload.map(([name]) => name),
    modelVersion: checkpoint.modelVersion,
    tokenizerWords: tokenizer === null ? null : tokenizer.wordIndex.length,
  };
}

/**
 * The checkpoint's model weights in a stock-layer network, saved through an in-memory
 * IOHandler: model.json (tfjs `ModelJSON`) and the weight bytes it describes.
 */
export async function stockArtifacts(checkpoint: CheckpointState): Promise<{ modelJson: tf.io.ModelJSON; weights: Uint8Array }> {
  const { weightData, weightSpecs } = checkpoint.artifacts;
  if (weightData === undefined || weightSpecs === undefined) throw new CheckpointError('checkpoint has no weights');
  // The seed only picks the initial weights, which are all replaced below.
  const network = resolveNetworkConfig({ ...checkpoint.network, lstm: 'stock', seed: 0 }, 'checkpoint.network');
  const model = buildNetwork(network);
  let artifacts: tf.io.ModelArtifacts | undefined;
  const decoded = tf.io.decodeWeights(weightData, weightSpecs);
  try {
    const modelWeights: tf.NamedTensorMap = {};
    for (const spec of weightSpecs) if (spec.group !== 'optimizer') modelWeights[spec.name] = decoded[spec.name]!;
    try {
      // strict: every weight of the network must be in the checkpoint with its exact shape.
      model.loadWeights(modelWeights, true);
    } catch (cause) {
      throw new CheckpointError(`checkpoint weights do not fit its network: ${String(cause)}`, { cause });
    }
    await model.save({
      save: (a) => {
        artifacts = a;
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
      },
    });
  } finally {
    tf.dispose(Object.values(decoded));
    model.optimizer.dispose();
    model.dispose();
  }
  const a = artifacts!;
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData));
  const modelJson: tf.io.ModelJSON = {
    modelTopology: a.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: a.format ?? 'layers-model',
    generatedBy: a.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: `textstream model export (checkpoint model version ${checkpoint.modelVersion})`,
    weightsManifest: [{ paths: [`./${ExportFiles.WEIGHTS}`], weights: a.weightSpecs! }],
  };
  if (a.trainingConfig !== undefined) modelJson.trainingConfig = a.trainingConfig;
  return { modelJson, weights };
}

/** The template with a header line saying where this export came from. */
function loaderScript(template: string, checkpoint: CheckpointState): string {
  const marker = '# @@EXPORT_INFO@@';
  const info = `# Exported by textstream: checkpoint model version ${checkpoint.modelVersion}, rows seen ${checkpoint.rowsSeen}.`;
  return template.includes(marker) ? template.replace(marker, info) : template;
}

