/**
 * `infermesh users create|list|revoke`: admin API users and their roles (viewer, operator, admin),
 * through the coordinator's admin API (admin role). `create` prints the user's API token, which is
 * shown only once.
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { ROLES } from '@infermesh/protocols';
import type { Role } from '@infermesh/protocols';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { createUser, listUsers, revokeUser } from '../fleet-client.js';
import { parseDurationMs } from './cli-values.js';
import { withAdminFlags } from './models.js';

/** Registers `infermesh users`. */
export function registerUsers(program: Command): void {
  const users = program.command('users').description('admin API users: create, list, revoke');
  withAdminFlags(
    users
      .command('create')
      .description('create a user and print its API token (shown once)')
      .argument('<name>', 'user name')
      .addOption(new Option('--role <role>', 'what the user may do').choices(ROLES).default('viewer'))
      .option('--ttl <duration>', 'token lifetime (90s, 15m, 1h, 7d); none: no expiry')
      .option('--json', 'print JSON'),
  ).action(
    async (name: string, flags: AdminConnectionFlags & { role: Role; ttl?: string; json?: boolean }) => {
      const ttlMs = flags.ttl === undefined ? undefined : parseDurationMs(flags.ttl);
      const created = await createUser(AdminClient.fromFlags(flags), name, flags.role, ttlMs);
      if (flags.json) console.log(JSON.stringify(created, null, 2));
      else console.log(created.token);
    },
  );
  withAdminFlags(users.command('list').description('list users').option('--json', 'print JSON')).action(
    async (flags: AdminConnectionFlags & { json?: boolean }) => {
      const { users: list } = await listUsers(AdminClient.fromFlags(flags));
      if (flags.json) {
        console.log(JSON.stringify(list, null, 2));
        return;
      }
      if (list.length === 0) console.log('no users');
      for (const u of list) {
        const expiry =
          u.expiresAt === undefined
            ? 'no expiry'
            : `${u.expired ? 'expired' : 'expires'} ${new Date(u.expiresAt).toISOString()}`;
        console.log(`${u.name}  ${u.role}  ${expiry}  by ${u.createdBy}`);
      }
    },
  );
  withAdminFlags(
    users.command('revoke').description("revoke a user's API token").argument('<name>', 'user name'),
  ).action(async (name: string, flags: AdminConnectionFlags) => {
    await revokeUser(AdminClient.fromFlags(flags), name);
    console.log(`revoked ${name}`);
  });
}
