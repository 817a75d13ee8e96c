/**
 * The mesh's own processes for end-to-end tests and benchmarks: models written in the
 * models-directory layout, and `infermesh worker` / `infermesh coordinator` child processes that
 * resolve once they serve.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { startCli } from './process.js';
import type { ManagedProcess } from './process.js';

const START_TIMEOUT_MS = 30_000;

/** Admin token of the coordinators started here (the admin API is closed without one). */
export const E2E_ADMIN_TOKEN = 'e2e-admin-token-0123456789';

/** Writes `<dir>/<name>/<version>/model.onnx`, and its manifest.json when given. */
export async function writeModel(
  dir: string,
  name: string,
  bytes: Uint8Array,
  manifest?: Record<string, unknown>,
  version = '1',
): Promise<void> {
  const versionDir = join(dir, name, version);
  await mkdir(versionDir, { recursive: true });
  await writeFile(join(versionDir, 'model.onnx'), bytes);
  if (manifest) await writeFile(join(versionDir, 'manifest.json'), JSON.stringify(manifest));
}

/** Starts `infermesh worker` (one intra-op thread, as the MLP presets are calibrated) until it serves. */
export function startWorker(
  natsUrl: string,
  id: string,
  modelsDir: string,
  extraArgs: readonly string[] = [],
): Promise<ManagedProcess> {
  return startCli(
    [
      'worker',
      '--nats',
      natsUrl,
      '--id',
      id,
      '--models-dir',
      modelsDir,
      '--intra-op-threads',
      '1',
      ...extraArgs,
    ],
    { readyPattern: /"msg":"worker ready"/, startTimeoutMs: START_TIMEOUT_MS },
  );
}

/** A started coordinator and its admin URL. */
export interface StartedCoordinator {
  readonly process: ManagedProcess;
  readonly adminUrl: string;
}

/** Starts `infermesh coordinator` on a free admin port and waits until it routes. */
export async function startCoordinator(
  natsUrl: string,
  id: string,
  extraArgs: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<StartedCoordinator> {
  const port = await freePort();
  const process = await startCli(
    ['coordinator', '--nats', natsUrl, '--id', id, '--port', String(port), ...extraArgs],
    {
      readyPattern: /"msg":"coordinator ready"/,
      startTimeoutMs: START_TIMEOUT_MS,
      env: { INFERMESH_ADMIN_TOKEN: E2E_ADMIN_TOKEN, ...env },
    },
  );
  return { process, adminUrl: `http://127.0.0.1:${port}` };
}
