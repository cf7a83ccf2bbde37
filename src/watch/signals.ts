/**
 * What a watch looks for in its tree's events: sensitive paths, shells started
 * by non-shells (with their -c payloads), files outside an allow list or in a
 * block list, connections outside a network allow list.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { basename } from 'node:path';
import type { WatchPolicy } from './policy.js';

/** The built-in sensitive paths (~ is the watched user's home; a trailing / means everything under it). */
export const DEFAULT_SENSITIVE = [
  '/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/sudoers.d/', '/etc/ssh/ssh_host_',
  '~/.ssh/', '~/.aws/credentials', '~/.aws/config', '~/.config/gcloud/', '~/.azure/', '~/.kube/config',
  '~/.docker/config.json', '~/.netrc', '~/.git-credentials', '~/.npmrc', '~/.pypirc', '~/.gnupg/',
  '~/.password-store/', '~/.local/share/keyrings/', '~/.mozilla/firefox/', '~/.config/google-chrome/',
  '~/.config/chromium/', '~/.config/BraveSoftware/', '~/.bash_history', '~/.zsh_history',
  '.env', '.env.*', '*.pem', 'id_rsa', 'id_ed25519', 'id_ecdsa',
];

/** Shells, by the file name of the executable the kernel ran (symlinks resolved: /bin/sh is dash on Debian). */
export const SHELLS = new Set(['sh', 'dash', 'bash', 'rbash', 'zsh', 'ksh', 'ksh93', 'mksh', 'pdksh', 'fish', 'csh', 'tcsh', 'ash', 'busybox', 'yash', 'posh']);

/** Programs that fetch from the network, whose output piped into a shell is a classic injection (`curl ... | sh`). */
export const NET_TOOLS = new Set(['curl', 'wget', 'nc', 'ncat', 'netcat', 'socat', 'fetch', 'aria2c', 'http', 'xh']);

/** A shell that reads its commands from stdin: no -c, no script operand (`sh`, `bash -s`, `sh -` ...). */
export function readsStdin(argv: string[]): boolean {
  const rest = argv.slice(1);
  if (rest.includes('-c')) return false;
  return rest.every((a) => a.startsWith('-') || a === '');
}

export function isShell(image: string): boolean {
  return SHELLS.has(basename(image));
}

type Matcher = (path: string) => boolean;

function globRe(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** A path pattern: /abs (exact), /abs/dir/ (under it), /abs/prefix_ (literal prefix when it does not end in /: exact only), ~/x, or a file name glob. */
export function compilePatterns(patterns: string[], homes: string[]): Matcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const names: RegExp[] = [];
  for (const p of patterns) {
    const expanded = p.startsWith('~/') ? homes.map((h) => `${h.replace(/\/$/, '')}/${p.slice(2)}`) : [p];
    for (const e of expanded) {
      if (!e.includes('/')) names.push(globRe(e));
      else if (e.endsWith('/') || e.endsWith('_')) prefixes.push(e);
      else exact.add(e);
    }
  }
  return (path) => exact.has(path) || prefixes.some((x) => path.startsWith(x)) || (names.length > 0 && names.some((r) => r.test(basename(path))));
}

/** A network.allow entry: an address or CIDR (a bare address is its full-length prefix), or a host name. */
export type AllowEntry = { kind: 'ip'; family: 'ipv4' | 'ipv6'; addr: string; bits: number } | { kind: 'host'; name: string };

export function parseAllowEntry(a: string): AllowEntry {
  const [addr, bits] = a.split('/');
  const family = isIPv4(addr!) ? 'ipv4' : isIPv6(addr!) ? 'ipv6' : null;
  if (!family) return { kind: 'host', name: a };
  return { kind: 'ip', family, addr: addr!, bits: bits !== undefined ? Number(bits) : family === 'ipv4' ? 32 : 128 };
}

export class Signals {
  readonly sensitive: Matcher;
  readonly ignore: Matcher;
  readonly block: Matcher;
  readonly allowFiles: Matcher | null;
  private readonly netIps: BlockList | null;
  private readonly netHosts: string[];

  constructor(
    readonly policy: WatchPolicy,
    homes: string[],
  ) {
    const s = policy.sensitive;
    this.sensitive = compilePatterns([...(s.defaults ? DEFAULT_SENSITIVE : []), ...s.paths], homes);
    this.ignore = compilePatterns(s.ignore, homes);
    this.block = compilePatterns(policy.files.block, homes);
    this.allowFiles = policy.files.allow.length ? compilePatterns(policy.files.allow, homes) : null;
    const allow = policy.network.allow;
    if (allow) {
      this.netIps = new BlockList();
      this.netHosts = [];
      for (const a of allow) {
        const e = parseAllowEntry(a);
        if (e.kind === 'host') this.netHosts.push(e.name.toLowerCase().replace(/\.$/, ''));
        else this.netIps.addSubnet(e.addr, e.bits, e.family);
      }
    } else {
      this.netIps = null;
      this.netHosts = [];
    }
  }

  isSensitive(path: string): boolean {
    return this.policy.sensitive.action !== 'ignore' && this.sensitive(path) && !this.ignore(path);
  }

  /** A connection outside network.allow (false when there is no allow list). */
  outsideNetwork(ip: string, host: string | undefined): boolean {
    if (!this.netIps) return false;
    const fam = isIPv4(ip) ? 'ipv4' : 'ipv6';
    if (this.netIps.check(ip, fam)) return false;
    if (host) {
      const h = host.toLowerCase().replace(/\.$/, '');
      for (const a of this.netHosts) {
        if (a.startsWith('*.') ? h.endsWith(a.slice(1)) : h === a) return false;
      }
    }
    return true;
  }
}
