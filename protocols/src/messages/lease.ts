/**
 * A lease: how work that must have exactly one owner across coordinator replicas (driving a
 * rollout, driving a federated run) gets one (DESIGN.md section 2). The value lives in a KV bucket
 * next to the work it guards and is taken, renewed and released with compare-and-set on the key's
 * revision; anyone may take it over once `expiresAt` has passed.
 * @module
 */
import { z } from 'zod';
import { epochMsSchema } from './primitives.js';

export const leaseSchema = z.object({
  /** Who holds it: a coordinator id, or a coordinator instance (`<id>/<random>`). */
  holder: z.string().min(1).max(256),
  acquiredAt: epochMsSchema,
  renewedAt: epochMsSchema,
  /** Others may take it over after this instant (ms since the epoch). */
  expiresAt: epochMsSchema,
});
export type Lease = z.infer<typeof leaseSchema>;
