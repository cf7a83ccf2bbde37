import { Command, CommanderError } from 'commander';
import { register as registerRun } from './commands/run.js';
import { register as registerEvents } from './commands/events.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerRules } from './commands/rules.js';
import { register as registerDeny } from './commands/deny.js';
import { register as registerDisarm } from './commands/disarm.js';
import { register as registerFleet } from './commands/fleet.js';
import { register as registerConsole } from './commands/console.js';
import { register as registerProvenance } from './commands/provenance.js';
import { register as registerAllow } from './commands/allow.js';
import { register as registerWatch } from './commands/watch.js';
import { register as registerAudit } from './commands/audit.js';
import { EXIT, UnavailableError, errorClass, UsageError, VigilError, fromSqliteError, fromSystemError, shown } from './errors.js';
import { BpfError } from '../kernel/errors.js';
import { ConfigError } from '../config/config.js';
import { safeText } from '../util/text.js';

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
    .option('--debug', 'on an error, also print its stack trace and the BPF verifier log (or set VIGIL_DEBUG=1)')
    .addHelpText(
      'after',
      `
Examples:
  vigil doctor                      what this kernel supports and what vigil can enforce
  vigil run --events-out ev.jsonl   record process events to a JSONL audit log (and the SQLite store)
  vigil events --category process_creation --since 10m --json

Exit status: 0 ok, 1 failed (the answer is no), 2 usage, 3 unavailable here,
4 input or configuration, 70 internal error (docs/cli.md).`,
    );
  registerRun(program);
  registerEvents(program);
  registerDoctor(program);
  registerRules(program);
  registerDeny(program);
  registerDisarm(program);
  registerFleet(program);
  registerProvenance(program);
  registerAllow(program);
  registerConsole(program);
  registerWatch(program);
  registerAudit(program);
  // every command: commander's own errors become usage errors printed by main(), one line
  for (const cmd of commandTree(program)) {
    cmd.exitOverride((err) => {
      throw Object.assign(err, { command: cmd });
    });
    cmd.configureOutput({ outputError: () => undefined });
    // the command being parsed, for errors thrown while its options are checked
    cmd.hook('preSubcommand', (_self, sub) => {
      (program as Command & { vigilActive?: Command }).vigilActive = sub;
    });
  }
  return program;
}

/** A command and all its subcommands. */
export function commandTree(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap((c) => commandTree(c))];
}

/** "vigil deny add" */
export function commandPath(cmd: Command | undefined): string {
  const names: string[] = [];
  for (let c: Command | null | undefined = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ') || 'vigil';
}

const COMMANDER_CODES: Record<string, string> = {
  'commander.unknownOption': 'usage.unknown_option',
  'commander.unknownCommand': 'usage.unknown_command',
  'commander.missingArgument': 'usage.missing_argument',
  'commander.optionMissingArgument': 'usage.missing_value',
  'commander.missingMandatoryOptionValue': 'usage.missing_option',
  'commander.excessArguments': 'usage.excess_arguments',
  'commander.invalidArgument': 'usage.bad_value',
  'commander.conflictingOption': 'usage.conflict',
  'commander.help': 'usage.missing_command',
};

/** Any error thrown by a command, in the error model (internal errors stay as they are). */
export function toVigilError(e: unknown): VigilError | unknown {
  if (e instanceof VigilError) return e;
  if (e instanceof ConfigError) return e; // printed one line per issue, see report()
  if (e instanceof BpfError) {
    const lsm = /lsm/i.test(e.op);
    return new UnavailableError(lsm ? 'unavailable.bpf_lsm' : 'unavailable.bpf', e.message, { cause: e });
  }
  if (e instanceof CommanderError) {
    const cmd = (e as CommanderError & { command?: Command }).command;
    const path = commandPath(cmd);
    // commander quotes the value: a huge one is cut so the line still names the option
    const msg = e.message.replace(/^error: /, '').replace(/\.$/, '').replace(/'([^']{80,})'/g, (_m, v: string) => `'${shown(v, 60)}'`);
    if (e.code === 'commander.help') {
      const subs = cmd?.commands.map((c) => c.name()).join(', ');
      return Object.assign(new UsageError(undefined, `a subcommand is needed${subs ? ` (${subs})` : ''}`, { code: 'usage.missing_command' }), { command: cmd });
    }
    return Object.assign(new UsageError(undefined, msg, { code: COMMANDER_CODES[e.code] ?? 'usage.error', hint: `see \`${path} --help\`` }), { command: cmd });
  }
  const errno = e as NodeJS.ErrnoException;
  if (errno && typeof errno === 'object' && typeof errno.code === 'string') {
    return fromSqliteError(errno as { code: string; message: string }, undefined) ?? fromSystemError(errno, undefined) ?? e;
  }
  return e;
}

export interface MainOptions {
  /** print stacks and BPF logs (else from --debug in argv or VIGIL_DEBUG=1) */
  debug?: boolean;
  /** the program to run (tests: buildProgram() with some actions replaced) */
  program?: Command;
}

/**
 * Run the CLI: exit status in process.exitCode; every failure is reported on
 * stderr as one line per error (docs/cli.md).
 */
export async function main(argv: string[], opts: MainOptions = {}): Promise<void> {
  const program = opts.program ?? buildProgram();
  let active: Command | undefined;
  program.hook('preAction', (_self, actionCommand) => {
    active = actionCommand;
  });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    active ??= (program as Command & { vigilActive?: Command }).vigilActive;
    const debug = opts.debug ?? (argv.slice(2).includes('--debug') || process.env.VIGIL_DEBUG === '1');
    const verbose = active?.opts().verbose === true;
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0)) {
      process.exitCode = EXIT.ok;
      return;
    }
    const err = toVigilError(e);
    const where = (err as { command?: Command }).command ?? active;
    const logFlag = active?.options.some((x) => x.long === '--verbose') ? '--verbose' : '--debug';
    process.exitCode = report(err, { debug, verbose, logFlag, command: commandPath(where) });
  }
}

/** Print an error; returns the exit status. */
export function report(e: unknown, o: { debug: boolean; verbose: boolean; command?: string; logFlag?: string }): number {
  const write = (s: string) => process.stderr.write(`${o.command ?? 'vigil'}: ${oneLine(s)}\n`);
  if (e instanceof ConfigError) {
    for (const l of e.message.split('\n')) write(`${l} [${e.code}]`);
    if (o.debug) process.stderr.write(`${e.stack}\n`);
    return EXIT[errorClass(e.code)];
  }
  if (e instanceof VigilError) {
    const bpf = e.cause instanceof BpfError ? e.cause : undefined;
    const showLog = !!bpf?.log && (o.debug || o.verbose);
    write(e.line(bpf?.log && !showLog ? `${o.logFlag ?? '--debug'} shows the libbpf log` : undefined));
    if (showLog) process.stderr.write(`--- libbpf log ---\n${bpf!.log}\n`);
    if (o.debug) process.stderr.write(`${e.stack}${e.cause instanceof Error ? `\ncaused by: ${e.cause.stack}` : ''}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  write(`internal error: ${String(err?.message ?? err)}; this is a bug in vigil: run again with --debug for the stack trace and report it [internal]`);
  if (o.debug) process.stderr.write(`${err?.stack ?? err}\n`);
  return EXIT.internal;
}

/** One line, control characters escaped, at most about 2,000 characters (its end, the [code], kept). */
function oneLine(s: string): string {
  const t = safeText(s);
  return t.length > 2000 ? `${t.slice(0, 1900)}…${t.slice(-80)}` : t;
}

/**
 * The process entry point (bin/vigil): main() plus what only a real process
 * needs: a closed stdout (`vigil events | head`) ends quietly, and an error
 * thrown outside a command (an event handler) is still one line and exit 70.
 */
export async function cli(argv: string[]): Promise<void> {
  const debug = argv.slice(2).includes('--debug') || process.env.VIGIL_DEBUG === '1';
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  const fatal = (e: unknown) => {
    process.exitCode = report(toVigilError(e), { debug, verbose: false });
    process.exit();
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  await main(argv, { debug });
}
