/**
 * Admin API routes of users (admin role):
 * - `POST /api/v1/users` (`CreateUserRequest`): 201 with the user's API token, shown only here;
 *   409 CONFLICT when a live user has the name (or it is the reserved `admin`).
 * - `GET /api/v1/users`: every user without secrets.
 * - `DELETE /api/v1/users/{name}`: revoke (204); every coordinator refuses the token at once.
 * @module
 */
import { Hono } from 'hono';
import {
  createUserRequestSchema,
  createUserResponseSchema,
  userListSchema,
  userNameSchema,
} from '@infermesh/protocols';
import type { UserList } from '@infermesh/protocols';
import { jsonBody, pathParam } from './http-errors.js';
import { noteAudit, principalOf, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';
import type { UsersStore } from './users-store.js';

/** The documentation of {@link userRoutes}. */
export const USER_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'post',
    path: '/users',
    summary: 'Create a user and its API token (shown once)',
    role: 'admin',
    tag: 'users',
    body: createUserRequestSchema,
    response: createUserResponseSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/users',
    summary: 'Every user, without secrets',
    role: 'admin',
    tag: 'users',
    response: userListSchema,
  },
  {
    method: 'delete',
    path: '/users/{name}',
    summary: "Revoke a user's API token",
    role: 'admin',
    tag: 'users',
    status: 204,
  },
];

/** The user routes, to mount under `/api/v1`. */
export function userRoutes(users: UsersStore): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.post('/users', requireRole('admin'), async (c) => {
    const request = await jsonBody(c, createUserRequestSchema, 'create-user request');
    noteAudit(c, { action: 'user.create', target: request.name, details: { role: request.role } });
    const created = await users.create(request, principalOf(c).name);
    return c.json(created, 201);
  });

  app.get('/users', requireRole('admin'), async (c) => {
    const answer: UserList = { users: await users.list() };
    return c.json(answer);
  });

  app.delete('/users/:name', requireRole('admin'), async (c) => {
    const name = pathParam(c, 'name', userNameSchema);
    noteAudit(c, { action: 'user.revoke', target: name });
    await users.revoke(name);
    return c.body(null, 204);
  });

  return app;
}
