/**
 * Compare-and-set removal of an agent's desired value, for rollbacks: a rollout removes the value it
 * wrote only while the key is still at the revision it read, so an operator's pin (or any other
 * write) made in between survives. `DesiredStateStore.remove` deletes whatever is there; this
 * deletes with the KV's `previousSeq` guard and nudges the agent like every desired-state change.
 * @module
 */
import type { KV } from '@nats-io/kv';
import {
  ErrorCode,
  InferMeshError,
  agentDesiredSubject,
  desiredModelKey,
  desiredStateBucket,
} from '@infermesh/protocols';
import { openRegistryKv, registryUnavailable } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Removes desired values with compare-and-set on the desired-state bucket. */
export class DesiredRemoval {
  readonly #connection: MeshConnection;
  readonly #kv: KV;

  private constructor(connection: MeshConnection, kv: KV) {
    this.#connection = connection;
    this.#kv = kv;
  }

  /** Opens (creating) the desired-state bucket. */
  static async open(connection: MeshConnection, replicas = 1): Promise<DesiredRemoval> {
    const kv = await openRegistryKv(
      connection,
      desiredStateBucket(),
      'InferMesh desired model versions per agent',
      {
        create: true,
        replicas,
      },
    );
    return new DesiredRemoval(connection, kv);
  }

  /**
   * Deletes `agentId`'s desired value of `model` only while the key is at `revision`. CONFLICT when
   * it changed meanwhile (left as it is), UNAVAILABLE when the bucket cannot be reached.
   */
  async removeIfAt(agentId: string, model: string, revision: number): Promise<void> {
    const key = desiredModelKey(agentId, model);
    try {
      await this.#kv.delete(key, { previousSeq: revision });
    } catch (cause) {
      let now: number | undefined;
      try {
        now = (await this.#kv.get(key))?.revision;
      } catch (readCause) {
        throw registryUnavailable('the desired-state bucket', readCause);
      }
      if (now !== revision) {
        throw new InferMeshError(
          ErrorCode.CONFLICT,
          `the desired version of ${model} on ${agentId} changed meanwhile; left as it is`,
          { cause, details: { revision: now ?? 0 } },
        );
      }
      throw registryUnavailable('the desired-state bucket', cause);
    }
    try {
      this.#connection.nc.publish(agentDesiredSubject(agentId));
    } catch (err) {
      this.#connection.logger.debug({ err, agentId }, 'could not nudge an agent');
    }
  }
}
