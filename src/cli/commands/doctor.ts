import type { Command } from 'commander';
import { formatReport, runDoctor } from '../../doctor/doctor.js';
import { needsKernel } from '../options.js';

export function register(program: Command): void {
  needsKernel(program.command('doctor'))
    .description('report what this kernel supports (by loading real programs) and what vigil can enforce')
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      `
Each check tries the feature for real: BPF LSM, tracepoints and uprobes are loaded
and attached (then detached), fanotify permission events are initialised.
Exit status: 0 when the exec sensor can run, 1 otherwise (docs/cli.md).

Examples:
  vigil doctor
  vigil doctor --json | jq .enforcement.level`,
    )
    .action(async (flags: { json?: boolean }) => {
      const report = await runDoctor();
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
      const sensorOk = report.checks.find((c) => c.id === 'tp_btf')?.status === 'ok';
      process.exitCode = sensorOk ? 0 : 1;
    });
}
