/**
 * The model stage's public surface. Typical use by the runtime:
 *
 *   const backend = await selectBackend(config.model.backend);      // log backend.name/reason
 *   const saved = await loadLatestCheckpoint(dir);
 *   const learner = saved ? await PrequentialLearner.fromCheckpoint(saved, opts) : PrequentialLearner.create(opts);
 *   const { scores, modelVersion } = await learner.process(batch);  // per Arrow batch
 *   learner.evaluation();                                            // at metrics scrape time
 *   await saveCheckpoint(dir, await learner.checkpointState(tokenizerJson));
 *   learner.dispose();
 */
export { Backends, currentBackend, selectBackend } from './backend.js';
export type { BackendInfo, BackendName, RequestedBackend, SelectBackendOptions } from './backend.js';
export { CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, loadCheckpointDir, loadLatestCheckpoint, saveCheckpoint } from './checkpoint.js';
export type { AdamPowers, CheckpointState, SaveCheckpointOptions, SavedCheckpoint } from './checkpoint.js';
export { DECISION_THRESHOLD, OnlineEvaluator, predictedLabel } from './evaluation.js';
export type { EvaluationSnapshot, EvaluatorOptions, EvaluatorState } from './evaluation.js';
export { PrequentialLearner, labelledRows } from './learner.js';
export type { LearnerOptions, ProcessResult, ScoreResult } from './learner.js';
export { DEFAULT_NETWORK, buildNetwork, parameterCounts, resolveNetworkConfig } from './network.js';
export type { NetworkConfig } from './network.js';
