/**
 * The description of one admin API route, from which the OpenAPI document
 * (`GET /api/v1/openapi.json`) is generated. Every route module exports the list of its routes
 * next to the Hono app that serves them, so the document cannot drift from the code (a test
 * checks that every served route is documented).
 * @module
 */
import type { z } from 'zod';
import type { Role } from '@infermesh/protocols';

/** One documented route of `/api/v1`. */
export interface RouteDoc {
  readonly method: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';
  /** OpenAPI path under `/api/v1`, parameters in braces: `/rollouts/{id}/pause`. */
  readonly path: string;
  readonly summary: string;
  /** The weakest role that may call it. */
  readonly role: Role;
  /** Tag grouping it in the document (`fleet`, `rollouts`, `models`, ...). */
  readonly tag: string;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  /** Schema of a 200/201 JSON answer (absent: 204 or a non-JSON body). */
  readonly response?: z.ZodType;
  /** Status of a success, 200 by default. */
  readonly status?: number;
}
