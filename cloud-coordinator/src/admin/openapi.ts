/**
 * The OpenAPI 3.1 document of the admin API (`GET /api/v1/openapi.json`), generated from the
 * `RouteDoc[]` lists the route modules export: bodies and answers become JSON Schemas with zod's
 * `z.toJSONSchema`, every operation carries the bearer security scheme and `x-required-role`.
 * @module
 */
import { z } from 'zod';
import { apiErrorBodySchema } from '@infermesh/protocols';
import type { RouteDoc } from './route-doc.js';

/** Title and version of the document. */
export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
}

type JsonSchema = Record<string, unknown>;

const schemaOf = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiError' } } },
});

function parametersOf(doc: RouteDoc): unknown[] {
  const params: unknown[] = [...doc.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  if (doc.query) {
    const query = schemaOf(doc.query, 'input');
    const properties = (query['properties'] ?? {}) as Record<string, JsonSchema>;
    const required = new Set((query['required'] ?? []) as string[]);
    for (const [name, schema] of Object.entries(properties)) {
      const { description, ...rest } = schema;
      params.push({
        name,
        in: 'query',
        required: required.has(name),
        ...(description === undefined ? {} : { description }),
        schema: rest,
      });
    }
  }
  return params;
}

function operationOf(doc: RouteDoc): Record<string, unknown> {
  const status = String(doc.status ?? 200);
  const success = doc.response
    ? {
        description: 'success',
        content: { 'application/json': { schema: schemaOf(doc.response, 'output') } },
      }
    : { description: 'success' };
  const parameters = parametersOf(doc);
  return {
    summary: doc.summary,
    tags: [doc.tag],
    operationId: `${doc.method}${doc.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
    security: [{ bearer: [] }],
    'x-required-role': doc.role,
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(doc.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: schemaOf(doc.body, 'input') } },
          },
        }
      : {}),
    responses: {
      [status]: success,
      '400': errorResponse('invalid input (INVALID_INPUT)'),
      '401': errorResponse('missing, unknown, revoked or expired token (UNAUTHENTICATED)'),
      '403': errorResponse(`the caller's role is weaker than ${doc.role} (FORBIDDEN)`),
    },
  };
}

/**
 * The OpenAPI document of every route in `lists` (one list per route module), paths under
 * `/api/v1`.
 * @example
 * buildOpenApiDocument([MODEL_ROUTE_DOCS, FLEET_ROUTE_DOCS, ROLLOUT_ROUTE_DOCS], info);
 */
export function buildOpenApiDocument(
  lists: readonly (readonly RouteDoc[])[],
  info: OpenApiInfo,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const doc of lists.flat()) {
    const item = (paths[`/api/v1${doc.path}`] ??= {});
    item[doc.method] = operationOf(doc);
  }
  const sorted = Object.fromEntries(Object.entries(paths).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    openapi: '3.1.0',
    info: {
      title: info.title,
      version: info.version,
      description: 'InferMesh coordinator admin API. Every call needs `Authorization: Bearer <token>`.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }],
    paths: sorted,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: "The coordinator's adminToken, or a user's imk_<id>_<secret> token",
        },
      },
      schemas: { ApiError: schemaOf(apiErrorBodySchema, 'output') },
    },
  };
}
