import type { Command } from 'commander';
import { formatReport, runDoctor, type Check } from '../../doctor/doctor.js';
import { getRecordGroup, inspectRecordFiles } from '../../store/files.js';
import { shown } from '../errors.js';
import { needsKernel } from '../options.js';
import { resolveRun } from './run.js';

/**
 * The store and the logs `vigil run` would write with this configuration:
 * others must not read them (0600; 0640 when their group is the configured
 * `files.group`), and they must be writable.
 */
export function recordsCheck(): Check {
  const title = 'records (store, logs)';
  let paths: string[];
  try {
    const cfg = resolveRun({}).config;
    const logs = [cfg.events_out, cfg.alerts_out].filter((p): p is string => typeof p === 'string');
    paths = [
      ...(cfg.db ? [cfg.db, `${cfg.db}-wal`, `${cfg.db}-shm`] : []),
      ...logs.flatMap((l) => [l, ...Array.from({ length: cfg.audit_log.keep }, (_, i) => `${l}.${i + 1}`)]),
    ];
  } catch (e) {
    return { id: 'records', title, status: 'info', detail: `not checked: the configuration does not resolve (${(e as Error).message})` };
  }
  const group = getRecordGroup();
  const r = inspectRecordFiles(paths, group?.gid ?? null);
  // without files.group, anyone but the owner is "others"; with it, its members may read
  const who = (x: { mode: number; gid: number }) =>
    !group || x.mode & 0o007 ? 'others can read it' : x.gid === group.gid ? `group ${shown(group.name)} can write it` : `group ${x.gid} can read it, not files.group ${shown(group.name)}`;
  const problems = [
    ...r.exposed.map((x) => `${shown(x.path, 200)} is ${x.mode.toString(8).padStart(4, '0')}: ${who(x)}`),
    ...r.unwritable.map((x) => `${shown(x.path, 200)}: ${x.reason}`),
  ];
  if (problems.length) {
    return {
      id: 'records',
      title,
      status: 'error',
      detail: problems.join('; '),
      ...(r.exposed.length
        ? {
            hint: group
              ? `chgrp ${shown(group.name)} ${r.exposed.map((x) => shown(x.path, 200)).join(' ')} && chmod 640 ${r.exposed.map((x) => shown(x.path, 200)).join(' ')} (they hold every command line recorded)`
              : `chmod 600 ${r.exposed.map((x) => shown(x.path, 200)).join(' ')} (they hold every command line recorded)`,
          }
        : {}),
    };
  }
  return { id: 'records', title, status: r.present.length ? 'ok' : 'info', detail: r.present.length
      ? `${r.present.length} file(s), readable by their owner${group ? ` and group ${shown(group.name)}` : ''} only, writable`
      : `none written yet (vigil run creates them ${group ? `0640, group ${shown(group.name)}` : '0600'})` };
}

export function register(program: Command): void {
  needsKernel(program.command('doctor'))
    .description('report what this kernel supports (by loading real programs) and what vigil can enforce')
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      `
Each check tries the feature for real: BPF LSM, tracepoints and uprobes are loaded
and attached (then detached), fanotify permission events are initialised.
The records check looks at the store and the logs the configuration names: files that
group or others can read (vigil creates them 0600; with files.group, 0640 and that group,
whose members may read them) and paths that cannot be written.
Exit status: 0 when the exec sensor can run, 1 otherwise (docs/cli.md).

Examples:
  vigil doctor
  vigil doctor --json | jq .enforcement.level`,
    )
    .action(async (flags: { json?: boolean }) => {
      const report = await runDoctor();
      report.checks.push(recordsCheck());
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
      const sensorOk = report.checks.find((c) => c.id === 'tp_btf')?.status === 'ok';
      process.exitCode = sensorOk ? 0 : 1;
    });
}
