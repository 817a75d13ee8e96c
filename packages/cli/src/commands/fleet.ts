/**
 * `infermesh fleet list|show|label|deenroll|pin|unpin|desired`: the fleet registry (agents, their
 * presence and labels) and each agent's desired model versions, through the coordinator's admin
 * API. Pinning is an operator's override that rollouts leave alone.
 * @module
 */
import type { Command } from 'commander';
import { AGENT_PRESENCE, ErrorCode, isInferMeshError, parseOrThrow } from '@infermesh/protocols';
import { z } from 'zod';
import type { DesiredStateResponse, FleetAgent } from '@infermesh/protocols';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { deenrollAgent, getAgent, listAgents, patchLabels } from '../fleet-client.js';
import { formatLabels, parseLabelEdits, parseLabelList } from './cli-values.js';
import { parseModelRef, withAdminFlags } from './models.js';

function printDesired(agent: string, state: DesiredStateResponse): void {
  if (state.models.length === 0) console.log(`${agent}: no desired models`);
  for (const m of state.models) {
    console.log(`${m.model}@${m.version}  ${m.source} by ${m.setBy} at ${new Date(m.at).toISOString()}`);
  }
}

function agentLine(a: FleetAgent): string {
  const seen = a.lastSeenAt === undefined ? 'never seen' : `seen ${new Date(a.lastSeenAt).toISOString()}`;
  const models = (a.heartbeat?.models ?? []).map((m) => `${m.name}@${m.version}:${m.state}`).join(' ');
  return `${a.agentId}  ${a.presence}  ${a.enrolled ? 'enrolled' : 'unenrolled'}  ${formatLabels(a.labels) || '-'}  ${seen}${models ? `  ${models}` : ''}`;
}

/** The agent's fleet view, or undefined when the registry does not know it. */
async function agentOrNothing(client: AdminClient, agentId: string): Promise<FleetAgent | undefined> {
  try {
    return await getAgent(client, agentId);
  } catch (err) {
    if (isInferMeshError(err) && err.code === ErrorCode.NOT_FOUND) return undefined;
    throw err;
  }
}

/** Registers `infermesh fleet`. */
export function registerFleet(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('the fleet: list, show, label and de-enroll agents; pin, unpin and show desired versions');
  withAdminFlags(
    fleet
      .command('list')
      .description('list agents (sorted by id), filtered by labels and presence')
      .option('--selector <labels>', 'labels every agent must have: site=eu,hw=jetson')
      .option('--presence <list>', `comma-separated: ${AGENT_PRESENCE.join(', ')}`)
      .option('--limit <n>', 'agents per page (1-1000)', '100')
      .option('--all', 'follow every page')
      .option('--json', 'print JSON'),
  ).action(
    async (
      flags: AdminConnectionFlags & {
        selector?: string;
        presence?: string;
        limit: string;
        all?: boolean;
        json?: boolean;
      },
    ) => {
      const client = AdminClient.fromFlags(flags);
      const presence =
        flags.presence === undefined
          ? undefined
          : parseOrThrow(z.array(z.enum(AGENT_PRESENCE)), flags.presence.split(','), '--presence');
      const query = {
        ...(flags.selector === undefined ? {} : { selector: parseLabelList(flags.selector) }),
        ...(presence === undefined ? {} : { presence }),
        limit: Number(flags.limit),
      };
      const agents: FleetAgent[] = [];
      let page = await listAgents(client, query);
      agents.push(...page.agents);
      while (flags.all && page.nextCursor !== undefined) {
        page = await listAgents(client, { ...query, cursor: page.nextCursor });
        agents.push(...page.agents);
      }
      if (flags.json) {
        console.log(JSON.stringify({ agents, total: page.total, nextCursor: page.nextCursor }, null, 2));
        return;
      }
      for (const agent of agents) console.log(agentLine(agent));
      console.log(
        `${agents.length} of ${page.total} agents${page.nextCursor ? ` (more: --all, or the API's cursor ${page.nextCursor})` : ''}`,
      );
    },
  );
  withAdminFlags(
    fleet
      .command('show')
      .description('an agent: presence, labels, last heartbeat, and its desired model versions')
      .argument('<agent>', 'agent id')
      .option('--json', 'print JSON'),
  ).action(async (agent: string, flags: AdminConnectionFlags & { json?: boolean }) => {
    const client = AdminClient.fromFlags(flags);
    const [view, desired] = await Promise.all([agentOrNothing(client, agent), client.desired(agent)]);
    if (flags.json) {
      console.log(JSON.stringify({ agent: view ?? null, desired: desired.models }, null, 2));
      return;
    }
    console.log(
      view ? agentLine(view) : `${agent}: not in the fleet registry (never enrolled or heard from)`,
    );
    printDesired(agent, desired);
  });
  withAdminFlags(
    fleet
      .command('label')
      .description("set (key=value) or remove (key-) an enrolled agent's labels")
      .argument('<agent>', 'agent id')
      .argument('<edits...>', 'key=value or key-'),
  ).action(async (agent: string, edits: string[], flags: AdminConnectionFlags) => {
    const record = await patchLabels(AdminClient.fromFlags(flags), agent, parseLabelEdits(edits));
    console.log(`${agent}: ${formatLabels(record.labels) || 'no labels'}`);
  });
  withAdminFlags(
    fleet.command('deenroll').description('remove an agent from the fleet').argument('<agent>', 'agent id'),
  ).action(async (agent: string, flags: AdminConnectionFlags) => {
    await deenrollAgent(AdminClient.fromFlags(flags), agent);
    console.log(`de-enrolled ${agent}`);
  });
  withAdminFlags(
    fleet
      .command('pin')
      .description('make an agent run a model version')
      .argument('<agent>', 'agent id')
      .argument('<model>', 'NAME@VERSION'),
  ).action(async (agent: string, ref: string, flags: AdminConnectionFlags) => {
    const { name, version } = parseModelRef(ref, true);
    const desired = await AdminClient.fromFlags(flags).pin(agent, name, version as string);
    console.log(`pinned ${agent} to ${desired.model}@${desired.version}`);
  });
  withAdminFlags(
    fleet
      .command('unpin')
      .description("remove an agent's pin of a model")
      .argument('<agent>', 'agent id')
      .argument('<model>', 'NAME'),
  ).action(async (agent: string, model: string, flags: AdminConnectionFlags) => {
    const { name } = parseModelRef(model, false);
    await AdminClient.fromFlags(flags).unpin(agent, name);
    console.log(`unpinned ${name} on ${agent}`);
  });
  withAdminFlags(
    fleet
      .command('desired')
      .description("an agent's desired model versions")
      .argument('<agent>', 'agent id')
      .option('--json', 'print JSON'),
  ).action(async (agent: string, flags: AdminConnectionFlags & { json?: boolean }) => {
    const state = await AdminClient.fromFlags(flags).desired(agent);
    if (flags.json) console.log(JSON.stringify(state, null, 2));
    else printDesired(agent, state);
  });
}
