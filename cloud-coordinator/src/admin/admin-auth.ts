/**
 * Bearer-token authentication of the admin API: every `/api/v1/*` call carries
 * `Authorization: Bearer <token>`, either the coordinator's configured `adminToken` (the bootstrap
 * credential, principal `admin` with the admin role, compared in constant time) or a user's API
 * token `imk_<id>_<secret>` checked by the {@link UsersStore}. A missing, malformed, unknown,
 * revoked or expired token is 401 UNAUTHENTICATED. The middleware sets the caller's `Principal`
 * (`c.get('principal')`); routes check roles with `requireRole`.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { API_TOKEN_PREFIX, ErrorCode, InferMeshError } from '@infermesh/protocols';
import type { AdminEnv, Principal } from './principal.js';
import { BOOTSTRAP_ADMIN_NAME } from './users-store.js';
import type { UsersStore } from './users-store.js';

// Hashing both sides first gives equal-length buffers, so the comparison's time does not depend
// on where they differ or on the presented token's length.
const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** True when `presented` equals `expected`, in time independent of their contents. */
export function tokensMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function unauthenticated(message: string): InferMeshError {
  return new InferMeshError(ErrorCode.UNAUTHENTICATED, message);
}

/** What {@link authenticate} accepts. */
export interface AuthenticateOptions {
  /** The bootstrap token (principal `admin`, role admin); absent: only user tokens work. */
  readonly adminToken?: string | undefined;
  /** The users; absent: only the bootstrap token works. */
  readonly users?: UsersStore | undefined;
}

const BOOTSTRAP_PRINCIPAL: Principal = Object.freeze({ name: BOOTSTRAP_ADMIN_NAME, role: 'admin' });

/**
 * Middleware refusing (401 UNAUTHENTICATED) any request without a valid bearer token, and setting
 * the caller's principal otherwise.
 * @example
 * api.use('*', authenticate({ adminToken: config.adminToken, users }));
 */
export function authenticate(options: AuthenticateOptions): MiddlewareHandler<AdminEnv> {
  const { adminToken, users } = options;
  return async (c, next) => {
    if (adminToken === undefined && users === undefined) {
      throw unauthenticated('the admin API is closed: the coordinator has no adminToken configured');
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthenticated('missing bearer token (Authorization: Bearer <token>)');
    const token = match[1] as string;
    let principal: Principal;
    if (token.startsWith(`${API_TOKEN_PREFIX}_`) && users !== undefined) {
      principal = await users.authenticate(token);
    } else if (adminToken !== undefined && tokensMatch(token, adminToken)) {
      principal = BOOTSTRAP_PRINCIPAL;
    } else {
      throw unauthenticated('invalid bearer token');
    }
    c.set('principal', principal);
    c.header('Cache-Control', 'no-store');
    await next();
  };
}
