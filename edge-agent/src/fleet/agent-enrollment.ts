/**
 * Who the agent is in the fleet, decided once at start-up before anything else uses its id:
 * - an enrolled identity file: its id and labels, without contacting anyone (the token may be gone);
 * - no identity and an enrollment token: a new key pair is written (pending), the agent enrolls
 *   (retrying while NATS or the coordinator cannot be reached), and the answer is written;
 * - neither: the agent runs unenrolled under its configured id (development setups).
 * The returned config carries the enrolled id and labels, so every component (offload, sync,
 * heartbeat) knows the agent by that identity.
 * @module
 */
import type { Logger } from 'pino';
import { withoutCredentials } from '@infermesh/mesh-client';
import { hostnameId } from '@infermesh/config';
import { ErrorCode, InferMeshError } from '@infermesh/protocols';
import type { AgentHardware, Labels } from '@infermesh/protocols';
import type { AgentConfig } from '../config/agent-config.js';
import {
  createIdentity,
  defaultIdentityFile,
  isEnrolled,
  readIdentity,
  writeIdentity,
} from './agent-identity.js';
import type { EnrolledIdentity } from './agent-identity.js';
import { enrollWithCoordinator } from './enrollment-client.js';
import type { EnrollOptions } from './enrollment-client.js';

/** The id an agent gets when its config names none (see `agentConfigSchema`). */
const DEFAULT_AGENT_ID = hostnameId('agent');

/** What start-up decided. */
export type AgentFleetIdentity =
  | {
      readonly type: 'enrolled';
      readonly identity: EnrolledIdentity;
      readonly file: string;
      readonly justEnrolled: boolean;
    }
  | { readonly type: 'unenrolled' };

/** Options of {@link resolveAgentIdentity}. */
export interface ResolveIdentityOptions {
  readonly logger: Logger;
  readonly agentVersion?: string;
  readonly hardware?: AgentHardware;
  /** Stops an enrollment in progress (SIGTERM while still retrying). */
  readonly signal?: AbortSignal;
  /** Gives up enrolling after this long (ms); default: keep trying. */
  readonly enrollTimeoutMs?: number;
  /** Back-off settings, for tests. */
  readonly retry?: Pick<EnrollOptions, 'retryInitialMs' | 'retryMaxMs' | 'requestTimeoutMs'>;
}

/** The identity file of this config (configured, or next to the models directory). */
export function identityFileOf(config: AgentConfig): string {
  return config.identityFile ?? defaultIdentityFile(config.modelsDir);
}

/**
 * Reads or creates the agent's fleet identity, enrolling when it has a token and no identity yet.
 * Throws INVALID_INPUT when the configured id contradicts the enrolled one or an enrollment token
 * is given without NATS, and the coordinator's error when it refuses the token.
 */
export async function resolveAgentIdentity(
  config: AgentConfig,
  options: ResolveIdentityOptions,
): Promise<AgentFleetIdentity> {
  const log = options.logger.child({ component: 'agent.enrollment' });
  const file = identityFileOf(config);
  const stored = await readIdentity(file);
  if (stored && isEnrolled(stored)) {
    assertConfiguredId(config.id, stored.enrollment.agentId, file);
    if (config.enrollToken !== undefined) {
      log.warn(
        { identityFile: file },
        'already enrolled: the enrollment token is not used (remove it from the config)',
      );
    }
    return { type: 'enrolled', identity: stored, file, justEnrolled: false };
  }
  if (config.enrollToken === undefined) {
    if (stored) {
      throw new InferMeshError(
        ErrorCode.INVALID_INPUT,
        `identity file ${file} holds a key whose enrollment never completed: give an enrollment token (enrollToken, INFERMESH_ENROLL_TOKEN or --enroll-token) to finish it`,
      );
    }
    return { type: 'unenrolled' };
  }
  if (config.nats === undefined) {
    throw new InferMeshError(
      ErrorCode.INVALID_INPUT,
      'an enrollment token needs a NATS server to enroll with (nats, INFERMESH_NATS or --nats)',
    );
  }
  // The key is on disk before the request goes out: a crash after the coordinator accepted it
  // leaves this key, not an unknown one.
  const pending = stored ?? createIdentity();
  if (!stored) await writeIdentity(file, pending);
  log.info({ identityFile: file, nats: withoutCredentials(config.nats) }, 'enrolling with the coordinator');
  const answer = await enrollWithCoordinator({
    natsUrl: config.nats,
    token: config.enrollToken,
    identity: pending,
    logger: options.logger,
    agentVersion: options.agentVersion,
    hardware: options.hardware,
    signal: options.signal,
    timeoutMs: options.enrollTimeoutMs,
    ...options.retry,
  });
  assertConfiguredId(config.id, answer.agentId, file);
  const enrolled: EnrolledIdentity = {
    ...pending,
    enrollment: { agentId: answer.agentId, labels: answer.labels, enrolledAt: answer.enrolledAt },
  };
  await writeIdentity(file, enrolled);
  return { type: 'enrolled', identity: enrolled, file, justEnrolled: true };
}

/** The config the agent runs with: the enrolled id and labels when there is an identity. */
export function configWithIdentity(config: AgentConfig, fleet: AgentFleetIdentity): AgentConfig {
  if (fleet.type === 'unenrolled') return config;
  const labels: Labels = { ...config.labels, ...fleet.identity.enrollment.labels };
  return Object.freeze({ ...config, id: fleet.identity.enrollment.agentId, labels });
}

/** A configured id (other than the hostname default) must be the enrolled one. */
function assertConfiguredId(configured: string, enrolled: string, file: string): void {
  if (configured === enrolled || configured === DEFAULT_AGENT_ID) return;
  throw new InferMeshError(
    ErrorCode.INVALID_INPUT,
    `the configured agent id '${configured}' is not the enrolled id '${enrolled}' (identity file ${file}): remove the id setting, or use another identity file`,
  );
}
