/**
 * @infermesh/mesh-client: the NATS side of InferMesh that edge and cloud share — mesh connections
 * that fail fast while disconnected, the offload client (deadlines, retries, coded errors), payload
 * staging through JetStream for messages over the server's max_payload, the reply conventions of
 * the data plane, model-metadata requests, and the model registry's stores as both sides read them
 * (manifests, artifacts by sha256, desired state per agent, manifest signatures).
 * @module
 */
export type { ConnectMeshOptions, MeshConnection, MeshConnectionState } from './connection.js';
export {
  connectMesh,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RECONNECT_TIME_WAIT_MS,
  withoutCredentials,
} from './connection.js';
export type { InferOptions, MeshClientOptions, MeshClientStats, MetadataOptions } from './mesh-client.js';
export {
  DEFAULT_METADATA_TIMEOUT_MS,
  DEFAULT_MIN_ATTEMPT_TIMEOUT_MS,
  DEFAULT_RETRY_BACKOFF_MS,
  MAX_RETRY_BACKOFF_MS,
  MeshClient,
} from './mesh-client.js';
export type { PayloadStagingOptions } from './staging.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_STAGING_TTL_MS,
  MESSAGE_HEADROOM_BYTES,
  PayloadStaging,
  formatBytes,
  overLimit,
  readStagedInputs,
  readStagedTensors,
  stageOutputsIfLarge,
  stageTensors,
  tensorBytes,
} from './staging.js';
export type { RequestFailure } from './replies.js';
export {
  MESH_HEADERS,
  classifyRequestFailure,
  errorHeaders,
  publishError,
  replyError,
  toMsgHdrs,
} from './replies.js';
export type { WaitBounds } from './guard.js';
export { abortError, bounded, boundedSleep, deadlineError } from './guard.js';
export type { RegistryStoreOptions } from './registry-buckets.js';
export {
  listKeys,
  jetstreamCall,
  openRegistryKv,
  openRegistryObjectStore,
  registryUnavailable,
} from './registry-buckets.js';
export type { PublisherKeyPair, UnsignedManifest } from './manifest-signature.js';
export {
  generatePublisherKeyPair,
  integrityError,
  parsePrivateKey,
  parsePublicKey,
  privateKeyToPem,
  publicKeyToBase64,
  signManifest,
  verifyManifestSignature,
} from './manifest-signature.js';
export type { ArtifactPutResult, ArtifactReadOptions, StoredArtifact } from './artifact-store.js';
export type { ArtifactPutOptions, ArtifactSource } from './artifact-source.js';
export {
  ArtifactStore,
  DEFAULT_ARTIFACT_CHUNK_BYTES,
  DEFAULT_ARTIFACT_IDLE_TIMEOUT_MS,
  artifactNotFound,
  objectStoreDigest,
} from './artifact-store.js';
export type { ArtifactDownloadOptions, ArtifactDownloadResult } from './artifact-download.js';
export { PARTIAL_SUFFIX, downloadArtifactToFile } from './artifact-download.js';
export type { ManifestChange, ManifestWatchOptions } from './manifest-store.js';
export { ManifestStore } from './manifest-store.js';
export type { DesiredEntry, DesiredStateChange, DesiredWatchOptions } from './desired-state.js';
export { DesiredStateStore } from './desired-state.js';
