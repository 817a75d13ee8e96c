/**
 * `infermesh fl`: federated training runs. `fl start` starts a run from flags and follows it to
 * its end with the progress view of `fl-view.ts` (redrawn on a terminal, one line per change
 * elsewhere; `--detach` returns at once; exit status 1 when the run fails),
 * `fl status <id> [--watch] [--json]`, `fl stop <id> [--register]`, `fl list`.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { CommanderError } from 'commander';
import type { Command } from 'commander';
import { invalidInput, parseExampleLines } from '@infermesh/protocols';
import type { FlRunRecord, FlRunStartRequest, LabelledExample } from '@infermesh/protocols';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { FlClient } from '../fl-client.js';
import { FlRunView, flRunLine, followFlRun } from '../fl-view.js';
import { withAdminFlags } from './models.js';

/** `60s`, `2m`, `1500ms` or plain milliseconds. */
export function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw invalidInput(`not a duration: ${JSON.stringify(text)} (e.g. 60s, 2m, 1500ms)`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(match[1]) * unit);
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const int = (value: string): number => Number.parseInt(value, 10);

/** `key=number` strategy options. */
function strategyOptions(pairs: readonly string[]): Record<string, number> {
  const options: Record<string, number> = {};
  for (const pair of pairs) {
    const [key, value] = pair.split('=');
    if (!key || value === undefined || !Number.isFinite(Number(value))) {
      throw invalidInput(`--strategy-option takes key=number, got ${JSON.stringify(pair)}`);
    }
    options[key] = Number(value);
  }
  return options;
}

/** Held-out examples from a JSON-lines file; INVALID_INPUT naming the first bad line. */
export async function readExamples(path: string): Promise<LabelledExample[]> {
  const { examples, invalid } = parseExampleLines(await readFile(path, 'utf8'));
  const bad = invalid[0];
  if (bad) throw invalidInput(`${path} line ${bad.line} is ${bad.reason}`);
  if (examples.length === 0) throw invalidInput(`${path} holds no examples`);
  return examples;
}

/** The flags of `fl start`. */
export interface StartFlags extends AdminConnectionFlags {
  model: string;
  baseVersion?: string;
  rounds: number;
  clientsPerRound: number;
  minClients: number;
  roundTimeout: string;
  strategy: string;
  strategyOption: string[];
  dpMode?: 'client' | 'server';
  clipNorm?: string;
  noiseMultiplier?: string;
  secure?: boolean;
  evalData: string;
  localEpochs?: number;
  batchSize?: number;
  learningRate?: string;
  proximalMu?: string;
  resultVersion?: string;
  seed?: number;
  detach?: boolean;
}

/** A flag's value as a finite number; INVALID_INPUT naming the flag otherwise. */
function numberFlag(value: string | number | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw invalidInput(`${flag} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** The start request that `fl start`'s flags describe, with the held-out examples read already. */
export function flStartRequestFromFlags(
  flags: Omit<StartFlags, 'evalData' | 'detach' | keyof AdminConnectionFlags>,
  evaluationExamples: LabelledExample[],
): FlRunStartRequest {
  if (flags.dpMode !== undefined && flags.dpMode !== 'client' && flags.dpMode !== 'server') {
    throw invalidInput(`--dp-mode must be client or server, got ${JSON.stringify(flags.dpMode)}`);
  }
  return {
    model: flags.model,
    ...(flags.baseVersion ? { baseVersion: flags.baseVersion } : {}),
    rounds: numberFlag(flags.rounds, '--rounds', 1),
    clientsPerRound: numberFlag(flags.clientsPerRound, '--clients-per-round', 1),
    minClients: numberFlag(flags.minClients, '--min-clients', 1),
    roundTimeoutMs: parseDurationMs(flags.roundTimeout),
    strategy: flags.strategy,
    strategyOptions: strategyOptions(flags.strategyOption),
    hyperparameters: {
      localEpochs: numberFlag(flags.localEpochs, '--local-epochs', 1),
      batchSize: numberFlag(flags.batchSize, '--batch-size', 32),
      learningRate: numberFlag(flags.learningRate, '--learning-rate', 0.1),
      proximalMu: numberFlag(flags.proximalMu, '--proximal-mu', 0),
    },
    ...(flags.dpMode
      ? {
          privacy: {
            mode: flags.dpMode,
            clipNorm: numberFlag(flags.clipNorm, '--clip-norm', 1),
            noiseMultiplier: numberFlag(flags.noiseMultiplier, '--noise-multiplier', 0),
          },
        }
      : {}),
    secure: flags.secure ?? false,
    evaluationExamples,
    ...(flags.resultVersion ? { resultVersion: flags.resultVersion } : {}),
    ...(flags.seed === undefined ? {} : { seed: numberFlag(flags.seed, '--seed', 0) }),
  };
}

async function startRun(flags: StartFlags): Promise<void> {
  const client = new FlClient(AdminClient.fromFlags(flags));
  const request = flStartRequestFromFlags(flags, await readExamples(flags.evalData));
  const run = await client.start(request);
  process.stdout.write(`started ${run.id}: ${run.model}@${run.baseVersion} -> ${run.resultVersion}\n`);
  if (flags.detach) return;
  const end = await followFlRun(client, run.id, new FlRunView(process.stdout));
  if (end.state !== 'succeeded' && end.state !== 'stopped') failedRun(end);
}

/** Ends the command with exit code 1 for a run that did not succeed, saying why. */
function failedRun(run: FlRunRecord): never {
  console.error(`infermesh: federated run ${run.id} ${run.state}${run.error ? `: ${run.error}` : ''}`);
  throw new CommanderError(1, 'infermesh.fl', '');
}

/** Registers `infermesh fl`. */
export function registerFl(program: Command): void {
  const fl = program.command('fl').description('federated training runs');
  withAdminFlags(
    fl
      .command('start')
      .description('start a federated training run and follow it')
      .requiredOption('--model <name>', 'model to train')
      .option('--base-version <version>', 'version to start from (default: latest)')
      .requiredOption('--rounds <n>', 'rounds', int)
      .requiredOption('--clients-per-round <n>', 'clients selected per round', int)
      .option('--min-clients <n>', 'fewest clients a round needs', int, 1)
      .option('--round-timeout <duration>', 'time clients have per round', '60s')
      .option('--strategy <name>', 'aggregation strategy (fedavg, krum, fedtrimmedavg, ...)', 'fedavg')
      .option('--strategy-option <key=value>', 'strategy option, repeatable', collect, [])
      .option('--dp-mode <mode>', 'differential privacy: client or server')
      .option('--clip-norm <x>', 'DP clip norm')
      .option('--noise-multiplier <z>', 'DP noise multiplier')
      .option('--secure', 'secure aggregation')
      .requiredOption('--eval-data <file>', 'held-out examples, JSON lines')
      .option('--local-epochs <n>', 'local epochs', int)
      .option('--batch-size <n>', 'local batch size', int)
      .option('--learning-rate <x>', 'local learning rate')
      .option('--proximal-mu <x>', 'FedProx mu')
      .option('--result-version <version>', 'version name of the trained model')
      .option('--seed <n>', 'seed of client selection', int)
      .option('--detach', 'return once the run started'),
  ).action((flags: StartFlags) => startRun(flags));
  withAdminFlags(
    fl
      .command('status <id>')
      .description("a run's state and per-round history")
      .option('--watch', 'follow until it ends')
      .option('--json', 'print the run record as JSON'),
  ).action(async (id: string, flags: AdminConnectionFlags & { watch?: boolean; json?: boolean }) => {
    const client = new FlClient(AdminClient.fromFlags(flags));
    if (flags.watch) {
      let last = '';
      const json = {
        show: (run: FlRunRecord): void => {
          const line = flRunLine(run);
          if (line !== last) process.stdout.write(`${JSON.stringify(run)}\n`);
          last = line;
        },
      };
      const end = await followFlRun(client, id, flags.json ? json : new FlRunView(process.stdout));
      if (end.state === 'failed') failedRun(end);
      return;
    }
    const run = await client.get(id);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(run)}\n`);
      return;
    }
    process.stdout.write(`${flRunLine(run)}\n`);
    if (run.roundsDone > run.recentRounds.length)
      process.stdout.write(`  (${run.roundsDone - run.recentRounds.length} earlier rounds)\n`);
    for (const r of run.recentRounds) {
      process.stdout.write(
        `  round ${r.round}: ${r.accepted} accepted, ${r.received} received, ${r.dropped} dropped, ` +
          `${r.rejected} rejected, accuracy ${r.evaluation ? (r.evaluation.accuracy * 100).toFixed(2) : '-'}%\n`,
      );
    }
  });
  withAdminFlags(
    fl
      .command('stop <id>')
      .description('stop a run at once')
      .option('--register', 'register the weights of the last closed round'),
  ).action(async (id: string, flags: AdminConnectionFlags & { register?: boolean }) => {
    const run = await new FlClient(AdminClient.fromFlags(flags)).stop(id, flags.register ?? false);
    process.stdout.write(`${run.id}: ${run.state}\n`);
  });
  withAdminFlags(fl.command('list').description('federated runs')).action(
    async (flags: AdminConnectionFlags) => {
      const { runs } = await new FlClient(AdminClient.fromFlags(flags)).list();
      for (const r of runs) {
        process.stdout.write(
          `${r.id}  ${r.model}@${r.baseVersion}  ${r.strategy}  ${r.state}  ${r.roundsDone}/${r.rounds}` +
            `${r.registeredVersion ? `  -> ${r.registeredVersion}` : ''}\n`,
        );
      }
    },
  );
}
