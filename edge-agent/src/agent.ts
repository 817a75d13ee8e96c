/**
 * The edge agent process: loads the models directory, serves it over HTTP, and shuts down
 * gracefully (stops accepting, refuses new requests with 503, finishes those in flight, then
 * releases the sessions). With a NATS server it also offloads to the cloud and, over the same
 * connection, syncs its models with the registry's desired state and publishes its heartbeat.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/agent-config.js';
import { HeartbeatBuilder } from './heartbeat/heartbeat-builder.js';
import type { MessageSigner } from './fleet/message-signer.js';
import { HeartbeatPublisher } from './heartbeat/heartbeat-publisher.js';
import { createAgentApp } from './http/agent-app.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { ModelRepository } from './models/model-repository.js';
import { CloudOffload } from './offload/cloud-offload.js';
import { InferenceRouter } from './offload/inference-router.js';
import { ModelSync } from './sync/model-sync.js';
import { ExampleStore } from './federated/example-store.js';
import { FederatedMetrics } from './federated/federated-metrics.js';
import { RoundClient } from './federated/round-client.js';
import { RoundTrainers } from './federated/round-trainers.js';

/** Where the repository keeps which version serves, across restarts (a hidden file: not a model). */
export const SERVING_SELECTION_FILE = '.serving.json';
/** Default home of the feedback examples, inside the models directory (hidden: not a model). */
export const FEEDBACK_DIR = '.feedback';

export const AGENT_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export class Agent {
  readonly config: AgentConfig;
  readonly repository: ModelRepository;
  readonly metrics: AgentMetrics;
  readonly app: ReturnType<typeof createAgentApp>;
  /** The cloud path, when the agent was given a NATS server. */
  readonly cloud: CloudOffload | undefined;
  readonly router: InferenceRouter;
  /** Model sync with the registry, when the agent was given a NATS server. */
  readonly sync: ModelSync | undefined;
  /** The heartbeat, when the agent was given a NATS server. */
  readonly heartbeat: HeartbeatPublisher | undefined;
  /** Labelled examples for federated training (`POST /v1/feedback`, `trainingData` files). */
  readonly examples: ExampleStore;
  /** The federated-learning client, when the agent was given a NATS server. */
  readonly federated: RoundClient | undefined;
  readonly #log: Logger;
  readonly #startedAt = new Date();
  #server: ServerType | undefined;
  #started = false;
  #draining = false;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  /**
   * @param options.signer signs heartbeats and federated updates with the enrolled identity's key
   *   (absent for an agent that did not enroll).
   */
  constructor(config: AgentConfig, logger: Logger, options: { signer?: MessageSigner } = {}) {
    this.config = config;
    this.#log = logger.child({ component: 'agent', agentId: config.id });
    this.metrics = new AgentMetrics({
      queueDepths: () =>
        this.repository
          .readyVersions()
          .map((m) => ({ model: m.name, version: m.version, depth: m.queueDepth })),
    });
    this.repository = new ModelRepository({
      modelsDir: config.modelsDir,
      watchIntervalMs: config.watchIntervalMs,
      selectionFile: join(config.modelsDir, SERVING_SELECTION_FILE),
      session: {
        backend: config.backend,
        ...(config.intraOpThreads > 0 ? { intraOpNumThreads: config.intraOpThreads } : {}),
      },
      limits: {
        maxQueueDepth: config.maxQueueDepth,
        maxConcurrentRuns: config.maxConcurrentRuns,
        maxBatchSize: config.maxBatchSize,
        batchWindowMs: config.batchWindowMs,
      },
      logger,
      events: {
        onLoad: (model, version, seconds, outcome) =>
          this.metrics.modelLoad.observe({ model, version, outcome }, seconds),
        onBatch: (model, version, stats) => {
          this.metrics.batchSize.observe({ model, version }, stats.requests);
          this.metrics.queueDelay.observe({ model, version }, stats.queueDelayMs / 1000);
        },
      },
    });
    this.cloud =
      config.nats === undefined
        ? undefined
        : new CloudOffload({
            natsUrl: config.nats,
            agentId: config.id,
            logger,
            onBreakerChange: (state) =>
              this.metrics.breakerState.set(state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0),
          });
    if (config.nats === undefined) {
      this.sync = undefined;
      this.heartbeat = undefined;
    } else {
      this.sync = new ModelSync({
        agentId: config.id,
        modelsDir: config.modelsDir,
        repository: this.repository,
        trustedPublisherKeys: config.trustedPublisherKeys,
        keepVersions: config.syncKeepVersions,
        idleTimeoutMs: config.syncIdleTimeoutMs,
        logger,
      });
      const heartbeat = new HeartbeatBuilder({
        agentId: config.id,
        agentVersion: AGENT_VERSION,
        startedAt: this.#startedAt,
        repository: this.repository,
        metrics: this.metrics,
        sync: this.sync,
        isReady: () => this.#started && !this.#draining,
      });
      this.heartbeat = new HeartbeatPublisher({
        agentId: config.id,
        signer: options.signer,
        intervalMs: config.heartbeatIntervalMs,
        // The fleet identity's labels (enrolled ones, else configured) ride in every heartbeat.
        build: async () => ({
          ...(await heartbeat.build()),
          ...(Object.keys(config.labels).length > 0 ? { labels: config.labels } : {}),
        }),
        logger,
      });
    }
    this.examples = new ExampleStore({
      dir: config.feedbackDir ?? join(config.modelsDir, FEEDBACK_DIR),
      maxExamplesPerModel: config.feedbackMaxExamples,
      trainingData: config.trainingData,
      logger,
    });
    this.federated =
      config.nats === undefined
        ? undefined
        : new RoundClient({
            agentId: config.id,
            signer: options.signer,
            trainers: new RoundTrainers({
              modelsDir: config.modelsDir,
              repository: this.repository,
              store: this.examples,
              session: { backend: config.backend },
              logger,
            }),
            metrics: new FederatedMetrics(this.metrics.registry),
            logger,
          });
    this.router = new InferenceRouter({
      repository: this.repository,
      cloud: this.cloud,
      defaultPolicy: config.defaultOffloadPolicy,
      offloadTimeoutMs: config.offloadTimeoutMs,
      onCascade: (model, escalated) =>
        this.metrics.cascade.inc({ model, outcome: escalated ? 'escalated' : 'local' }),
      onFallback: (model) => this.metrics.offloadFallbacks.inc({ model }),
    });
    this.app = createAgentApp({
      config,
      agentVersion: AGENT_VERSION,
      repository: this.repository,
      router: this.router,
      cloud: this.cloud,
      sync: this.sync,
      heartbeat: this.heartbeat,
      examples: this.examples,
      federated: this.federated,
      metrics: this.metrics,
      logger,
      startedAt: this.#startedAt,
      isStarted: () => this.#started,
      isDraining: () => this.#draining,
    });
  }

  /** The bound URL (after start). */
  get url(): string {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('agent not started');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Loads the models present now, then listens. Resolves when ready to serve. */
  async start(): Promise<void> {
    this.cloud?.start();
    await this.repository.start();
    // Sync and heartbeat share the offload connection, from the moment it is made.
    this.cloud?.onConnected((connection) => {
      this.sync?.attach(connection);
      this.heartbeat?.attach(connection);
      this.federated?.attach(connection);
    });
    const fetch = async (request: Request): Promise<Response> => {
      this.#inFlight += 1;
      try {
        const response = await this.app.fetch(request);
        // While draining, every connection ends after its response, so the server can close.
        if (this.#draining) response.headers.set('connection', 'close');
        return response;
      } finally {
        this.#inFlight -= 1;
        if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      }
    };
    await new Promise<void>((resolve, reject) => {
      const server = serve({ fetch, port: this.config.port, hostname: this.config.host }, () => resolve());
      server.once('error', reject);
      this.#server = server;
    });
    this.#started = true;
    this.#log.info(
      { url: this.url, models: this.repository.list().map((m) => `${m.name}@${m.servingVersion ?? '-'}`) },
      'agent ready',
    );
  }

  /** Graceful shutdown: refuse new requests, finish those in flight (up to shutdownTimeoutMs), release. */
  async stop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#log.info({ inFlight: this.#inFlight }, 'shutting down');
    // No new versions while shutting down (downloads in progress keep their partial files).
    const syncStopped = Promise.all([this.sync?.stop(), this.heartbeat?.stop(), this.federated?.stop()]);
    const server = this.#server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if ('closeIdleConnections' in (server ?? {}))
      (server as unknown as { closeIdleConnections(): void }).closeIdleConnections();
    const idle =
      this.#inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#idle.push(resolve));
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), this.config.shutdownTimeoutMs).unref(),
    );
    // Idle means every handler has returned its Response, not that it has been written: wait for the
    // connections to end (each closes after its response), and cut them only at the timeout.
    const drained = idle.then(() => closed).then(() => 'drained' as const);
    if ((await Promise.race([drained, timeout])) === 'timeout') {
      this.#log.warn({ inFlight: this.#inFlight }, 'shutdown timeout: closing remaining requests');
      if (server && 'closeAllConnections' in server)
        (server as unknown as { closeAllConnections(): void }).closeAllConnections();
    }
    await closed;
    await syncStopped;
    await this.repository.stop();
    await this.cloud?.stop();
    this.#log.info('stopped');
  }
}
