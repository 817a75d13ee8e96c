/**
 * @infermesh/federated: the math of federated learning, usable on its own. Aggregation strategies
 * that follow the published algorithms (`createStrategy`: FedAvg, FedProx, FedAvgM, FedAdam,
 * FedYogi, FedAdagrad, FedMedian, trimmed mean, Krum, Multi-Krum, Bulyan), streaming aggregation
 * in O(model size) memory, differential privacy (clipping, Gaussian noise, adaptive clip norm),
 * asynchronous buffered aggregation (FedBuff) and secure aggregation (pairwise masks with dropout
 * recovery).
 * @module
 */
export type { ClientResult, Layers, NumericLayers, RoundAggregator } from './types.js';
export type {
  BufferedOptions,
  BufferedStrategy,
  BufferedStrategyName,
  ByzantineOptions,
  FedAvgMOptions,
  FedOptOptions,
  FedProxOptions,
  MultiKrumOptions,
  ServerState,
  Strategy,
  StrategyFor,
  StrategyName,
  StrategyOptions,
  StrategyOptionsByName,
  StreamingStrategy,
  StreamingStrategyName,
  TrimmedMeanOptions,
} from './strategy.js';
export { BUFFERED_STRATEGY_NAMES, STRATEGY_NAMES, STREAMING_STRATEGY_NAMES } from './strategy.js';
export { FEDAVGM_DEFAULTS, FEDOPT_DEFAULTS, createStrategy } from './create-strategy.js';
export { DEFAULT_MAX_CLIENTS } from './strategies/buffered-strategy.js';
export { DEFAULT_TRIM_BETA } from './strategies/trimmed-mean.js';
export {
  DEFAULT_PROXIMAL_MU,
  addProximalGradient,
  proximalGradient,
  proximalTerm,
} from './strategies/fedprox.js';
export type { StreamingAggregator } from './streaming.js';
export { createStreamingAggregator } from './streaming.js';
export {
  cloneLayers,
  flattenLayers,
  l2Norm,
  parameterCount,
  subtractLayers,
  unflattenLayers,
  validateModel,
  validateResult,
} from './vector.js';

export type { GaussianRandom, UniformRandom } from './privacy/random.js';
export { createCryptoRandom, createGaussian, createSeededRandom } from './privacy/random.js';
export { addGaussianNoise, meanNoiseStddev } from './privacy/gaussian.js';
export type { ClipResult, PrivatizeOptions } from './privacy/clipping.js';
export { clipScale, clipUpdate, privatizeUpdate } from './privacy/clipping.js';
export type { AdaptiveClipOptions } from './privacy/adaptive-clip.js';
export {
  ADAPTIVE_CLIP_DEFAULTS,
  AdaptiveClipNorm,
  COUNT_NOISE_CLIENTS_DIVISOR,
  adaptiveNoiseMultiplier,
} from './privacy/adaptive-clip.js';
export type {
  DpClientResult,
  DpOptions,
  DpRoundAggregator,
  DpRoundReport,
  DpState,
  DpStrategy,
} from './privacy/dp-strategy.js';
export { createDpStrategy } from './privacy/dp-strategy.js';

export type { AsyncUpdate, FedBuff, FedBuffEvent, FedBuffOptions } from './async/fedbuff.js';
export { DEFAULT_FEDBUFF_BUFFER_SIZE, createFedBuff, inverseSqrtStaleness } from './async/fedbuff.js';

export type {
  AdvertisedKeys,
  EncryptedShare,
  MaskedInput,
  RevealedShare,
  SecureAggregationConfig,
  UnmaskRequest,
  UnmaskResponse,
} from './secure/messages.js';
export { SecureAggregationClient } from './secure/client.js';
export type { SecureAggregationPhase, SecureAggregationResult } from './secure/server.js';
export { SecureAggregator } from './secure/server.js';
export { DEFAULT_FRACTIONAL_BITS, dequantize, maxAbsInput, quantize } from './secure/fixed-point.js';
