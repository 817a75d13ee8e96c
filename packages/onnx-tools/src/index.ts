/**
 * @infermesh/onnx-tools: read, write, inspect, build and quantize (int8) ONNX models.
 * @module
 */
export { onnx, toNumber } from './onnx-proto.js';
export type { OnnxTypes } from './onnx-proto.js';
export * from './model-io.js';
export * from './graph-builder.js';
export { onnxTypeName, datatypeName, onnxByteLength } from './onnx-datatypes.js';
export { inspectModel, inspectModelIo, inspectValueInfo } from './inspect.js';
export type { InspectedDim, InspectedValue, InitializerStats, ModelInspection } from './inspect.js';
export { formatInspection, formatShape, formatBytes } from './format-inspection.js';
export type { BuiltModel } from './builders/built-model.js';
export { mulberry32, fillUniform } from './builders/prng.js';
export type { Prng } from './builders/prng.js';
export {
  buildMlpClassifier,
  MLP_PRESETS,
  MLP_INPUT_NAME,
  MLP_LOGITS_NAME,
  MLP_PROBABILITIES_NAME,
} from './builders/mlp.js';
export type { MlpClassifier, MlpClassifierOptions } from './builders/mlp.js';
export { buildMultiIoModel, buildScalarInt64Model, buildIdentityModel } from './builders/signature-models.js';
export * from './quantize/index.js';
export { readFloatInitializers, replaceFloatInitializers } from './initializers.js';
export type { FloatInitializer } from './initializers.js';
