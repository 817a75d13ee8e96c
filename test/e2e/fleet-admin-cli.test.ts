/**
 * Fleet administration end to end through real processes: `infermesh coordinator` and the
 * `infermesh tokens` / `users` / `fleet` / `audit` commands against its admin API, with an agent
 * enrolling over NATS with a token the CLI printed. Also where the CLI finds its URL and token
 * (flags, then environment, then the config file).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditEventListSchema,
  decode,
  encode,
  enrollRequestSchema,
  enrollResponseSchema,
  enrollSubject,
  enrollmentProofText,
} from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { E2E_ADMIN_TOKEN, startCoordinator } from '../harness/mesh-processes.js';
import type { StartedCoordinator } from '../harness/mesh-processes.js';
import { startNatsServer } from '../harness/nats-server.js';
import type { NatsServer } from '../harness/nats-server.js';
import { CLI_ENTRY } from '../harness/process.js';

let nats: NatsServer;
let coordinator: StartedCoordinator;
let connection: MeshConnection;
let dir: string;
let configFile: string;

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `infermesh ...args` with only `env` (and a HOME without a CLI config) for its settings. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
  delete base['INFERMESH_URL'];
  delete base['INFERMESH_TOKEN'];
  delete base['INFERMESH_CLI_CONFIG'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { cwd: dir, timeout: 20_000, env: { ...base, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Enrolls a new agent key with `token` over NATS, as an agent does; resolves with its id. */
async function enrollAgent(token: string): Promise<string> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
  const signature = sign(null, Buffer.from(enrollmentProofText(token, raw)), privateKey).toString('base64');
  const reply = await connection.nc.request(
    enrollSubject(),
    encode(enrollRequestSchema, { token, publicKey: raw, signature, hostname: 'cli-box' }),
    { timeout: 5_000 },
  );
  return decode(enrollResponseSchema, reply.data).agentId;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'im-fleet-cli-'));
  nats = await startNatsServer();
  coordinator = await startCoordinator(nats.url, 'c-fleet-cli');
  connection = await connectMesh(nats.url, { name: 'fleet-cli-test' });
  configFile = join(dir, 'cli.json');
  await writeFile(configFile, JSON.stringify({ url: coordinator.adminUrl, token: E2E_ADMIN_TOKEN }));
}, 60_000);

afterAll(async () => {
  await connection?.close();
  await coordinator?.process.stop();
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fleet administration CLI', () => {
  it('creates a token that enrolls an agent, lists and labels it, and audits it all', async () => {
    const created = await cli([
      'tokens',
      'create',
      '--labels',
      'site=x,hw=y',
      '--ttl',
      '1h',
      '--config',
      configFile,
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^imt_[0-9a-f]{16}_[0-9a-f]{64}$/);
    const agentId = await enrollAgent(token);

    const env = { INFERMESH_CLI_CONFIG: configFile };
    const listed = await cli(['fleet', 'list', '--selector', 'site=x'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${agentId}  unknown  enrolled  site=x,hw=y`);
    expect(listed.stdout).toMatch(/1 of 1 agents/);
    expect((await cli(['fleet', 'list', '--selector', 'site=elsewhere'], env)).stdout).toMatch(
      /0 of 0 agents/,
    );

    const labelled = await cli(['fleet', 'label', agentId, 'tier=gold', 'hw-'], env);
    expect(labelled.code).toBe(0);
    expect(labelled.stdout.trim()).toBe(`${agentId}: site=x,tier=gold`);
    const shown = await cli(['fleet', 'show', agentId, '--json'], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      agent: { agentId, labels: { site: 'x', tier: 'gold' } },
      desired: [],
    });

    const tokens = await cli(['tokens', 'list'], env);
    expect(tokens.stdout).toContain(`used by ${agentId}`);
    expect(tokens.stdout).not.toContain(token.split('_')[2]);

    const audit = await cli(['audit', '--json', '--actor', 'admin'], env);
    const actions = auditEventListSchema
      .parse(JSON.parse(audit.stdout))
      .events.map((e) => [e.action, e.status]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['token.create', 201],
        ['fleet.labels.update', 200],
      ]),
    );
  });

  it('refuses a viewer what only an admin may do, with the code', async () => {
    const env = { INFERMESH_CLI_CONFIG: configFile };
    const user = await cli(['users', 'create', 'cli-viewer', '--role', 'viewer'], env);
    expect(user.code).toBe(0);
    const viewerToken = user.stdout.trim();
    expect(viewerToken).toMatch(/^imk_/);
    const refused = await cli(['tokens', 'create', '--token', viewerToken], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FORBIDDEN: .*needs the admin role; cli-viewer is viewer/);
    expect((await cli(['fleet', 'list', '--token', viewerToken], env)).code).toBe(0);
    expect((await cli(['users', 'revoke', 'cli-viewer'], env)).code).toBe(0);
    expect((await cli(['fleet', 'list', '--token', viewerToken], env)).stderr).toMatch(/UNAUTHENTICATED/);
  });

  it('takes URL and token from flags, then the environment, then the config file', async () => {
    // The environment's (wrong) token beats the config file's.
    const envWins = await cli(['tokens', 'list'], {
      INFERMESH_CLI_CONFIG: configFile,
      INFERMESH_TOKEN: 'wrong-token-0123456789',
    });
    expect(envWins.stderr).toMatch(/UNAUTHENTICATED/);
    // The flag beats the environment.
    const flagWins = await cli(['tokens', 'list', '--token', E2E_ADMIN_TOKEN], {
      INFERMESH_CLI_CONFIG: configFile,
      INFERMESH_TOKEN: 'wrong-token-0123456789',
    });
    expect(flagWins.code).toBe(0);
    // The default config file is ~/.config/infermesh/cli.json.
    expect((await cli(['tokens', 'list'])).stderr).toMatch(/UNAUTHENTICATED|UNAVAILABLE/);
    const named = await cli(['tokens', 'list', '--config', join(dir, 'missing.json')]);
    expect(named.stderr).toMatch(/cannot read the CLI config/);
  });
});
