/**
 * What the DNS answers a process received say about the addresses it then
 * connects to: IP → the name it asked for, per process and host-wide (the
 * fallback for names resolved by another process: a caching daemon, a parent
 * shell). Both maps are bounded; the least recently written entry goes first.
 * The newest answer wins (an address shared by several names shows the last
 * one asked for); TTLs are not applied.
 */
export interface HostnameHit {
  name: string;
  /** "process": this process resolved it; "host": another process did */
  source: 'process' | 'host';
}

export interface HostnameCacheOptions {
  /** addresses remembered host-wide */
  maxHosts: number;
  /** processes with their own map */
  maxProcesses?: number;
  /** addresses remembered per process */
  perProcess?: number;
}

function touch<K, V>(m: Map<K, V>, k: K, v: V, max: number): number {
  m.delete(k);
  m.set(k, v);
  let evicted = 0;
  while (m.size > max) {
    const first = m.keys().next().value as K;
    m.delete(first);
    evicted++;
  }
  return evicted;
}

export class HostnameCache {
  private readonly host = new Map<string, string>();
  private readonly procs = new Map<string, Map<string, string>>();
  private readonly maxProcesses: number;
  private readonly perProcess: number;
  evicted = 0;

  constructor(private readonly opts: HostnameCacheOptions) {
    this.maxProcesses = opts.maxProcesses ?? 1024;
    this.perProcess = opts.perProcess ?? 256;
  }

  /** Remember that `process` (its ProcessGuid) resolved `name` to `ip`. */
  add(process: string, ip: string, name: string): void {
    if (this.opts.maxHosts <= 0) return;
    this.evicted += touch(this.host, ip, name, this.opts.maxHosts);
    let m = this.procs.get(process);
    if (!m) m = new Map();
    this.evicted += touch(this.procs, process, m, this.maxProcesses);
    this.evicted += touch(m, ip, name, this.perProcess);
  }

  lookup(process: string, ip: string): HostnameHit | undefined {
    const own = this.procs.get(process)?.get(ip);
    if (own !== undefined) return { name: own, source: 'process' };
    const any = this.host.get(ip);
    if (any !== undefined) return { name: any, source: 'host' };
    return undefined;
  }

  get size(): number {
    return this.host.size;
  }
}
