/**
 * `infermesh audit`: the audit log of mutating admin calls (operator role), oldest first, filtered
 * by actor and action; `--since` pages on from a sequence.
 * @module
 */
import type { Command } from 'commander';
import { invalidInput } from '@infermesh/protocols';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { readAudit } from '../fleet-client.js';
import { withAdminFlags } from './models.js';

const positiveInt = (what: string) => (text: string) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw invalidInput(`${what} must be a whole number`);
  return value;
};

/** Registers `infermesh audit`. */
export function registerAudit(program: Command): void {
  withAdminFlags(
    program
      .command('audit')
      .description('audit events of mutating admin calls')
      .option('--limit <n>', 'events to show (1-1000)', positiveInt('--limit'), 100)
      .option('--since <seq>', 'only events after this sequence', positiveInt('--since'))
      .option('--actor <name>', 'only events of this user')
      .option(
        '--action <action>',
        'only events of this action (token.create, POST /models/{name}/versions, ...)',
      )
      .option('--json', 'print JSON'),
  ).action(
    async (
      flags: AdminConnectionFlags & {
        limit: number;
        since?: number;
        actor?: string;
        action?: string;
        json?: boolean;
      },
    ) => {
      const list = await readAudit(AdminClient.fromFlags(flags), {
        limit: flags.limit,
        ...(flags.since === undefined ? {} : { since: flags.since }),
        ...(flags.actor === undefined ? {} : { actor: flags.actor }),
        ...(flags.action === undefined ? {} : { action: flags.action }),
      });
      if (flags.json) {
        console.log(JSON.stringify(list, null, 2));
        return;
      }
      for (const e of list.events) {
        console.log(
          `${e.seq ?? '-'}  ${new Date(e.at).toISOString()}  ${e.actor}(${e.role})  ${e.status}  ${e.action}${e.target ? `  ${e.target}` : ''}`,
        );
      }
      console.log(`(next --since ${list.nextSince})`);
    },
  );
}
