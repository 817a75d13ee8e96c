#!/usr/bin/env node
// The agent bundle's entry point: the `infermesh agent` command alone (the CLI's other commands,
// and what they need, are not in the bundle). Expected failures print one line,
// `infermesh-agent: <CODE>: <message>`, and exit 1, as the infermesh CLI does.
import { Command, CommanderError } from 'commander';
import { isInferMeshError } from '@infermesh/protocols';
import { registerAgent } from '@infermesh/cli/dist/commands/agent.js';

const program = new Command('infermesh-agent').enablePositionalOptions().exitOverride();
registerAgent(program);
try {
  await program.parseAsync(['agent', ...process.argv.slice(2)], { from: 'user' });
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (isInferMeshError(err)) {
    console.error(`infermesh-agent: ${err.code}: ${err.message}`);
    process.exitCode = 1;
  } else if (err instanceof Error && err.code === 'ENOENT') {
    console.error(`infermesh-agent: ${err.message}`);
    process.exitCode = 1;
  } else {
    console.error(err);
    process.exitCode = 1;
  }
}
