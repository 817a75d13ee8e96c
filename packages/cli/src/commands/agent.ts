/**
 * `infermesh agent`: runs the edge agent. Every setting can come from `--config FILE` (JSON),
 * `INFERMESH_*` environment variables or these flags, in increasing precedence.
 * @module
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { runAgentProcess } from '@infermesh/edge-agent';

interface AgentFlags {
  config?: string;
  modelsDir?: string;
  host?: string;
  port?: string;
  id?: string;
  nats?: string;
  apiKey?: string;
  maxBodyBytes?: string;
  maxQueueDepth?: string;
  batchWindowMs?: string;
  maxBatchSize?: string;
  maxConcurrentRuns?: string;
  intraOpThreads?: string;
  backend?: string;
  defaultOffloadPolicy?: string;
  offloadTimeoutMs?: string;
  trustedPublisherKey?: string[];
  heartbeatIntervalMs?: string;
  syncKeepVersions?: string;
  syncIdleTimeoutMs?: string;
  watchIntervalMs?: string;
  shutdownTimeoutMs?: string;
  logLevel?: string;
  enrollToken?: string;
  identityFile?: string;
  labels?: string;
  enrollOnly?: boolean;
  enrollTimeoutMs?: string;
  feedbackDir?: string;
  feedbackMaxExamples?: string;
  trainingData?: string[];
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the edge agent: serve the models of a directory over the Open Inference Protocol v2')
    .option('-c, --config <file>', 'JSON configuration file')
    .option('--models-dir <dir>', 'models directory: <dir>/<name>/<version>/model.onnx (default ./models)')
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .option('-p, --port <port>', 'port to bind (default 8080)')
    .option('--id <id>', 'agent id (default agent-<hostname>)')
    .option('--nats <url>', 'NATS server for offload to the cloud')
    .option('--api-key <key>', 'require this key on every request but health probes')
    .option('--max-body-bytes <n>', 'request body size limit in bytes (default 64 MiB)')
    .option('--max-queue-depth <n>', 'requests waiting per model version before 503 OVERLOADED (default 256)')
    .option('--batch-window-ms <ms>', 'how long an idle model waits to fill a batch (default 0)')
    .option('--max-batch-size <n>', 'rows per micro-batch (default 32)')
    .option('--max-concurrent-runs <n>', 'session runs at once per model version (default 1)')
    .option('--intra-op-threads <n>', 'ONNX Runtime threads per session (default: ONNX Runtime decides)')
    .option('--backend <backend>', 'native (onnxruntime-node, default) or wasm (onnxruntime-web)')
    .option(
      '--default-offload-policy <policy>',
      'never|auto|always|cascade for models that set none (default auto)',
    )
    .option('--offload-timeout-ms <ms>', 'deadline of offloaded requests that carry none (default 30000)')
    .option(
      '--trusted-publisher-key <key...>',
      'publisher public keys (base64 or PEM) whose signed model versions this agent syncs',
    )
    .option('--heartbeat-interval-ms <ms>', 'heartbeat period (default 5000)')
    .option('--sync-keep-versions <n>', 'synced versions kept on disk per model (default 2)')
    .option('--sync-idle-timeout-ms <ms>', 'retry a download that receives nothing this long (default 15000)')
    .option('--watch-interval-ms <ms>', 'how often the models directory is scanned (default 500)')
    .option('--shutdown-timeout-ms <ms>', 'longest wait for requests in flight on SIGTERM (default 10000)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--enroll-token <token>', 'one-time enrollment token: enroll on first start (needs --nats)')
    .option(
      '--identity-file <file>',
      "the agent's key pair and enrolled id (default <models-dir>/../identity.json)",
    )
    .option('--labels <pairs>', 'labels reported in heartbeats, key=value,... (enrolled labels win)')
    .option('--enroll-only', 'enroll (unless enrolled already), write the identity file and exit')
    .option(
      '--enroll-timeout-ms <ms>',
      'with --enroll-only: give up enrolling after this long (default: never)',
    )
    .option(
      '--feedback-dir <dir>',
      'where POST /v1/feedback keeps labelled examples (default <models-dir>/.feedback)',
    )
    .option(
      '--feedback-max-examples <n>',
      'labelled examples kept per model; the oldest are dropped past it (default 10000)',
    )
    .option(
      '--training-data <model=file...>',
      'local labelled examples (JSONL, one {"inputs":{...},"label":n} per line) for federated training',
    )
    .action(async (flags: AgentFlags) => {
      const { config, trustedPublisherKey, enrollOnly, enrollTimeoutMs, ...settings } = flags;
      const timeoutMs = enrollTimeoutMs === undefined ? undefined : Number(enrollTimeoutMs);
      if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
        throw new InvalidArgumentError(
          `--enroll-timeout-ms must be a whole number above 0, not '${enrollTimeoutMs}'`,
        );
      }
      await runAgentProcess({
        configFile: config,
        flags: { ...settings, trustedPublisherKeys: trustedPublisherKey },
        env: process.env,
        enrollOnly,
        enrollTimeoutMs: timeoutMs,
      });
    });
}
