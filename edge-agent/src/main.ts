/**
 * Entry for `infermesh agent`: parse the configuration once, settle the agent's fleet identity
 * (enrolling with a one-time token on first start), start the agent, stop it gracefully on
 * SIGTERM/SIGINT. Exits non-zero on an invalid configuration, listing every problem, and on a
 * refused enrollment, with the coordinator's message. `enrollOnly` enrolls and returns (installers).
 * @module
 */
import pino from 'pino';
import { ErrorCode, InferMeshError } from '@infermesh/protocols';
import { loadAgentConfig } from './config/agent-config.js';
import type { AgentConfigInput } from './config/agent-config.js';
import { AGENT_VERSION, Agent } from './agent.js';
import { agentHardware } from './heartbeat/heartbeat-builder.js';
import { configWithIdentity, resolveAgentIdentity } from './fleet/agent-enrollment.js';
import { createMessageSigner } from './fleet/message-signer.js';

export interface RunAgentOptions {
  configFile?: string | undefined;
  flags: Partial<Record<keyof AgentConfigInput, unknown>>;
  env: Readonly<Record<string, string | undefined>>;
  /** Enroll (when not enrolled yet), write the identity file, and return without serving. */
  enrollOnly?: boolean | undefined;
  /** With `enrollOnly`: give up enrolling after this long (ms). */
  enrollTimeoutMs?: number | undefined;
}

/** Runs the agent until a termination signal; resolves when it has stopped. */
export async function runAgentProcess(options: RunAgentOptions): Promise<void> {
  const loaded = await loadAgentConfig({
    configFile: options.configFile,
    flags: options.flags,
    env: options.env,
  });
  const bootLogger = pino({ level: loaded.logLevel });
  // A signal while enrollment still waits for the coordinator ends the wait.
  const enrolling = new AbortController();
  const abortEnrollment = (): void => enrolling.abort();
  process.once('SIGTERM', abortEnrollment);
  process.once('SIGINT', abortEnrollment);
  let fleet;
  try {
    fleet = await resolveAgentIdentity(loaded, {
      logger: bootLogger,
      agentVersion: AGENT_VERSION,
      hardware: agentHardware(),
      signal: enrolling.signal,
      ...(options.enrollTimeoutMs !== undefined ? { enrollTimeoutMs: options.enrollTimeoutMs } : {}),
    });
  } finally {
    process.off('SIGTERM', abortEnrollment);
    process.off('SIGINT', abortEnrollment);
  }
  const config = configWithIdentity(loaded, fleet);
  const logger = pino({ level: config.logLevel, base: { agentId: config.id } });
  if (options.enrollOnly) {
    if (fleet.type === 'unenrolled') {
      throw new InferMeshError(
        ErrorCode.INVALID_INPUT,
        '--enroll-only needs an enrollment token (enrollToken, INFERMESH_ENROLL_TOKEN or --enroll-token)',
      );
    }
    logger.info(
      {
        identityFile: fleet.file,
        labels: fleet.identity.enrollment.labels,
        justEnrolled: fleet.justEnrolled,
      },
      fleet.justEnrolled ? 'enrolled; identity written' : 'already enrolled',
    );
    return;
  }
  if (enrolling.signal.aborted) return;
  const agent = new Agent(
    config,
    logger,
    fleet.type === 'enrolled' ? { signer: createMessageSigner(fleet.identity) } : {},
  );
  await agent.start();
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'signal received');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      void agent.stop().then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
