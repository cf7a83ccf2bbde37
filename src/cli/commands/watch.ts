import type { Command } from 'commander';
import { openSync, writeSync, closeSync } from 'node:fs';
import { loadPolicy, PolicyError, DEFAULT_POLICY, type WatchPolicy } from '../../watch/policy.js';
import { lookupUser, runWatch, type RunAs } from '../../watch/run.js';
import { ensureMounts } from '../../kernel/mounts.js';
import { onLibbpfLog } from '../../kernel/log.js';
import { InputError, UnavailableError, UsageError, openError, shown } from '../errors.js';
import { applyRecordGroup } from '../record-files.js';
import { resolveSettings } from '../../config/resolve.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { SqliteSink } from '../../sinks/sqlite.js';
import type { Sink } from '../../sinks/sink.js';
import type { SinkFault } from '../../sinks/fault.js';
import { missingRulePaths } from '../../detection/live.js';
import { arg, needsKernel, opt } from '../options.js';

interface WatchFlags {
  policy?: string;
  json?: boolean;
  user?: string;
  out?: string;
  rules?: string[];
  db?: string;
  config?: string;
}

/** Who CMD runs as: --user, else the user who ran sudo, else vigil's own user. */
function runAsFor(flags: WatchFlags, env: NodeJS.ProcessEnv): RunAs | null {
  if (flags.user !== undefined) {
    const u = lookupUser(flags.user);
    if (!u) throw new UsageError('--user', `no such user: ${flags.user}`);
    return u;
  }
  const uid = env.SUDO_UID;
  if (uid && /^\d+$/.test(uid) && Number(uid) !== process.getuid?.()) {
    const u = lookupUser(uid);
    if (u) return env.SUDO_GID && /^\d+$/.test(env.SUDO_GID) ? { ...u, gid: Number(env.SUDO_GID) } : u;
    return { uid: Number(uid), gid: Number(env.SUDO_GID ?? uid), name: env.SUDO_USER ?? uid, home: '/' };
  }
  return null;
}

export function register(program: Command): void {
  needsKernel(program.command('watch'))
    .description('run a command and watch its whole process tree: processes, files read and written, connections, TLS plaintext, shells')
    .addArgument(arg('<command...>', 'the command to run and its arguments (put them after --)', 'text'))
    .addOption(opt('--policy <file>', 'watch policy (YAML, docs/watch.md): sensitive paths, network allow list, shells, TLS capture', 'file'))
    .option('--json', 'JSON lines (events, watch_alert, then one watch_summary) instead of the human view')
    .addOption(opt('--user <name>', 'run the command as this user (default: the user who ran sudo)', 'name'))
    .addOption(opt('-r, --rules <path...>', 'Sigma rule files or directories evaluated on the tree\'s events (alerts in the view and the summary)', 'rules-path'))
    .addOption(opt('--out <file>', 'write the view (or JSON lines) to this file (0600) instead of stderr', 'out-file'))
    .addOption(opt('--db <file>', 'also store the tree\'s events and Sigma alerts in this SQLite store (`vigil events --db FILE` and the console read it); the store is used only when named here', 'database'))
    .addOption(opt('--config <file>', 'vigil.yaml for the store\'s settings (store.max_rows, files.group) with --db', 'file'))
    .addHelpText(
      'after',
      `
The command runs as the user who invoked sudo (SUDO_UID/SUDO_GID), or --user,
with its own stdin/stdout/stderr; vigil's view goes to stderr (or --out).
Only the command's tree is reported: its processes are followed in the kernel
from fork to exit, so an unrelated busy host costs little. Policy violations
are alerts; with BPF LSM a policy's "action: deny" refuses shells, guarded files
and connections outside network.allow in the kernel (docs/watch.md).
--db also writes the tree's events and Sigma alerts to a store (vigil events).
Exit status: the command's (128 + signal when a signal ended it); 2 usage,
3 unavailable here (no BPF), 4 a bad policy (file:line and key named).

Examples:
  sudo vigil watch -- sh -c 'cat /etc/shadow; curl -s https://example.com'
  sudo vigil watch --policy agent.yaml --json --out watch.jsonl -- node agent.js
  sudo vigil watch --rules /etc/vigil/rules -- ./agent.sh`,
    )
    .action(async (command: string[], flags: WatchFlags) => {
      if (!command.length) throw new UsageError(undefined, 'no command to watch: vigil watch [options] -- CMD ARGS...');
      let policy: WatchPolicy = DEFAULT_POLICY;
      if (flags.policy !== undefined) {
        try {
          policy = loadPolicy(flags.policy);
        } catch (e) {
          if (e instanceof PolicyError) throw new InputError('input.bad_policy', e.line ? `${e.file}:${e.line}` : e.file, `${e.key ? `${e.key}: ` : ''}${e.problem}`, { hint: 'vigil watch does not start with a policy it cannot apply' });
          throw e;
        }
      }
      const missing = missingRulePaths(flags.rules ?? []);
      if (missing.length) throw new InputError('input.not_found', `--rules ${missing.map((m) => shown(m)).join(', ')}`, 'no such file or directory');
      if (process.getuid?.() !== 0) throw new UnavailableError('unavailable.not_root', 'vigil watch loads BPF programs: run it as root (sudo vigil watch -- CMD)');
      const runAs = runAsFor(flags, process.env);
      const sinks: Sink[] = [];
      // a warning line of the view (the JSON stream stays JSON: its summary counts the losses)
      let warn: (m: string) => void = () => {};
      if (flags.db !== undefined) {
        const { config, source } = resolveSettings({ configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }] }, AgentConfigSchema);
        applyRecordGroup(config.files.group, source('files.group'));
        try {
          const onFault = (f: SinkFault) =>
            warn(f.state === 'failing' ? `${f.sink}: writes failing (${f.error?.message ?? 'unknown'}); records are dropped and counted (summary: losses.sinks)` : `${f.sink}: writes resumed after ${f.ms} ms; ${f.lost} record(s) lost meanwhile`);
          sinks.push(new SqliteSink({ path: flags.db, maxPending: config.sinks.sqlite_max_pending, maxRows: config.store.max_rows, textIndex: config.store.text_index, tableMaxExited: config.process_table.max_exited, onFault }));
        } catch (e) {
          throw openError(e, '--db', flags.db);
        }
      }
      let fd: number | null = null;
      if (flags.out !== undefined) fd = openSync(flags.out, 'w', 0o600);
      const write = fd !== null ? (l: string) => void writeSync(fd!, `${l}\n`) : (l: string) => void process.stderr.write(`${l}\n`);
      warn = (m) => {
        if (!flags.json) write(`# ${m}`);
      };
      ensureMounts();
      onLibbpfLog(() => {});
      try {
        const r = await runWatch({
          command,
          policy,
          json: !!flags.json,
          runAs,
          write,
          rules: flags.rules ?? [],
          sinks,
          onWarning: (m) => warn(m),
        });
        process.exitCode = r.exitCode;
      } finally {
        onLibbpfLog(null);
        if (fd !== null) closeSync(fd);
      }
    });
}
