/**
 * `infermesh tokens create|list|delete`: one-time enrollment tokens for new agents, through the
 * coordinator's admin API (admin role). `create` prints the token, which is shown only once.
 * @module
 */
import type { Command } from 'commander';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { createEnrollmentToken, deleteEnrollmentToken, listEnrollmentTokens } from '../fleet-client.js';
import { formatLabels, parseDurationMs, parseLabelList } from './cli-values.js';
import { withAdminFlags } from './models.js';

/** Registers `infermesh tokens`. */
export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('one-time enrollment tokens: create, list, delete');
  withAdminFlags(
    tokens
      .command('create')
      .description('create an enrollment token and print it (shown once)')
      .option('--labels <labels>', 'labels the agent starts with: site=eu,hw=jetson', '')
      .option('--ttl <duration>', 'how long the token is valid (90s, 15m, 1h, 7d)', '1h')
      .option('--json', 'print JSON'),
  ).action(async (flags: AdminConnectionFlags & { labels: string; ttl: string; json?: boolean }) => {
    const created = await createEnrollmentToken(
      AdminClient.fromFlags(flags),
      parseLabelList(flags.labels),
      parseDurationMs(flags.ttl),
    );
    if (flags.json) console.log(JSON.stringify(created, null, 2));
    else console.log(created.token);
  });
  withAdminFlags(
    tokens
      .command('list')
      .description('list enrollment tokens (never their secrets)')
      .option('--json', 'print JSON'),
  ).action(async (flags: AdminConnectionFlags & { json?: boolean }) => {
    const { tokens: list } = await listEnrollmentTokens(AdminClient.fromFlags(flags));
    if (flags.json) {
      console.log(JSON.stringify(list, null, 2));
      return;
    }
    if (list.length === 0) console.log('no enrollment tokens');
    for (const t of list) {
      const state = t.used ? `used by ${t.usedBy ?? '?'}` : t.expired ? 'expired' : 'unused';
      console.log(
        `${t.id}  ${state}  expires ${new Date(t.expiresAt).toISOString()}  ${formatLabels(t.labels) || '-'}  by ${t.createdBy}`,
      );
    }
  });
  withAdminFlags(
    tokens.command('delete').description('delete an enrollment token').argument('<id>', 'token id'),
  ).action(async (id: string, flags: AdminConnectionFlags) => {
    await deleteEnrollmentToken(AdminClient.fromFlags(flags), id);
    console.log(`deleted token ${id}`);
  });
}
