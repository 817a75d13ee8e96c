/**
 * Fleet benchmark: 10,000 simulated agents heartbeating every 5 s (with jitter) against ONE
 * coordinator process. Measures, over a bounded window after a warm-up, the coordinator's and
 * nats-server's CPU share of one core (/proc/<pid>/stat), heartbeats per second, and the latency of
 * the fleet list API (`GET /api/v1/fleet/agents`, default page and filtered by a label selector)
 * issued ~20 times a second; the same list latency with the fleet idle is the baseline (ratio).
 * Targets: coordinator CPU < 50 % of one core; list p99 < 100 ms under load.
 * @module
 */
import type { FleetAgentList } from '@infermesh/protocols';
import { E2E_ADMIN_TOKEN, startCoordinator, startNatsServer } from '../../harness/index.js';
import { report } from '../report.js';
import type { Target } from '../report.js';
import { quantile } from '../stats.js';
import { processCpuSeconds } from './data-plane-fixtures.js';
import { FleetSimulator, SIMULATED_SITES } from './fleet-simulator.js';

const AGENTS = 10_000;
const CONNECTIONS = 8;
const HEARTBEAT_INTERVAL_MS = 5_000;
const WARMUP_MS = 6_000;
const WINDOW_MS = 30_000;
const IDLE_WINDOW_MS = 6_000;
const LIST_RATE_PER_S = 20;
const SELECTOR = 'site=site-3';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ListLatencies {
  readonly all: number[];
  readonly filtered: number[];
}

/** Issues list requests at ~LIST_RATE_PER_S for `ms`, alternating default page and selector. */
async function measureList(adminUrl: string, ms: number): Promise<ListLatencies> {
  const latencies: ListLatencies = { all: [], filtered: [] };
  const headers = { authorization: `Bearer ${E2E_ADMIN_TOKEN}` };
  const pending: Promise<void>[] = [];
  const stopAt = performance.now() + ms;
  for (let i = 0; performance.now() < stopAt; i++) {
    const filtered = i % 2 === 1;
    const url = `${adminUrl}/api/v1/fleet/agents${filtered ? `?selector=${encodeURIComponent(SELECTOR)}` : ''}`;
    pending.push(
      (async () => {
        const t0 = performance.now();
        const response = await fetch(url, { headers });
        const body = (await response.json()) as FleetAgentList;
        if (response.status !== 200 || body.agents.length === 0) {
          throw new Error(`fleet list answered ${response.status}: ${JSON.stringify(body).slice(0, 200)}`);
        }
        (filtered ? latencies.filtered : latencies.all).push(performance.now() - t0);
      })(),
    );
    await sleep(1000 / LIST_RATE_PER_S);
  }
  await Promise.all(pending);
  return latencies;
}

async function fleetTotal(adminUrl: string, query: string): Promise<number> {
  const response = await fetch(`${adminUrl}/api/v1/fleet/agents?limit=1${query}`, {
    headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
  });
  return ((await response.json()) as FleetAgentList).total;
}

const summary = (samples: readonly number[]) => ({
  requests: samples.length,
  p50Ms: quantile(samples, 0.5),
  p95Ms: quantile(samples, 0.95),
  p99Ms: quantile(samples, 0.99),
});

export async function fleetSuite(): Promise<boolean> {
  const nats = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
  const coordinator = await startCoordinator(nats.url, 'coord-fleet-bench');
  const simulator = new FleetSimulator({
    natsUrl: nats.url,
    agents: AGENTS,
    connections: CONNECTIONS,
    intervalMs: HEARTBEAT_INTERVAL_MS,
  });
  try {
    const coordinatorPid = coordinator.process.pid ?? 0;
    const natsPid = nats.pid ?? 0;
    await simulator.connect();
    await simulator.enrollAll();
    // Every agent known to the registry before anything is measured.
    await simulator.announceAll(3_000);
    for (let i = 0; i < 100 && (await fleetTotal(coordinator.adminUrl, '')) < AGENTS; i++) await sleep(200);
    const registered = await fleetTotal(coordinator.adminUrl, '');

    // Baseline: the same fleet, idle (no heartbeats arriving).
    const idle = await measureList(coordinator.adminUrl, IDLE_WINDOW_MS);

    // Load: heartbeats every 5 s per agent; warm up, then measure CPU and list latency together.
    simulator.start();
    await sleep(WARMUP_MS);
    const cpu0 = { coordinator: processCpuSeconds(coordinatorPid), nats: processCpuSeconds(natsPid) };
    const published0 = simulator.published;
    const t0 = performance.now();
    const loaded = await measureList(coordinator.adminUrl, WINDOW_MS);
    const wallS = (performance.now() - t0) / 1000;
    const coordinatorCpu = (processCpuSeconds(coordinatorPid) - cpu0.coordinator) / wallS;
    const natsCpu = (processCpuSeconds(natsPid) - cpu0.nats) / wallS;
    const heartbeatsPerS = (simulator.published - published0) / wallS;
    const total = await fleetTotal(coordinator.adminUrl, '');
    const online = await fleetTotal(coordinator.adminUrl, '&presence=online');
    simulator.stop();

    const rows = [
      { phase: 'idle', query: 'default page', ...summary(idle.all) },
      { phase: 'idle', query: SELECTOR, ...summary(idle.filtered) },
      { phase: 'load', query: 'default page', ...summary(loaded.all) },
      { phase: 'load', query: SELECTOR, ...summary(loaded.filtered) },
      {
        phase: 'load',
        query: 'processes',
        coordinatorCpuCores: coordinatorCpu,
        natsCpuCores: natsCpu,
        heartbeatsPerS,
        fleetTotal: total,
        online,
        registeredBeforeLoad: registered,
      },
    ];
    const loadedAll = [...loaded.all, ...loaded.filtered];
    const idleAll = [...idle.all, ...idle.filtered];
    const targets: Target[] = [
      {
        name: 'coordinator CPU share of one core under 10k agents / 5 s',
        value: coordinatorCpu,
        limit: 0.5,
        kind: 'max',
      },
      { name: 'fleet list p99 under load (ms)', value: quantile(loadedAll, 0.99), limit: 100, kind: 'max' },
      { name: 'fleet total = agents simulated', value: total, limit: AGENTS, kind: 'min' },
      { name: 'agents online at the end of the window', value: online, limit: AGENTS, kind: 'min' },
    ];
    return await report({
      suite: 'fleet',
      rows,
      targets,
      notes: [
        `${AGENTS} simulated agents over ${CONNECTIONS} NATS connections, one heartbeat each per ${HEARTBEAT_INTERVAL_MS} ms +-10 %, ` +
          `labels site (${SIMULATED_SITES} sites) and hw; 1-2 models with counters and p50/p95, sync entries, hardware; ` +
          'every agent enrolled (fleet record with its ed25519 key) and every heartbeat signed, so the coordinator verifies each',
        `window ${WINDOW_MS / 1000} s after a ${WARMUP_MS / 1000} s warm-up; list requests ~${LIST_RATE_PER_S}/s alternating the default page (100) and ?selector=${SELECTOR}`,
        `list p99 ratio load/idle: ${(quantile(loadedAll, 0.99) / quantile(idleAll, 0.99)).toFixed(2)} ` +
          `(p50 ${(quantile(loadedAll, 0.5) / quantile(idleAll, 0.5)).toFixed(2)}); ` +
          'CPU from /proc/<pid>/stat utime+stime over the window; the simulator and the client share the machine',
      ],
    });
  } finally {
    await simulator.close().catch(() => undefined);
    await coordinator.process.stop();
    await nats.dispose();
  }
}
