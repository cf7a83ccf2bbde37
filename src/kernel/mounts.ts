/**
 * The pseudo filesystems vigil needs: securityfs (active LSMs, lockdown), bpffs
 * (pinned enforcement), tracefs (tracepoints). Mounted when absent; failures are
 * left for `vigil doctor` to report.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const WANT: Array<[type: string, dir: string]> = [
  ['securityfs', '/sys/kernel/security'],
  ['bpf', '/sys/fs/bpf'],
  ['tracefs', '/sys/kernel/tracing'],
];

export function isMounted(dir: string, type?: string): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.split(' ');
        return f[1] === dir && (type === undefined || f[2] === type);
      });
  } catch {
    return false;
  }
}

export function ensureMounts(): void {
  for (const [type, dir] of WANT) {
    if (isMounted(dir)) continue;
    try {
      execFileSync('mount', ['-t', type, type, dir], { stdio: 'ignore' });
    } catch {
      /* reported by vigil doctor */
    }
  }
}
