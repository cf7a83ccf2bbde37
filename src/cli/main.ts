import { Command, CommanderError } from 'commander';
import { register as registerRun } from './commands/run.js';
import { register as registerEvents } from './commands/events.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerRules } from './commands/rules.js';
import { register as registerDeny } from './commands/deny.js';
import { register as registerDisarm } from './commands/disarm.js';
import { register as registerFleet } from './commands/fleet.js';
import { CliError } from './errors.js';
import { BpfError } from '../kernel/errors.js';
import { ConfigError } from '../config/config.js';

/**
 * The vigil command line. Each command lives in src/cli/commands/<name>.ts and
 * exports register(program). Keep option parsing here thin: commands call into
 * the capability modules (src/sensors, src/detection, ...).
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vigil')
    .description('eBPF runtime security for Linux: see every exec, detect with Sigma, block in the kernel.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  vigil doctor                      what this kernel supports and what vigil can enforce
  vigil run --events-out ev.jsonl   record process events to a JSONL audit log (and the SQLite store)
  vigil events --category process_creation --since 10m --json
`,
    );
  registerRun(program);
  registerEvents(program);
  registerDoctor(program);
  registerRules(program);
  registerDeny(program);
  registerDisarm(program);
  registerFleet(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError || e instanceof ConfigError) {
      process.stderr.write(`vigil: ${e.message}\n`);
      process.exitCode = e instanceof CliError ? e.code : 2;
      return;
    }
    if (e instanceof BpfError) {
      process.stderr.write(`vigil: ${e.message}${e.log ? `\n--- libbpf log ---\n${e.log}` : ''}\n`);
      process.exitCode = 3;
      return;
    }
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    throw e;
  }
}
