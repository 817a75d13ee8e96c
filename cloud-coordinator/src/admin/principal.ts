/**
 * Who is calling the admin API, and what their role allows. The authentication middleware sets
 * the caller's {@link Principal} on the Hono context (`c.get('principal')`); routes declare the
 * role they need with {@link requireRole} (viewer reads, operator steers rollouts, labels and
 * models, admin manages enrollment tokens and users), answering 403 FORBIDDEN to a weaker role.
 * Routes may describe what they did for the audit log with {@link noteAudit}.
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import { ErrorCode, InferMeshError, roleAllows } from '@infermesh/protocols';
import type { Role } from '@infermesh/protocols';

/** An authenticated caller. */
export interface Principal {
  /** The user's name (`admin` for the coordinator's bootstrap token). */
  readonly name: string;
  readonly role: Role;
}

/** What a route says about a mutating call, for its audit event. */
export interface AuditNote {
  /** A short machine-readable name (`rollout.start`, `token.create`, `labels.update`, ...). */
  action: string;
  /** The object acted on (`spam@3`, an agent id, a rollout id, ...). */
  target?: string;
  /** Extra facts worth keeping (never secrets). */
  details?: Record<string, unknown>;
}

/** The Hono environment of every `/api/v1` app. */
export interface AdminEnv {
  Variables: {
    principal: Principal;
    audit: AuditNote | undefined;
  };
}

/** The authenticated caller; throws UNAUTHENTICATED when the middleware did not run. */
export function principalOf(c: Context<AdminEnv>): Principal {
  const principal = c.get('principal') as Principal | undefined;
  if (principal === undefined) throw new InferMeshError(ErrorCode.UNAUTHENTICATED, 'not authenticated');
  return principal;
}

/**
 * Middleware answering 403 FORBIDDEN unless the caller's role includes `role`.
 * @example
 * app.post('/rollouts', requireRole('operator'), async (c) => { ... });
 */
export function requireRole(role: Role): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const principal = principalOf(c);
    if (!roleAllows(principal.role, role)) {
      throw new InferMeshError(
        ErrorCode.FORBIDDEN,
        `${c.req.method} ${c.req.path} needs the ${role} role; ${principal.name} is ${principal.role}`,
        { details: { needed: role, held: principal.role } },
      );
    }
    await next();
  };
}

/** Records what a mutating call did, for the audit event written after it answers. */
export function noteAudit(c: Context<AdminEnv>, note: AuditNote): void {
  c.set('audit', note);
}
