/**
 * `infermesh up`: the whole local mesh in one process tree, for trying InferMesh on one machine:
 * nats-server with JetStream, a coordinator, a worker and an edge agent, with the demo spam model
 * pushed to the registry and pinned to the agent (so its edge variant arrives through the real
 * sync path, and requests the agent cannot serve go to the worker). Prints the URLs and a request
 * to try; Ctrl-C stops everything cleanly.
 * @module
 */
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SPAM_MODEL_NAME, SPAM_MODEL_VERSION, writeSpamModel } from '@infermesh/demo-models';
import { DEFAULT_NATS_PORT, NATS_INSTALL_HINT, findNatsServer } from '../up/local-nats.js';
import { startLocalMesh } from '../up/local-mesh.js';

interface UpFlags {
  port: string;
  host: string;
  natsPort: string;
  coordinatorPort: string;
  dataDir: string;
  modelsDir: string;
  logLevel: string;
}

const LOCAL_SYNC_WAIT_MS = 30_000;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description(
      'bring up a local mesh: nats-server (JetStream), coordinator, worker and an edge agent serving the demo model',
    )
    .option('-p, --port <port>', 'agent HTTP port', '8080')
    .option('--host <host>', 'bind address of the agent and the admin API', '127.0.0.1')
    .option('--nats-port <port>', 'nats-server client port', String(DEFAULT_NATS_PORT))
    .option('--coordinator-port <port>', 'coordinator admin API port', '8090')
    .option('--data-dir <dir>', 'local state: the NATS store, keys, synced models', '.data')
    .option('--models-dir <dir>', 'where the demo model is made (or found)', 'models')
    .option('--log-level <level>', 'log level of the mesh processes', 'warn')
    .action(async (flags: UpFlags) => {
      const binary = findNatsServer(process.env);
      if (binary === undefined) throw new Error(NATS_INSTALL_HINT);

      const demoDir = join(resolve(flags.modelsDir), SPAM_MODEL_NAME, SPAM_MODEL_VERSION);
      if (!(await exists(join(demoDir, 'model.onnx')))) {
        console.log(
          `making the demo spam model in ${demoDir} (trained here, reproducibly; a few seconds)...`,
        );
        const build = await writeSpamModel(demoDir);
        console.log(
          `  held-out accuracy ${(build.heldoutAccuracy * 100).toFixed(2)}% on ${build.heldoutExamples} messages`,
        );
      }
      const mesh = await startLocalMesh({
        natsBinary: binary,
        natsPort: Number(flags.natsPort),
        dataDir: resolve(flags.dataDir),
        host: flags.host,
        agentPort: Number(flags.port),
        coordinatorPort: Number(flags.coordinatorPort),
        logLevel: flags.logLevel,
        demo: {
          name: SPAM_MODEL_NAME,
          version: SPAM_MODEL_VERSION,
          bytes: await readFile(join(demoDir, 'model.onnx')),
          offload: { policy: 'auto' },
        },
        say: (line) => console.log(line),
      });
      if (await waitFor(() => mesh.servesLocally(SPAM_MODEL_NAME), LOCAL_SYNC_WAIT_MS)) {
        console.log(
          `the agent serves ${SPAM_MODEL_NAME}@${SPAM_MODEL_VERSION} locally (int8 edge variant, verified and self-tested)`,
        );
      } else {
        console.log(
          `the edge variant is still syncing; until it is ready the worker answers through the cloud path`,
        );
      }
      const url = mesh.agentUrl;
      console.log(
        `\ntry it:\n  curl -s ${url}/v2/models/spam/infer -H 'content-type: application/json' \\\n` +
          `    -d '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["WIN a FREE prize, click now!!!"]}]}'\n` +
          `  (add ,"parameters":{"offload":"always"} to the body to have the cloud worker answer)\n` +
          `\noperate it:\n  export INFERMESH_URL=${mesh.adminUrl} INFERMESH_TOKEN=${mesh.adminToken}\n` +
          `  npx infermesh models list\n  npx infermesh fleet list\n\nmetrics: ${url}/metrics   status: ${url}/v1/status\nCtrl-C stops everything.`,
      );

      await new Promise<void>((resolveStop) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          console.log('\nstopping...');
          void mesh.stop().then(() => resolveStop());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
