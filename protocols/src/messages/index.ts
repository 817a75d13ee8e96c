/**
 * Every NATS message schema of the mesh, one file per concern.
 * @module
 */
export * from './primitives.js';
export * from './model-ref.js';
export * from './inference.js';
export * from './worker-load.js';
export * from './agent-heartbeat.js';
export * from './model-manifest.js';
export * from './model-metadata.js';
export * from './error-body.js';
export * from './registry.js';
export * from './local-manifest.js';
export * from './fleet.js';
export * from './federated.js';
export * from './feedback.js';
export * from './federated-run.js';
export * from './rollout.js';
export * from './rollout-agents.js';
export * from './lease.js';
