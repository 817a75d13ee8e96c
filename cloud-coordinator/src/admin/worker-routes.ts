/**
 * `GET /api/v1/workers` (viewer): the routing table: each live worker's last load report, the
 * requests this router forwarded since, and whether it is ejected.
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { EjectionList } from '../router/ejection.js';
import { outstandingOf } from '../router/worker-table.js';
import type { WorkerTable } from '../router/worker-table.js';
import { requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** One row of `GET /api/v1/workers`. */
export const workerRowSchema = z.object({
  id: z.string(),
  device: z.string(),
  capacity: z.number(),
  queueDepth: z.number(),
  inFlight: z.number(),
  /** Reported work plus requests forwarded by this router since the report. */
  outstanding: z.number(),
  loadedModels: z.array(z.object({ name: z.string(), version: z.string() })),
  /** Age of the last load report, in ms. */
  reportAgeMs: z.number(),
  /** Remaining ejection in ms, when ejected. */
  ejectedForMs: z.number().optional(),
});
export type WorkerRow = z.infer<typeof workerRowSchema>;

/** The documentation of {@link workerRoutes}. */
export const WORKER_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/workers',
    summary: 'The routing table: live workers, their load and ejections',
    role: 'viewer',
    tag: 'workers',
    response: z.object({ workers: z.array(workerRowSchema) }),
  },
];

/** Options of {@link workerRoutes}. */
export interface WorkerRoutesOptions {
  readonly table: WorkerTable;
  readonly ejections: EjectionList;
  /** Monotonic clock in ms, the one the table and ejections use. */
  readonly now: () => number;
}

/** The routing-table route, to mount under `/api/v1`. */
export function workerRoutes(options: WorkerRoutesOptions): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get('/workers', requireRole('viewer'), (c) => {
    const t = options.now();
    const ejected = new Map(options.ejections.list().map((e) => [e.workerId, e.until]));
    const workers: WorkerRow[] = options.table
      .live()
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((w) => {
        const until = ejected.get(w.id);
        return {
          id: w.id,
          device: w.load.device,
          capacity: w.load.capacity,
          queueDepth: w.load.queueDepth,
          inFlight: w.load.inFlight,
          outstanding: outstandingOf(w),
          loadedModels: w.load.loadedModels.map((m) => ({ name: m.name, version: m.version })),
          reportAgeMs: Math.round(t - w.receivedAt),
          ...(until === undefined ? {} : { ejectedForMs: Math.round(until - t) }),
        };
      });
    return c.json({ workers });
  });
  return app;
}
