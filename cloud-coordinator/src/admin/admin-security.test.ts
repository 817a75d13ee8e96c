import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import pino from 'pino';
import {
  auditEventListSchema,
  createEnrollmentTokenResponseSchema,
  createUserResponseSchema,
  decode,
  encode,
  enrollRequestSchema,
  enrollResponseSchema,
  enrollSubject,
  enrollmentProofText,
  enrollmentTokenListSchema,
  fleetAgentListSchema,
  userListSchema,
} from '@infermesh/protocols';
import type { EnrollRequest } from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/nats-server.js';
import type { NatsServer } from '../../../test/harness/nats-server.js';
import { EnrollmentResponder } from '../fleet/enrollment-responder.js';
import { EnrollmentTokenStore } from '../fleet/enrollment-tokens.js';
import { FleetRegistry } from '../fleet/fleet-registry.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { EjectionList } from '../router/ejection.js';
import { RouterMetrics } from '../router/router-metrics.js';
import { WorkerTable } from '../router/worker-table.js';
import { AuditLog } from './audit-log.js';
import { MAX_ANONYMOUS_EVENTS_PER_SECOND } from './audit-middleware.js';
import { createCoordinatorApp } from './coordinator-app.js';
import { UsersStore } from './users-store.js';

const ADMIN_TOKEN = 'admin-security-test-token-0123';
const logger = pino({ enabled: false });

let nats: NatsServer;
let connection: MeshConnection;
let app: Hono;
let secondApp: Hono;
let fleet: FleetRegistry;
let responder: EnrollmentResponder;
const stores: { stop(): Promise<void> }[] = [];

function call(method: string, path: string, token: string | null, json?: unknown, on: Hono = app) {
  const headers: Record<string, string> = {};
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  const body = json === undefined ? undefined : JSON.stringify(json);
  if (body !== undefined) {
    // As an HTTP client sends them (app.request does not add Content-Length by itself).
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return on.request(`/api/v1${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
}

async function createUser(name: string, role: string, ttlMs?: number): Promise<string> {
  const res = await call('POST', '/users', ADMIN_TOKEN, { name, role, ...(ttlMs ? { ttlMs } : {}) });
  expect(res.status).toBe(201);
  return createUserResponseSchema.parse(await res.json()).token;
}

/** One coordinator's app over the shared NATS server, as `startCoordinatorNode` builds it. */
async function coordinatorApp(id: string): Promise<Hono> {
  const users = new UsersStore({ connection, logger });
  const enrollmentTokens = new EnrollmentTokenStore({ connection, logger });
  const audit = new AuditLog({ connection });
  await Promise.all([users.start(), enrollmentTokens.start(), audit.start()]);
  stores.push(users);
  fleet ??= new FleetRegistry({ connection, logger, staleAfterMs: 1_000, offlineAfterMs: 5_000 });
  return createCoordinatorApp({
    coordinatorId: id,
    registry: new RouterMetrics(id).registry,
    table: new WorkerTable({ staleAfterMs: 1_000 }),
    ejections: new EjectionList({ baseMs: 500, maxMs: 5_000 }),
    natsState: () => connection.state,
    adminToken: ADMIN_TOKEN,
    users,
    enrollmentTokens,
    audit,
    fleet,
    modelRegistry: new ModelRegistry({
      connection,
      logger,
      publisherKey: undefined,
      maxArtifactBytes: 1024 * 1024,
      replicas: 1,
    }),
    logger,
  });
}

const encodeEnroll = (request: EnrollRequest) => encode(enrollRequestSchema, request);
const decodeEnroll = (data: Uint8Array) => decode(enrollResponseSchema, data);

function enrollRequest(token: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
  const signature = sign(null, Buffer.from(enrollmentProofText(token, raw)), privateKey).toString('base64');
  const request: EnrollRequest = { token, publicKey: raw, signature, hostname: 'box-1' };
  return request;
}

async function newEnrollmentToken(labels: Record<string, string>, ttlMs = 60_000) {
  const res = await call('POST', '/tokens', ADMIN_TOKEN, { labels, ttlMs });
  expect(res.status).toBe(201);
  return createEnrollmentTokenResponseSchema.parse(await res.json());
}

beforeAll(async () => {
  nats = await startNatsServer();
  connection = await connectMesh(nats.url, { name: 'admin-security-test' });
  app = await coordinatorApp('c-1');
  secondApp = await coordinatorApp('c-2');
  await fleet.start();
  const tokens = new EnrollmentTokenStore({ connection, logger });
  await tokens.start();
  responder = new EnrollmentResponder({ connection, tokens, fleet, logger });
  responder.start();
});

afterAll(async () => {
  await responder?.stop();
  await fleet?.stop();
  for (const store of stores) await store.stop();
  await connection?.close();
  await nats?.dispose();
});

describe('admin API authentication', () => {
  it('answers 401 UNAUTHENTICATED without a token, with a wrong, malformed or unknown one', async () => {
    const unknownUser = `imk_${'0'.repeat(16)}_${'a'.repeat(64)}`;
    for (const token of [null, 'wrong-token-0123456789', `${ADMIN_TOKEN}x`, 'imk_zz_zz', unknownUser]) {
      for (const [method, path] of [
        ['GET', '/models'],
        ['GET', '/fleet/agents'],
        ['POST', '/tokens'],
        ['GET', '/openapi.json'],
      ] as const) {
        const res = await call(method, path, token);
        expect(res.status, `${method} ${path} with ${token}`).toBe(401);
        expect(await res.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
      }
    }
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/metrics')).status).toBe(200);
  });

  it('refuses an expired user token, saying it expired', async () => {
    const token = await createUser('short-lived', 'viewer', 50);
    await new Promise((resolve) => setTimeout(resolve, 80));
    const res = await call('GET', '/models', token);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('UNAUTHENTICATED');
    expect(body.error).toMatch(/expired/);
  });

  it('revokes a user on every coordinator at once', async () => {
    const token = await createUser('leaver', 'operator');
    expect((await call('GET', '/models', token, undefined, secondApp)).status).toBe(200);
    expect((await call('DELETE', '/users/leaver', ADMIN_TOKEN)).status).toBe(204);
    for (const on of [app, secondApp]) {
      const res = await call('GET', '/models', token, undefined, on);
      expect(res.status).toBe(401);
    }
    expect((await call('DELETE', '/users/leaver', ADMIN_TOKEN)).status).toBe(404);
  });

  it('lists users without secrets and refuses a taken or reserved name', async () => {
    await createUser('lister', 'viewer');
    const res = await call('GET', '/users', ADMIN_TOKEN);
    const text = await res.text();
    expect(text).not.toMatch(/secretSha256|imk_/);
    const { users } = userListSchema.parse(JSON.parse(text));
    expect(users.find((u) => u.name === 'lister')).toMatchObject({ role: 'viewer', createdBy: 'admin' });
    expect((await call('POST', '/users', ADMIN_TOKEN, { name: 'lister', role: 'admin' })).status).toBe(409);
    expect((await call('POST', '/users', ADMIN_TOKEN, { name: 'admin', role: 'admin' })).status).toBe(409);
    const bad = await call('POST', '/users', ADMIN_TOKEN, { name: 'x y', role: 'root' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('admin API roles', () => {
  it('lets a viewer read but not mutate (403 FORBIDDEN)', async () => {
    const viewer = await createUser('watcher', 'viewer');
    expect((await call('GET', '/models', viewer)).status).toBe(200);
    expect((await call('GET', '/fleet/agents', viewer)).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/models/m/versions', { version: '1', variants: {} }],
      ['POST', '/tokens', { labels: {}, ttlMs: 1_000 }],
      ['PATCH', '/fleet/agents/ag-x/labels', { site: 'eu' }],
      ['PUT', '/agents/a1/models/m', { version: '1' }],
    ] as const) {
      const res = await call(method, path, viewer, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'FORBIDDEN' });
    }
    expect((await call('GET', '/audit', viewer)).status).toBe(403);
  });

  it('lets an operator label agents but not create tokens or users', async () => {
    const operator = await createUser('op', 'operator');
    const created = await newEnrollmentToken({ site: 'eu' });
    const reply = await connection.nc.request(enrollSubject(), encodeEnroll(enrollRequest(created.token)));
    const { agentId } = decodeEnroll(reply.data);
    const res = await call('PATCH', `/fleet/agents/${agentId}/labels`, operator, {
      hw: 'jetson',
      site: null,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ labels: { hw: 'jetson' }, labelsUpdatedBy: 'op' });
    expect((await call('POST', '/tokens', operator, { labels: {}, ttlMs: 1_000 })).status).toBe(403);
    expect((await call('POST', '/users', operator, { name: 'y', role: 'viewer' })).status).toBe(403);
    expect((await call('DELETE', `/fleet/agents/${agentId}`, operator)).status).toBe(403);
    expect((await call('GET', '/audit', operator)).status).toBe(200);
  });
});

describe('enrollment tokens over the admin API', () => {
  it('shows a token once, lists it without secret, marks it used, deletes it', async () => {
    const created = await newEnrollmentToken({ site: 'lab' });
    expect(created.token).toMatch(/^imt_[0-9a-f]{16}_[0-9a-f]{64}$/);
    let text = await (await call('GET', '/tokens', ADMIN_TOKEN)).text();
    expect(text).not.toContain(created.token.split('_')[2]);
    let view = enrollmentTokenListSchema.parse(JSON.parse(text)).tokens.find((t) => t.id === created.id);
    expect(view).toMatchObject({ used: false, expired: false, labels: { site: 'lab' }, createdBy: 'admin' });
    const reply = await connection.nc.request(enrollSubject(), encodeEnroll(enrollRequest(created.token)));
    const { agentId } = decodeEnroll(reply.data);
    text = await (await call('GET', '/tokens', ADMIN_TOKEN)).text();
    view = enrollmentTokenListSchema.parse(JSON.parse(text)).tokens.find((t) => t.id === created.id);
    expect(view).toMatchObject({ used: true, usedBy: agentId });
    expect((await call('DELETE', `/tokens/${created.id}`, ADMIN_TOKEN)).status).toBe(204);
    expect((await call('DELETE', `/tokens/${created.id}`, ADMIN_TOKEN)).status).toBe(404);
    expect((await call('POST', '/tokens', ADMIN_TOKEN, { ttlMs: -1 })).status).toBe(400);
  });
});

describe('fleet routes', () => {
  it('pages agents by selector and cursor, shows one, de-enrolls', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await newEnrollmentToken({ site: 'paging', n: String(i % 2) });
      const reply = await connection.nc.request(enrollSubject(), encodeEnroll(enrollRequest(created.token)));
      ids.push(decodeEnroll(reply.data).agentId);
    }
    ids.sort();
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const query = `selector=site=paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = fleetAgentListSchema.parse(
        await (await call('GET', `/fleet/agents?${query}`, ADMIN_TOKEN)).json(),
      );
      expect(page.total).toBe(5);
      seen.push(...page.agents.map((a) => a.agentId));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(ids);
    const odd = fleetAgentListSchema.parse(
      await (
        await call('GET', '/fleet/agents?selector=site=paging,n=1&presence=unknown', ADMIN_TOKEN)
      ).json(),
    );
    expect(odd.total).toBe(2);
    expect((await call('GET', '/fleet/agents?limit=1001', ADMIN_TOKEN)).status).toBe(400);
    expect((await call('GET', '/fleet/agents?presence=sleepy', ADMIN_TOKEN)).status).toBe(400);
    const one = await call('GET', `/fleet/agents/${ids[0]}`, ADMIN_TOKEN);
    expect(await one.json()).toMatchObject({ agentId: ids[0], enrolled: true, hostname: 'box-1' });
    expect((await call('DELETE', `/fleet/agents/${ids[0]}`, ADMIN_TOKEN)).status).toBe(204);
    const gone = await call('GET', `/fleet/agents/${ids[0]}`, ADMIN_TOKEN);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('audit log', () => {
  it('records every mutating call, refusals included, without secrets', async () => {
    const before = auditEventListSchema.parse(
      await (await call('GET', '/audit?limit=1', ADMIN_TOKEN)).json(),
    );
    const since = before.nextSince;
    const viewer = await createUser('audited', 'viewer');
    const token = await newEnrollmentToken({ site: 'audit' });
    await call('POST', '/tokens', viewer, { labels: {}, ttlMs: 1_000 });
    await call('DELETE', `/tokens/${token.id}`, null);
    await call('DELETE', `/tokens/${token.id}`, ADMIN_TOKEN);
    await call('PATCH', '/fleet/agents/ag-nobody/labels', ADMIN_TOKEN, { a: 'b' });
    await call('GET', '/models', ADMIN_TOKEN);
    const res = await call('GET', `/audit?since=${since}`, ADMIN_TOKEN);
    const text = await res.text();
    expect(text).not.toContain(viewer);
    expect(text).not.toContain(token.token);
    const { events } = auditEventListSchema.parse(JSON.parse(text));
    expect(events.map((e) => [e.actor, e.role, e.method, e.status, e.action, e.target])).toEqual([
      ['admin', 'admin', 'POST', 201, 'user.create', 'audited'],
      ['admin', 'admin', 'POST', 201, 'token.create', token.id],
      ['audited', 'viewer', 'POST', 403, 'POST /tokens', undefined],
      ['anonymous', 'viewer', 'DELETE', 401, 'DELETE /tokens/{id}', undefined],
      ['admin', 'admin', 'DELETE', 204, 'token.delete', token.id],
      ['admin', 'admin', 'PATCH', 404, 'fleet.labels.update', 'ag-nobody'],
    ]);
    expect(events[0]?.details).toEqual({ role: 'viewer' });
    expect(events[2]?.details).toEqual({ labels: {}, ttlMs: 1_000 });
    const byViewer = auditEventListSchema.parse(
      await (await call('GET', `/audit?since=${since}&actor=audited`, ADMIN_TOKEN)).json(),
    );
    expect(byViewer.events).toHaveLength(1);
  });
});

describe('audit log under anonymous floods', () => {
  it('keeps unauthenticated refusals bodiless and bounded per second, counting the rest', async () => {
    const before = auditEventListSchema.parse(
      await (await call('GET', '/audit?limit=1', ADMIN_TOKEN)).json(),
    );
    const flood = 'x'.repeat(2_000);
    const answers = await Promise.all(
      Array.from({ length: 60 }, () =>
        Promise.resolve(call('POST', '/tokens', null, { labels: { flood }, ttlMs: 1_000 })),
      ),
    );
    expect(answers.every((r) => r.status === 401)).toBe(true);
    await call('POST', '/tokens', 'imk_0000000000000000_' + '0'.repeat(64), { labels: {}, ttlMs: 1 });
    const { events } = auditEventListSchema.parse(
      await (await call('GET', `/audit?since=${before.nextSince}&limit=1000`, ADMIN_TOKEN)).json(),
    );
    const anonymous = events.filter((e) => e.actor === 'anonymous');
    // 61 refusals within a second or two: at most the per-second allowance of each second is written.
    expect(anonymous.length).toBeGreaterThan(0);
    expect(anonymous.length).toBeLessThanOrEqual(3 * MAX_ANONYMOUS_EVENTS_PER_SECOND);
    expect(JSON.stringify(anonymous)).not.toContain(flood);
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(/infermesh_audit_anonymous_suppressed_total(\{[^}]*\})? [1-9]/);
  });
});

describe('OpenAPI document', () => {
  it('documents every served /api/v1 route with its method and role', async () => {
    const res = await call('GET', '/openapi.json', ADMIN_TOKEN);
    const document = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { 'x-required-role': string }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(document.openapi).toBe('3.1.0');
    expect(document.components.securitySchemes).toHaveProperty('bearer');
    const served = app.routes
      .filter((r) => r.path.startsWith('/api/v1/') && r.method !== 'ALL')
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    expect(served.length).toBeGreaterThan(15);
    const documented = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    for (const route of served) expect(documented, route).toContain(route);
    expect(new Set(documented)).toEqual(new Set(served));
    expect(document.paths['/api/v1/tokens']?.['post']?.['x-required-role']).toBe('admin');
    expect(document.paths['/api/v1/fleet/agents/{id}/labels']?.['patch']?.['x-required-role']).toBe(
      'operator',
    );
  });
});
