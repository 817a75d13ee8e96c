/**
 * Fleet contracts (DESIGN.md section 8): enrollment of agents with one-time tokens, the fleet
 * record of each enrolled agent, the fleet registry's view of an agent, admin API users and roles,
 * and audit events.
 *
 * Storage layout, for everyone who reads it directly:
 * - `enrollmentTokensBucket()` (KV): key = token id, value an {@link EnrollmentTokenRecord} (JSON).
 *   The secret is never stored, only its sha256. A token is used once: the coordinator that
 *   accepts it marks it used with a compare-and-set on the revision, so two agents presenting the
 *   same token concurrently cannot both enroll.
 * - `fleetBucket()` (KV): key = agent id, value a {@link FleetRecord} (JSON): identity and labels.
 *   Operators change labels there (through the admin API); heartbeats never write it.
 * - `heartbeatsStream()`: captures `allAgentHeartbeatsSubject()` and keeps the last heartbeat per
 *   subject (one per agent). The fleet registry rebuilds its view from it after a restart.
 * - `usersBucket()` (KV): key = user id, value a {@link UserRecord} (JSON, the token's sha256).
 * - `auditStream()`: captures `auditSubject()`; each message is an {@link AuditEvent} (JSON).
 *
 * Token formats: enrollment tokens are `imt_<id>_<secret>`, admin API tokens `imk_<id>_<secret>`,
 * with `<id>` 16 and `<secret>` 64 lowercase hex characters; the id finds the record, the secret is
 * compared by sha256 in constant time.
 * @module
 */
import { z } from 'zod';
import { agentHardwareSchema, agentHeartbeatSchema } from './agent-heartbeat.js';
import { ed25519PublicKeySchema, ed25519SignatureSchema } from './model-manifest.js';
import { epochMsSchema, idSchema, labelsSchema } from './primitives.js';

// ---- tokens ----------------------------------------------------------------------------------

/** Prefix of an enrollment token. */
export const ENROLLMENT_TOKEN_PREFIX = 'imt';
/** Prefix of an admin API token. */
export const API_TOKEN_PREFIX = 'imk';

const TOKEN_ID = /^[0-9a-f]{16}$/;
const TOKEN_SECRET = /^[0-9a-f]{64}$/;

/** A token id (16 lowercase hex characters): the KV key of its record. */
export const tokenIdSchema = z.string().regex(TOKEN_ID, 'must be 16 lowercase hex characters');

/** The id and secret of a `<prefix>_<id>_<secret>` token; undefined when it is not one. */
export function parseToken(prefix: string, token: string): { id: string; secret: string } | undefined {
  const parts = token.split('_');
  if (parts.length !== 3 || parts[0] !== prefix) return undefined;
  const [, id, secret] = parts as [string, string, string];
  return TOKEN_ID.test(id) && TOKEN_SECRET.test(secret) ? { id, secret } : undefined;
}

/** Formats a token from its parts (the inverse of {@link parseToken}). */
export function formatToken(prefix: string, id: string, secret: string): string {
  return `${prefix}_${id}_${secret}`;
}

// ---- enrollment ------------------------------------------------------------------------------

/** One enrollment token as stored (the secret only as its sha256). */
export const enrollmentTokenRecordSchema = z.object({
  id: tokenIdSchema,
  /** sha256 of the secret part, 64 lowercase hex. */
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Labels the enrolled agent starts with. */
  labels: labelsSchema,
  createdBy: z.string().min(1).max(256),
  createdAt: epochMsSchema,
  expiresAt: epochMsSchema,
  /** Set once the token is used. */
  usedAt: epochMsSchema.optional(),
  usedBy: idSchema.optional(),
});
export type EnrollmentTokenRecord = z.infer<typeof enrollmentTokenRecordSchema>;

/** The text an agent signs with its new key to prove it holds it. */
export function enrollmentProofText(token: string, publicKey: string): string {
  return `infermesh-enroll-v1\n${token}\n${publicKey}`;
}

/**
 * What an agent sends on `enrollSubject()`: the one-time token, its own ed25519 public key and a
 * signature (base64) over {@link enrollmentProofText} made with the matching private key.
 */
export const enrollRequestSchema = z.object({
  token: z.string().min(1).max(256),
  publicKey: ed25519PublicKeySchema,
  signature: ed25519SignatureSchema,
  hostname: z.string().max(256).optional(),
  agentVersion: z.string().max(64).optional(),
  hardware: agentHardwareSchema.optional(),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

/**
 * The coordinator's answer: the agent's id (derived from its public key: `ag-` and the first 16 hex
 * characters of the key's sha256) and labels. Errors come back as NATS error headers
 * (UNAUTHENTICATED for an unknown, used or expired token, INVALID_INPUT for a bad proof).
 */
export const enrollResponseSchema = z.object({
  agentId: idSchema,
  labels: labelsSchema,
  enrolledAt: epochMsSchema,
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

/**
 * NATS header carrying an enrolled agent's ed25519 signature (base64) over the exact message body,
 * on its heartbeats and its federated updates. The coordinator verifies it against the fleet
 * record's public key: a message claiming an enrolled agent's id without a valid signature is
 * dropped, so nobody else can speak for an enrolled device.
 */
export const AGENT_SIGNATURE_HEADER = 'Im-Agent-Signature';

/** The fleet record of one enrolled agent (value under its id in `fleetBucket()`). */
export const fleetRecordSchema = z.object({
  agentId: idSchema,
  publicKey: ed25519PublicKeySchema,
  labels: labelsSchema,
  hostname: z.string().max(256).optional(),
  enrolledAt: epochMsSchema,
  /** Id of the enrollment token used. */
  enrollmentTokenId: tokenIdSchema,
  /** When the labels last changed, and who changed them. */
  labelsUpdatedAt: epochMsSchema.optional(),
  labelsUpdatedBy: z.string().max(256).optional(),
});
export type FleetRecord = z.infer<typeof fleetRecordSchema>;

/**
 * Where an agent stands in the fleet registry: `online` (a heartbeat within the stale threshold),
 * `stale` (missed heartbeats, not yet offline), `offline` (silent past the offline threshold),
 * `unknown` (enrolled, never heard from).
 */
export const AGENT_PRESENCE = ['online', 'stale', 'offline', 'unknown'] as const;
export const agentPresenceSchema = z.enum(AGENT_PRESENCE);
export type AgentPresence = z.infer<typeof agentPresenceSchema>;

/**
 * The fleet registry's view of one agent, as `GET /api/v1/fleet/agents` returns it. Agents that
 * heartbeat without having enrolled (development setups with a configured id) appear with
 * `enrolled: false` and the labels of their heartbeat.
 */
export const fleetAgentSchema = z.object({
  agentId: idSchema,
  enrolled: z.boolean(),
  presence: agentPresenceSchema,
  /** The fleet record's labels for enrolled agents, else the heartbeat's. */
  labels: labelsSchema,
  hostname: z.string().max(256).optional(),
  enrolledAt: epochMsSchema.optional(),
  /** When the coordinator received the last heartbeat (ms since the epoch). */
  lastSeenAt: epochMsSchema.optional(),
  /** The last heartbeat as sent. */
  heartbeat: agentHeartbeatSchema.optional(),
});
export type FleetAgent = z.infer<typeof fleetAgentSchema>;

/** `PATCH /api/v1/fleet/agents/{id}/labels`: set (string) or remove (null) label keys. */
export const labelsPatchSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, 'is not a valid label key'),
  z.string().max(128).nullable(),
);
export type LabelsPatch = z.infer<typeof labelsPatchSchema>;

/** `POST /api/v1/tokens`: create an enrollment token. */
export const createEnrollmentTokenRequestSchema = z.object({
  labels: labelsSchema.default({}),
  /** Time to live in ms (at most 30 days). */
  ttlMs: z
    .number()
    .int()
    .positive()
    .max(30 * 24 * 3_600_000),
});
export type CreateEnrollmentTokenRequest = z.input<typeof createEnrollmentTokenRequestSchema>;

/** The answer to `POST /api/v1/tokens`: the token itself is shown once, never again. */
export const createEnrollmentTokenResponseSchema = z.object({
  token: z.string(),
  id: tokenIdSchema,
  labels: labelsSchema,
  expiresAt: epochMsSchema,
});
export type CreateEnrollmentTokenResponse = z.infer<typeof createEnrollmentTokenResponseSchema>;

// ---- admin API users and roles --------------------------------------------------------------

/**
 * Roles of the admin API, each including the ones before it: `viewer` reads; `operator` also
 * starts and steers rollouts, changes labels and manages models; `admin` also manages enrollment
 * tokens and users.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** True when `held` may do what `needed` may. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** A user name: what audit events and `setBy` fields name. */
export const userNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 letters, digits, ., _, @ or -');

/** One admin API user as stored. */
export const userRecordSchema = z.object({
  id: tokenIdSchema,
  name: userNameSchema,
  role: roleSchema,
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdBy: z.string().min(1).max(256),
  createdAt: epochMsSchema,
  expiresAt: epochMsSchema.optional(),
});
export type UserRecord = z.infer<typeof userRecordSchema>;

/** `POST /api/v1/users`. */
export const createUserRequestSchema = z.object({
  name: userNameSchema,
  role: roleSchema,
  ttlMs: z.number().int().positive().optional(),
});
export type CreateUserRequest = z.infer<typeof createUserRequestSchema>;

// ---- audit ----------------------------------------------------------------------------------

/** One mutating admin call, as written to `auditStream()`. */
export const auditEventSchema = z.object({
  /** Stream sequence (set when read back; absent when written). */
  seq: z.number().int().positive().optional(),
  at: epochMsSchema,
  actor: z.string().min(1).max(256),
  role: roleSchema,
  method: z.string().min(1).max(16),
  path: z.string().min(1).max(2048),
  /** The HTTP status answered. */
  status: z.number().int(),
  /** A short machine-readable name of what was done (`rollout.start`, `token.create`, ...). */
  action: z.string().min(1).max(128),
  /** The object acted on (`spam@3`, an agent id, ...). */
  target: z.string().max(512).optional(),
  /** The request body, with secrets removed; capped in size. */
  details: z.record(z.string(), z.unknown()).optional(),
  requestId: z.string().max(128).optional(),
});
export type AuditEvent = z.infer<typeof auditEventSchema>;

// ---- admin API answers (fleet administration) -------------------------------------------------

/** `GET /api/v1/fleet/agents`: one page of agents sorted by id; `nextCursor` is the last id given. */
export const fleetAgentListSchema = z.object({
  agents: z.array(fleetAgentSchema),
  /** Pass as `cursor` to get the next page; absent on the last page. */
  nextCursor: idSchema.optional(),
  /** Agents matching the query, over all pages. */
  total: z.number().int().min(0),
});
export type FleetAgentList = z.infer<typeof fleetAgentListSchema>;

/** One enrollment token as `GET /api/v1/tokens` lists it (never its secret). */
export const enrollmentTokenViewSchema = enrollmentTokenRecordSchema
  .omit({ secretSha256: true })
  .extend({ expired: z.boolean(), used: z.boolean() });
export type EnrollmentTokenView = z.infer<typeof enrollmentTokenViewSchema>;

/** `GET /api/v1/tokens`. */
export const enrollmentTokenListSchema = z.object({ tokens: z.array(enrollmentTokenViewSchema) });
export type EnrollmentTokenList = z.infer<typeof enrollmentTokenListSchema>;

/** One admin API user as `GET /api/v1/users` lists it (never the token's hash). */
export const userViewSchema = userRecordSchema.omit({ secretSha256: true }).extend({ expired: z.boolean() });
export type UserView = z.infer<typeof userViewSchema>;

/** `GET /api/v1/users`. */
export const userListSchema = z.object({ users: z.array(userViewSchema) });
export type UserList = z.infer<typeof userListSchema>;

/** The answer to `POST /api/v1/users`: the user's API token is shown once, never again. */
export const createUserResponseSchema = z.object({
  token: z.string(),
  user: userViewSchema,
});
export type CreateUserResponse = z.infer<typeof createUserResponseSchema>;

/** `GET /api/v1/audit`: events oldest first; `nextSince` continues after the last one. */
export const auditEventListSchema = z.object({
  events: z.array(auditEventSchema),
  /** Pass as `since` to read the events after these. */
  nextSince: z.number().int().min(0),
});
export type AuditEventList = z.infer<typeof auditEventListSchema>;
