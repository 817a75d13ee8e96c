/**
 * The CLI's client of the fleet administration routes of the admin API: agents (list, show,
 * labels), enrollment tokens, users and the audit log, each answer validated by the protocols'
 * schemas. Built on `AdminClient.request/send`.
 * @module
 */
import {
  auditEventListSchema,
  createEnrollmentTokenResponseSchema,
  createUserResponseSchema,
  enrollmentTokenListSchema,
  fleetAgentListSchema,
  fleetAgentSchema,
  fleetRecordSchema,
  userListSchema,
} from '@infermesh/protocols';
import type {
  AgentPresence,
  AuditEventList,
  CreateEnrollmentTokenResponse,
  CreateUserResponse,
  EnrollmentTokenList,
  FleetAgent,
  FleetAgentList,
  FleetRecord,
  Labels,
  LabelsPatch,
  Role,
  UserList,
} from '@infermesh/protocols';
import type { AdminClient } from './admin-client.js';

const segment = (value: string): string => encodeURIComponent(value);

/** A query string from the defined entries. */
function queryOf(entries: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(entries)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** What `listAgents` asks for. */
export interface AgentListQuery {
  selector?: Labels;
  presence?: readonly AgentPresence[];
  limit?: number;
  cursor?: string;
}

/** One page of agents. */
export function listAgents(client: AdminClient, query: AgentListQuery = {}): Promise<FleetAgentList> {
  const selector = query.selector
    ? Object.entries(query.selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')
    : undefined;
  const path = `/fleet/agents${queryOf({
    selector: selector === '' ? undefined : selector,
    presence: query.presence?.join(','),
    limit: query.limit,
    cursor: query.cursor,
  })}`;
  return client.request('GET', path, fleetAgentListSchema);
}

/** One agent. */
export function getAgent(client: AdminClient, agentId: string): Promise<FleetAgent> {
  return client.request('GET', `/fleet/agents/${segment(agentId)}`, fleetAgentSchema);
}

/** Sets (string) or removes (null) labels of an enrolled agent. */
export function patchLabels(client: AdminClient, agentId: string, patch: LabelsPatch): Promise<FleetRecord> {
  return client.request('PATCH', `/fleet/agents/${segment(agentId)}/labels`, fleetRecordSchema, patch);
}

/** De-enrolls an agent. */
export function deenrollAgent(client: AdminClient, agentId: string): Promise<void> {
  return client.send('DELETE', `/fleet/agents/${segment(agentId)}`);
}

/** Creates a one-time enrollment token. */
export function createEnrollmentToken(
  client: AdminClient,
  labels: Labels,
  ttlMs: number,
): Promise<CreateEnrollmentTokenResponse> {
  return client.request('POST', '/tokens', createEnrollmentTokenResponseSchema, { labels, ttlMs });
}

/** Every enrollment token (no secrets). */
export function listEnrollmentTokens(client: AdminClient): Promise<EnrollmentTokenList> {
  return client.request('GET', '/tokens', enrollmentTokenListSchema);
}

/** Deletes an enrollment token. */
export function deleteEnrollmentToken(client: AdminClient, id: string): Promise<void> {
  return client.send('DELETE', `/tokens/${segment(id)}`);
}

/** Creates a user; the answer holds its API token. */
export function createUser(
  client: AdminClient,
  name: string,
  role: Role,
  ttlMs?: number,
): Promise<CreateUserResponse> {
  return client.request('POST', '/users', createUserResponseSchema, {
    name,
    role,
    ...(ttlMs === undefined ? {} : { ttlMs }),
  });
}

/** Every user (no secrets). */
export function listUsers(client: AdminClient): Promise<UserList> {
  return client.request('GET', '/users', userListSchema);
}

/** Revokes a user's API token. */
export function revokeUser(client: AdminClient, name: string): Promise<void> {
  return client.send('DELETE', `/users/${segment(name)}`);
}

/** Audit events (oldest first). */
export function readAudit(
  client: AdminClient,
  query: { limit?: number; since?: number; actor?: string; action?: string } = {},
): Promise<AuditEventList> {
  return client.request('GET', `/audit${queryOf(query)}`, auditEventListSchema);
}
