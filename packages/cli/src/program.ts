/**
 * The command tree of `infermesh`: one sub-command per operation, each in its own module under
 * `commands/`. Expected failures (bad flags, a missing file, a coded InferMeshError) print one line
 * and exit non-zero; anything unexpected prints its stack.
 * @module
 */
import { Command, CommanderError } from 'commander';
import { isInferMeshError } from '@infermesh/protocols';
import { CLI_VERSION } from './version.js';
import { registerAgent } from './commands/agent.js';
import { registerAudit } from './commands/audit.js';
import { registerCoordinator } from './commands/coordinator.js';
import { registerFleet } from './commands/fleet.js';
import { registerFl } from './commands/fl.js';
import { registerInspect } from './commands/inspect.js';
import { registerKeys } from './commands/keys.js';
import { registerModels } from './commands/models.js';
import { registerQuantize } from './commands/quantize.js';
import { registerRollout } from './commands/rollout.js';
import { registerTokens } from './commands/tokens.js';
import { registerUp } from './commands/up.js';
import { registerUsers } from './commands/users.js';
import { registerWorker } from './commands/worker.js';

/** Builds the command tree. Exported for tests. */
export function createProgram(): Command {
  const program = new Command('infermesh')
    .description(
      'Edge-to-cloud inference mesh: edge agents, cloud coordinator, GPU workers, fleet operations.',
    )
    .version(CLI_VERSION, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    // Program options only before the sub-command, so a sub-command may take its own `--version`
    // (`models push --version 3`).
    .enablePositionalOptions()
    .exitOverride();
  registerUp(program);
  registerAgent(program);
  registerCoordinator(program);
  registerWorker(program);
  registerInspect(program);
  registerQuantize(program);
  registerModels(program);
  registerFleet(program);
  registerFl(program);
  registerRollout(program);
  registerKeys(program);
  registerTokens(program);
  registerUsers(program);
  registerAudit(program);
  return program;
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (isInferMeshError(err)) {
      console.error(`infermesh: ${err.code}: ${err.message}`);
      return 1;
    }
    if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error(`infermesh: ${err.message}`);
      return 1;
    }
    console.error(err);
    return 1;
  }
}
