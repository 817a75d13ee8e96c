/**
 * Real `infermesh agent` processes for the federated end-to-end tests: each holds one training
 * shard as its local training data file (JSON lines in the shared example format, given with
 * `INFERMESH_TRAINING_DATA=spam=<file>`), trusts the coordinator's publisher key, heartbeats every
 * 200 ms, and gets the base version pinned through the admin API; {@link FlAgents.ready} resolves
 * once every agent serves it and the coordinator's fleet registry sees it online and ready (the
 * clients a run can select).
 * @module
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FleetAgent, LabelledExample } from '@infermesh/protocols';
import { waitUntil } from '../harness/registry.js';
import { modelStatus, startAgentProcess } from './sync-support.js';
import type { AgentProcess } from './sync-support.js';
import type { FlMesh } from './federated-support.js';
import { FL_MODEL } from './federated-support.js';

/** Agents started at once (the machine has few cores; each loads ONNX Runtime). */
const START_BATCH = 5;

/** Writes examples as JSON lines, one `{"inputs":{...},"label":n}` per line. */
export async function writeExamplesFile(path: string, examples: readonly LabelledExample[]): Promise<void> {
  await writeFile(path, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

/** The agents of a test file. */
export interface FlAgents {
  readonly ids: readonly string[];
  readonly agents: readonly AgentProcess[];
  /** Pins `version` of the model to every running agent and waits until runs can select them. */
  ready(version: string, timeoutMs?: number): Promise<void>;
  /** Stops (SIGTERM) the agent at `index`; `ready` then leaves it out. */
  stop(index: number): Promise<void>;
  dispose(): Promise<void>;
}

/** Starts one agent per shard (`<prefix>-<i>`), each with its shard as training data. */
export async function startFlAgents(
  mesh: FlMesh,
  shards: readonly (readonly LabelledExample[])[],
  prefix = 'fl-agent',
): Promise<FlAgents> {
  const { publicKey } = (await mesh.admin.call('GET', '/publisher-key')) as { publicKey: string };
  const dir = await mkdtemp(join(tmpdir(), 'im-fl-agents-'));
  const ids = shards.map((_, i) => `${prefix}-${i}`);
  const agents: AgentProcess[] = [];
  const stopped = new Set<number>();
  const dispose = async (): Promise<void> => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let first = 0; first < ids.length; first += START_BATCH) {
      const batch = ids.slice(first, first + START_BATCH);
      agents.push(
        ...(await Promise.all(
          batch.map(async (id, k) => {
            const dataFile = join(dir, `${id}.jsonl`);
            await writeExamplesFile(dataFile, shards[first + k]!);
            const modelsDir = await mkdtemp(join(dir, `${id}-models-`));
            return startAgentProcess({
              id,
              modelsDir,
              natsUrl: mesh.nats.url,
              publicKey,
              env: { INFERMESH_TRAINING_DATA: `${FL_MODEL}=${dataFile}` },
            });
          }),
        )),
      );
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  const running = (): number[] => ids.map((_, i) => i).filter((i) => !stopped.has(i));
  return {
    ids,
    agents,
    async ready(version, timeoutMs = 30_000) {
      for (const i of running()) await mesh.admin.pin(ids[i]!, FL_MODEL, version);
      await Promise.all(
        running().map(async (i) => {
          const id = ids[i]!;
          await waitUntil(
            async () => {
              const status = await modelStatus(agents[i]!.url, FL_MODEL);
              return status?.servingVersion === version && status.sync?.state === 'synced';
            },
            timeoutMs,
            `${id} to serve ${FL_MODEL}@${version}`,
            100,
          );
          await waitUntil(
            async () => {
              const agent = (await mesh.admin.call('GET', `/fleet/agents/${id}`)) as FleetAgent;
              return (
                agent.presence === 'online' &&
                agent.heartbeat?.models.some(
                  (m) => m.name === FL_MODEL && m.version === version && m.state === 'ready',
                )
              );
            },
            timeoutMs,
            `the fleet registry to see ${id} serve ${FL_MODEL}@${version}`,
            100,
          );
        }),
      );
    },
    async stop(index) {
      stopped.add(index);
      await agents[index]!.process.stop();
    },
    dispose,
  };
}
