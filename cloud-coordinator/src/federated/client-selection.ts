/**
 * Which agents take part in a round, and handing them their tasks. Eligible: online agents whose
 * last heartbeat lists the run's model as loaded and ready. Selection is a seeded shuffle of the
 * eligible ids (sorted first, so the same fleet, seed, round and attempt give the same clients:
 * runs are reproducible) cut to `clientsPerRound`. Each selected agent gets its task by request
 * on `flRoundTaskSubject(agentId)` and must answer at once with the number of examples it will
 * train on; no answer, an error or a refusal counts as not accepted.
 * @module
 */
import type { Logger } from 'pino';
import {
  decode,
  encode,
  flRoundTaskSchema,
  flRoundTaskSubject,
  flTaskReplySchema,
} from '@infermesh/protocols';
import type { AgentPresence, FleetAgent, FlRoundTask, Labels } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import { mulberry32 } from '@infermesh/onnx-tools';
import type { UpdateSigners } from './update-validation.js';

/** How long an agent has to answer a task (it answers before training). */
export const DEFAULT_TASK_REPLY_TIMEOUT_MS = 3_000;

/** What the rounds read of the fleet registry: the agents, and who signs updates. */
export interface FleetView extends UpdateSigners {
  list(query?: { selector?: Labels; presence?: readonly AgentPresence[] }): FleetAgent[];
}

/** Online agents that serve `model` (any version) and report it ready, sorted by id. */
export function eligibleAgents(fleet: FleetView, model: string): string[] {
  return fleet
    .list({ presence: ['online'] })
    .filter((a) => a.heartbeat?.models.some((m) => m.name === model && m.state === 'ready') ?? false)
    .map((a) => a.agentId)
    .sort();
}

/** Up to `count` of `candidates`, chosen by a shuffle seeded with (seed, round, attempt). */
export function selectClients(
  candidates: readonly string[],
  count: number,
  seed: number,
  round: number,
  attempt: number,
): string[] {
  const random = mulberry32((seed ^ Math.imul(round, 0x9e3779b1) ^ Math.imul(attempt, 0x85ebca6b)) >>> 0);
  const order = [...candidates].sort();
  for (let i = order.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, count);
}

/** An agent that accepted its task, with the example count it announced. */
export interface AcceptedClient {
  readonly agentId: string;
  readonly examples: number;
}

/**
 * Sends `task` (with each agent's own part) to the agents; resolves with those that accepted and
 * the example counts they announced, in `agents` order.
 */
export async function sendTasks(
  connection: MeshConnection,
  agents: readonly string[],
  task: (agentId: string) => FlRoundTask,
  timeoutMs: number,
  logger: Logger,
): Promise<AcceptedClient[]> {
  const answers = await Promise.all(
    agents.map(async (agentId): Promise<AcceptedClient | undefined> => {
      try {
        const reply = await connection.nc.request(
          flRoundTaskSubject(agentId),
          encode(flRoundTaskSchema, task(agentId), 'round task'),
          { timeout: timeoutMs },
        );
        const answer = decode(flTaskReplySchema, reply.data, 'task reply');
        if (!answer.accepted) logger.info({ agentId, reason: answer.reason }, 'agent refused the round task');
        return answer.accepted ? { agentId, examples: answer.examples } : undefined;
      } catch (err) {
        logger.info({ agentId, err: (err as Error).message }, 'agent did not take the round task');
        return undefined;
      }
    }),
  );
  return answers.filter((a): a is AcceptedClient => a !== undefined);
}
