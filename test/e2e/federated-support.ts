/**
 * Shared pieces of the federated-learning end-to-end tests: a mesh (nats-server + a coordinator
 * process that signs versions, with short federated lease and scan intervals), the weak spam model
 * pushed as the base version with its trainable initializers, non-IID shards of the training split
 * (two per corpus folder, so each client holds mostly one label), the held-out examples in the
 * shared example format, and protocol clients for runs without agent processes (the real agents
 * are in `federated-agents.ts`): each heartbeats like an agent serving the model, answers round
 * tasks, trains for real (the demo model's own trainer, warm-started from the task's global
 * weights) or poisons (trains on flipped labels with its own Adam rate, boosts its delta tenfold
 * and claims a large example count), and publishes its update with JetStream like an agent.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import {
  agentHeartbeatSchema,
  agentHeartbeatSubject,
  decode,
  encode,
  flRoundTaskSchema,
  flRoundTaskSubject,
  flTaskReplySchema,
  flUpdateSchema,
  flUpdateSubject,
} from '@infermesh/protocols';
import type {
  FlRoundTask,
  FlRunDetail,
  FlTensor,
  LabelledExample,
  ModelManifest,
} from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import {
  SPAM_GROUPS,
  buildWeakSpamModel,
  createFeaturizer,
  loadSpamCorpus,
  readSpamModel,
  splitCorpus,
  trainClassifier,
} from '@infermesh/demo-models';
import type { SpamExample, SparseVector } from '@infermesh/demo-models';
import { startNatsServer } from '../harness/index.js';
import type { NatsServer } from '../harness/index.js';
import { sha256Hex } from '../harness/registry.js';
import { startCoordinator } from './data-plane-support.js';
import type { StartedCoordinator } from './data-plane-support.js';
import { AdminApi } from './sync-support.js';

export const FL_MODEL = 'spam';
export const FL_BASE_VERSION = '1';
/** One example in this many leaves its folder's clients (the shards' non-IID-ness). */
const SPILL_EVERY = 5;
const TRAINABLE = ['dense1.weight', 'dense1.bias', 'dense2.weight', 'dense2.bias'];
/** Adam step of a poisoning client, whatever the task says (a task's rate suits the agents' SGD). */
const POISON_LEARNING_RATE = 0.003;
/** Examples a poisoning client claims (and announces in its task reply) to outweigh the others. */
const POISON_CLAIMED_EXAMPLES = 100_000;

/** The data every test of a file shares (built once: the weak model trains in a few seconds). */
export interface FlData {
  readonly baseBytes: Uint8Array;
  readonly heldout: readonly SpamExample[];
  /** Ten non-IID training shards: two per corpus folder. */
  readonly shards: readonly (readonly SpamExample[])[];
}

/** Builds the weak base model and the shards. */
export async function loadFlData(): Promise<FlData> {
  const build = await buildWeakSpamModel();
  const { train, heldout } = splitCorpus(loadSpamCorpus());
  // Each example goes to one of its folder's two clients, or (1 in SPILL_EVERY) to a client
  // chosen by its position: every client sees mostly one folder's label, a little of the others.
  const shards: SpamExample[][] = Array.from({ length: SPAM_GROUPS.length * 2 }, () => []);
  train.forEach((example, i) => {
    const home = SPAM_GROUPS.indexOf(example.group) * 2 + (i % 2);
    shards[i % SPILL_EVERY === 0 ? ((i / SPILL_EVERY) * 7) % shards.length : home]!.push(example);
  });
  return { baseBytes: build.bytes, heldout, shards };
}

/** The shared example format of the held-out data. */
export function asLabelled(examples: readonly SpamExample[]): LabelledExample[] {
  return examples.map((e) => ({ inputs: { text: e.text }, label: e.label }));
}

/** nats-server, a coordinator, the admin API and a test connection. */
export interface FlMesh {
  readonly nats: NatsServer;
  coordinator: StartedCoordinator;
  admin: AdminApi;
  readonly connection: MeshConnection;
  readonly dir: string;
  /** Starts the coordinator again (after a kill), on a new admin port. */
  restartCoordinator(): Promise<void>;
  dispose(): Promise<void>;
}

/** Starts the mesh and pushes `baseBytes` as spam@1 with its trainable tensors. */
export async function startFlMesh(baseBytes: Uint8Array): Promise<FlMesh> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'im-fl-e2e-'));
  const start = (): Promise<StartedCoordinator> =>
    startCoordinator(
      nats.url,
      'c-fl',
      ['--publisher-key-file', join(dir, 'publisher.pem'), '--warmup-ms', '0'],
      {
        INFERMESH_FL_LEASE_TTL_MS: '3000',
        INFERMESH_FL_SCAN_INTERVAL_MS: '500',
      },
    );
  const coordinator = await start();
  const connection = await connectMesh(nats.url, { name: 'e2e-fl' });
  const mesh: FlMesh = {
    nats,
    coordinator,
    admin: new AdminApi(coordinator.adminUrl),
    connection,
    dir,
    async restartCoordinator() {
      mesh.coordinator = await start();
      mesh.admin = new AdminApi(mesh.coordinator.adminUrl);
    },
    async dispose() {
      await connection.close();
      await mesh.coordinator.process.stop();
      await nats.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
  const sha256 = sha256Hex(baseBytes);
  await mesh.admin.call('PUT', `/artifacts/${sha256}`, undefined, baseBytes);
  (await mesh.admin.call('POST', `/models/${FL_MODEL}/versions`, {
    version: FL_BASE_VERSION,
    variants: { cloud: { sha256 } },
    trainable: TRAINABLE,
  })) as ModelManifest;
  return mesh;
}

/** Polls a run until it has ended (any state but `running`). */
export function waitForRunEnd(admin: () => AdminApi, runId: string, timeoutMs: number): Promise<FlRunDetail> {
  return waitForRun(admin, runId, (r) => r.state !== 'running', timeoutMs);
}

/** Polls a run until `done` holds for its record (or the time is up). */
export async function waitForRun(
  admin: () => AdminApi,
  runId: string,
  done: (run: FlRunDetail) => boolean,
  timeoutMs: number,
): Promise<FlRunDetail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let run: FlRunDetail | undefined;
    try {
      run = (await admin().call('GET', `/fl/runs/${runId}`)) as FlRunDetail;
    } catch {
      // coordinator restarting
    }
    if (run && done(run)) return run;
    if (Date.now() > until)
      throw new Error(`run ${runId} not done in ${timeoutMs} ms: ${JSON.stringify(run?.state)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function floats(tensor: FlTensor): Float32Array {
  const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return Float32Array.from({ length: tensor.data.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function tensorOf(name: string, dims: readonly number[], values: Float32Array): FlTensor {
  const data = new Uint8Array(values.length * 4);
  const view = new DataView(data.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims: [...dims], data };
}

/** How a protocol client behaves. */
export type ClientBehaviour = 'honest' | 'poison';

/** Options of {@link ProtocolClient}. */
export interface ProtocolClientOptions {
  readonly agentId: string;
  readonly connection: MeshConnection;
  readonly baseBytes: Uint8Array;
  readonly examples: readonly SpamExample[];
  readonly behaviour: ClientBehaviour;
  /** Holds publishing until it resolves (to publish while no coordinator runs). */
  readonly gate?: (task: FlRoundTask) => Promise<void>;
}

/** A client speaking the federated protocol like an agent, trained with the demo model's trainer. */
export class ProtocolClient {
  /** `roundId` -> when its update was acknowledged by the stream. */
  readonly published = new Map<string, number>();
  readonly #features: SparseVector[];
  readonly #labels: Uint8Array;
  readonly #inputSize: number;
  readonly #hiddenSize: number;
  readonly #timer: NodeJS.Timeout;
  readonly #subscription;

  constructor(private readonly options: ProtocolClientOptions) {
    const parts = readSpamModel(options.baseBytes);
    const featurizer = createFeaturizer(parts.vocabulary);
    this.#features = options.examples.map((e) => featurizer.featurize(e.text));
    this.#labels = Uint8Array.from(options.examples, (e) => e.label);
    this.#inputSize = parts.classifier.inputSize;
    this.#hiddenSize = parts.classifier.hiddenSize;
    const nc = options.connection.nc;
    const beat = (): void => {
      nc.publish(
        agentHeartbeatSubject(options.agentId),
        encode(agentHeartbeatSchema, {
          agentId: options.agentId,
          at: Date.now(),
          uptimeS: 1,
          models: [{ name: FL_MODEL, version: FL_BASE_VERSION, state: 'ready', requests: 0, errors: 0 }],
          health: 'ok',
        }),
      );
    };
    beat();
    this.#timer = setInterval(beat, 500);
    this.#subscription = nc.subscribe(flRoundTaskSubject(options.agentId), {
      callback: (_err, msg) => {
        const task = decode(flRoundTaskSchema, msg.data);
        // A poisoning client announces the count it will claim (an update claiming more is refused).
        const examples = options.behaviour === 'poison' ? POISON_CLAIMED_EXAMPLES : options.examples.length;
        msg.respond(encode(flTaskReplySchema, { accepted: true, examples }));
        void this.#train(task).catch(() => undefined);
      },
    });
  }

  async #train(task: FlRoundTask): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const global = task.weights.map(floats);
    const poison = this.options.behaviour === 'poison';
    // A poisoning client trains on flipped labels, boosts its delta tenfold and claims many examples.
    const labels = poison ? this.#labels.map((l) => 1 - l) : this.#labels;
    const numExamples = poison ? POISON_CLAIMED_EXAMPLES : this.options.examples.length;
    const learningRate = poison ? POISON_LEARNING_RATE : task.hyperparameters.learningRate;
    const trained = trainClassifier({ features: this.#features, labels }, this.#inputSize, {
      hiddenSize: this.#hiddenSize,
      epochs: task.hyperparameters.localEpochs,
      seed: task.seed ?? 1,
      batchSize: task.hyperparameters.batchSize,
      learningRate,
      initial: {
        inputSize: this.#inputSize,
        hiddenSize: this.#hiddenSize,
        parameters: task.weights.map((t, i) => ({ name: t.name, dims: t.dims, data: global[i]! })),
      },
    });
    const boost = poison ? 10 : 1;
    const delta = trained.parameters.map((p, i) => p.data.map((v, k) => boost * (v - global[i]![k]!)));
    await this.options.gate?.(task);
    const update = encode(flUpdateSchema, {
      runId: task.runId,
      roundId: task.roundId,
      round: task.round,
      agentId: this.options.agentId,
      numExamples,
      delta: task.weights.map((t, i) => tensorOf(t.name, t.dims, delta[i]!)),
      metrics: { loss: 0.1, accuracy: 0.9, trainMs: 1 },
    });
    const js = jetstream(this.options.connection.nc);
    for (;;) {
      try {
        await js.publish(flUpdateSubject(task.roundId), update, {
          msgID: `${task.roundId}.${this.options.agentId}`,
        });
        this.published.set(task.roundId, Date.now());
        return;
      } catch {
        if (Date.now() > task.deadlineAt) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#subscription.unsubscribe();
  }
}
