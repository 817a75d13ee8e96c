/**
 * Admin API routes of models and versions:
 * - `GET /api/v1/models`: every model with its versions.
 * - `GET /api/v1/models/{name}`: a model's versions with their variants.
 * - `POST /api/v1/models/{name}/versions`: create a version from uploaded artifacts
 *   (`CreateModelVersionRequest`); 201 with the signed manifest; 409 when it exists or existed.
 * - `GET /api/v1/models/{name}/versions/{version}`: a version's manifest.
 * - `DELETE /api/v1/models/{name}/versions/{version}`: 204; 409 naming the agents that want it.
 * @module
 */
import { Hono } from 'hono';
import {
  createModelVersionRequestSchema,
  modelDetailsSchema,
  modelListSchema,
  modelManifestSchema,
  modelNameSchema,
  modelVersionSchema,
} from '@infermesh/protocols';
import type { ModelList } from '@infermesh/protocols';
import type { ModelRegistry } from '../registry/model-registry.js';
import { jsonBody, pathParam } from './http-errors.js';
import { noteAudit, principalOf, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** The documentation of {@link modelRoutes}. */
export const MODEL_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/models',
    summary: 'Every model with its versions',
    role: 'viewer',
    tag: 'models',
    response: modelListSchema,
  },
  {
    method: 'get',
    path: '/models/{name}',
    summary: "A model's versions with their variants",
    role: 'viewer',
    tag: 'models',
    response: modelDetailsSchema,
  },
  {
    method: 'post',
    path: '/models/{name}/versions',
    summary: 'Create a signed model version from uploaded artifacts',
    role: 'operator',
    tag: 'models',
    body: createModelVersionRequestSchema,
    response: modelManifestSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/models/{name}/versions/{version}',
    summary: "A version's manifest",
    role: 'viewer',
    tag: 'models',
    response: modelManifestSchema,
  },
  {
    method: 'delete',
    path: '/models/{name}/versions/{version}',
    summary: 'Delete a version no agent wants',
    role: 'operator',
    tag: 'models',
    status: 204,
  },
];

/** The model routes, to mount under `/api/v1`. */
export function modelRoutes(registry: ModelRegistry): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/models', requireRole('viewer'), async (c) => {
    const answer: ModelList = { models: await registry.listModels() };
    return c.json(answer);
  });

  app.get('/models/:name', requireRole('viewer'), async (c) => {
    const name = pathParam(c, 'name', modelNameSchema);
    return c.json(await registry.getModel(name));
  });

  app.post('/models/:name/versions', requireRole('operator'), async (c) => {
    const name = pathParam(c, 'name', modelNameSchema);
    const request = await jsonBody(c, createModelVersionRequestSchema, 'create-version request');
    noteAudit(c, { action: 'model.version.create', target: `${name}@${request.version}` });
    const manifest = await registry.createVersion(name, request, principalOf(c).name);
    c.header('Location', `/api/v1/models/${name}/versions/${encodeURIComponent(manifest.version)}`);
    return c.json(manifest, 201);
  });

  app.get('/models/:name/versions/:version', requireRole('viewer'), async (c) => {
    const name = pathParam(c, 'name', modelNameSchema);
    const version = pathParam(c, 'version', modelVersionSchema);
    return c.json(await registry.getManifest(name, version));
  });

  app.delete('/models/:name/versions/:version', requireRole('operator'), async (c) => {
    const name = pathParam(c, 'name', modelNameSchema);
    const version = pathParam(c, 'version', modelVersionSchema);
    noteAudit(c, { action: 'model.version.delete', target: `${name}@${version}` });
    await registry.deleteVersion(name, version);
    return c.body(null, 204);
  });

  return app;
}
