/**
 * The agent installer end to end: the agent bundle built by deploy/agent/build-bundle.sh, installed
 * by deploy/agent/install.sh into a temporary prefix against a real nats-server and coordinator,
 * enrolling with an enrollment token made through the admin API; then the installed agent started
 * as its own process, seen online in the fleet with the token's labels, heartbeating; and the same
 * token refused on a second install and by the agent itself.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePublisherKeyPair } from '@infermesh/mesh-client';
import type { FleetAgent } from '@infermesh/protocols';
import {
  E2E_ADMIN_TOKEN,
  REPO_ROOT,
  startCoordinator,
  startNatsServer,
  startProcess,
} from '../harness/index.js';
import type { ManagedProcess, NatsServer, StartedCoordinator } from '../harness/index.js';

const TOKEN_LABELS = { site: 'lab-7', hw: 'x86' };
const HEARTBEAT_MS = 300;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

let dir: string;
let bundle: string;
let nats: NatsServer;
let coordinator: StartedCoordinator;
let agent: ManagedProcess | undefined;

async function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(path, coordinator.adminUrl), {
    ...init,
    headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}`, 'content-type': 'application/json' },
  });
}

async function createToken(): Promise<string> {
  const response = await admin('/api/v1/tokens', {
    method: 'POST',
    body: JSON.stringify({ labels: TOKEN_LABELS, ttlMs: 600_000 }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

/** install.sh with the test's bundle, NATS and a temporary systemd directory (never starting units). */
function install(prefix: string, token: string, extra: readonly string[] = []): Promise<Run> {
  const asRoot = process.getuid?.() === 0 ? ['--service-user', 'root'] : [];
  return run('sh', [
    join(REPO_ROOT, 'deploy/agent/install.sh'),
    ...['--prefix', prefix, '--nats', nats.url, '--token', token],
    ...['--systemd-dir', join(prefix, 'systemd'), '--no-start', '--bundle', bundle, '--enroll-timeout', '20'],
    ...asRoot,
    ...extra,
  ]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'im-installer-'));
  const built = await run('sh', [
    join(REPO_ROOT, 'deploy/agent/build-bundle.sh'),
    '--no-build',
    '--out',
    dir,
  ]);
  expect(built.stderr).toBe('');
  expect(built.code).toBe(0);
  bundle = join(dir, 'infermesh-agent');
  nats = await startNatsServer();
  coordinator = await startCoordinator(nats.url, 'coord-installer');
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await coordinator?.process.stop();
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('agent installer', () => {
  it('installs, enrolls, writes config and unit, and the installed agent heartbeats with the token labels', async () => {
    const token = await createToken();
    const prefix = join(dir, 'prefix');
    const { publicKeyBase64: publicKey } = generatePublisherKeyPair();
    const installed = await install(prefix, token, [
      '--labels',
      'rack=r1',
      '--trusted-publisher-key',
      publicKey,
    ]);
    expect(installed.stderr + installed.stdout).toContain('installed in');
    expect(installed.code).toBe(0);

    const bin = join(prefix, 'bin/infermesh-agent');
    const configFile = join(prefix, 'etc/infermesh/agent.json');
    const stateDir = join(prefix, 'var/lib/infermesh-agent');
    const identityFile = join(stateDir, 'identity.json');
    const unitFile = join(prefix, 'systemd/infermesh-agent.service');
    expect(await modeOf(bin)).toBe(0o755);
    expect(await modeOf(join(prefix, 'lib/infermesh-agent/agent.mjs'))).toBe(0o755);

    // Config: 0600, the paths under the prefix, no token (enrolled at install time).
    expect(await modeOf(configFile)).toBe(0o600);
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({
      nats: nats.url,
      modelsDir: join(stateDir, 'models'),
      identityFile,
      labels: 'rack=r1',
      trustedPublisherKeys: [publicKey],
    });
    expect(await readFile(configFile, 'utf8')).not.toContain(token);

    // Identity: 0600, enrolled with the token's labels.
    expect(await modeOf(identityFile)).toBe(0o600);
    expect(await modeOf(stateDir)).toBe(0o700);
    const identity = JSON.parse(await readFile(identityFile, 'utf8')) as {
      enrollment?: { agentId: string; labels: Record<string, string> };
    };
    const agentId = identity.enrollment?.agentId ?? '';
    expect(agentId).toMatch(/^ag-[0-9a-f]{16}$/);
    expect(identity.enrollment?.labels).toEqual(TOKEN_LABELS);

    // Unit: the template with every placeholder filled in.
    expect(await modeOf(unitFile)).toBe(0o644);
    const unit = await readFile(unitFile, 'utf8');
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    expect(unit).toContain(`ExecStart=${bin} --config ${configFile}\n`);
    expect(unit).toContain(`ReadWritePaths=${stateDir}\n`);
    for (const line of ['Type=simple', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict']) {
      expect(unit).toContain(`${line}\n`);
    }
    if (process.getuid?.() === 0) expect(unit).toContain('User=root\n');
    else expect(unit).not.toMatch(/^User=/m);

    // The installed agent, as the unit would run it (port and heartbeat shortened for the test).
    agent = await startProcess(
      bin,
      ['--config', configFile, '--port', '0', '--heartbeat-interval-ms', String(HEARTBEAT_MS)],
      {
        readyPattern: /"msg":"agent ready"/,
        startTimeoutMs: 20_000,
      },
    );
    expect(agent.output()).toContain(`"agentId":"${agentId}"`);
    expect(agent.output()).not.toContain('enrolling with the coordinator');

    let seen: FleetAgent | undefined;
    for (let i = 0; i < 100; i++) {
      const response = await admin(`/api/v1/fleet/agents/${agentId}`);
      if (response.status === 200) {
        seen = (await response.json()) as FleetAgent;
        if (seen.presence === 'online' && seen.heartbeat !== undefined) break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toMatchObject({ agentId, enrolled: true, presence: 'online', labels: TOKEN_LABELS });
    expect(seen?.heartbeat?.labels).toEqual({ rack: 'r1', ...TOKEN_LABELS });
    // It keeps heartbeating: the last heartbeat moves on.
    const firstAt = seen?.heartbeat?.at ?? 0;
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 3));
    const later = (await (await admin(`/api/v1/fleet/agents/${agentId}`)).json()) as FleetAgent;
    expect(later.heartbeat?.at).toBeGreaterThan(firstAt);
    expect(later.presence).toBe('online');

    // The used token: a second install fails, naming the coordinator's refusal, and starts nothing.
    const second = await install(join(dir, 'prefix-2'), token);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/UNAUTHENTICATED/);
    expect(second.stderr).toContain('enrollment failed');

    // And the agent itself, given the used token on a first start, exits 1 with the message.
    const direct = await run(bin, [
      '--nats',
      nats.url,
      '--models-dir',
      join(dir, 'direct/models'),
      '--enroll-token',
      token,
    ]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toMatch(/^infermesh-agent: UNAUTHENTICATED: /m);
  }, 60_000);

  it('refuses bad invocations with a clear message', async () => {
    const missing = await run('sh', [join(REPO_ROOT, 'deploy/agent/install.sh'), '--nats', nats.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('--prefix is required');
    const noBundle = await run('sh', [
      join(REPO_ROOT, 'deploy/agent/install.sh'),
      ...['--prefix', join(dir, 'p3'), '--nats', nats.url, '--token', 'x', '--bundle', join(dir, 'nope')],
    ]);
    expect(noBundle.code).toBe(1);
    expect(noBundle.stderr).toContain('no agent bundle at');
    // A path that would break the wrapper, the sed script or the unit is refused up front.
    const oddPrefix = await run('sh', [
      join(REPO_ROOT, 'deploy/agent/install.sh'),
      ...['--prefix', join(dir, 'p4|x&y'), '--nats', nats.url, '--token', 'x'],
    ]);
    expect(oddPrefix.code).toBe(1);
    expect(oddPrefix.stderr).toContain('paths may hold only');
  });
});
