/**
 * The admin API's one error boundary: catalogue errors become `{ error, code }` with the
 * catalogue's HTTP status; anything else is logged and answered as INTERNAL without its details.
 * Also the helpers that validate path parameters and JSON bodies with the protocols' schemas.
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ErrorCode, invalidInput, parseOrThrow, toInferMeshError } from '@infermesh/protocols';
import type { InferMeshError } from '@infermesh/protocols';
import type { ApiErrorBody } from '@infermesh/protocols';

/** The JSON body of an error answer. */
export function errorBody(error: InferMeshError): ApiErrorBody {
  return {
    error: error.message,
    code: error.code,
    ...(error.details && error.code !== ErrorCode.INTERNAL ? { details: error.details } : {}),
  };
}

/** Hono's onError for the admin API. */
export function adminErrorHandler(logger: Logger): ErrorHandler {
  const log = logger.child({ component: 'coordinator.admin' });
  return (err, c) => {
    const error = toInferMeshError(err);
    if (error.code === ErrorCode.INTERNAL) {
      log.error({ err: error.cause ?? err, method: c.req.method, path: c.req.path }, 'admin request failed');
    }
    if (error.retryAfterSeconds !== undefined)
      c.header('Retry-After', String(Math.ceil(error.retryAfterSeconds)));
    const body =
      error.code === ErrorCode.INTERNAL ? { error: 'internal error', code: error.code } : errorBody(error);
    return c.json(body, error.httpStatus as ContentfulStatusCode);
  };
}

/** Hono's notFound for the admin API: a coded 404 rather than a text page. */
export const adminNotFound: NotFoundHandler = (c) =>
  c.json({ error: `no route ${c.req.method} ${c.req.path}`, code: ErrorCode.NOT_FOUND }, 404);

/** A path parameter validated with `schema` (INVALID_INPUT naming it). */
export function pathParam<S extends z.ZodType>(c: Context, name: string, schema: S): z.output<S> {
  return parseOrThrow(schema, c.req.param(name), name);
}

/** The JSON body validated with `schema`; INVALID_INPUT when it is not JSON or not valid. */
export async function jsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw invalidInput(`the ${what} must be a JSON object`);
  }
  return parseOrThrow(schema, json, what);
}
