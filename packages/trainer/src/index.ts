/**
 * @infermesh/trainer: on-device training for federated learning. Generic over models whose
 * manifest names trainable initializers forming a dense head (MatMul/Gemm, Add, Relu, Sigmoid,
 * Tanh, Softmax): the frozen part runs in ONNX Runtime to featurise labelled examples (cached),
 * the head trains in TypeScript with mini-batch SGD on softmax cross-entropy (FedProx's proximal
 * term when asked), and the trained weights go back into the model with `exportModel`.
 * @module
 */
export { LocalTrainer } from './local-trainer.js';
export type {
  LocalTrainerOptions,
  StartingWeight,
  TrainOptions,
  TrainingResult,
  TrainingSettings,
} from './local-trainer.js';
export { SUPPORTED_HEAD_OPS, analyseHead } from './head-graph.js';
export type { HeadOp, HeadPlan } from './head-graph.js';
export { headProbabilities, lossAndGradients } from './head-network.js';
export type { BatchObjective, FeatureRow, HeadParameters, ObjectiveOptions } from './head-network.js';
export { DEFAULT_MAX_CACHED_FEATURES, FEATURISE_BATCH_SIZE, Featurizer } from './featurizer.js';
export { batchInputs, validateExample } from './example-tensors.js';
