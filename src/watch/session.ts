/**
 * One watch: the tree's events in, a live view (human lines or JSON lines),
 * alerts from the signals, and the summary at exit.
 */
import { basename } from 'node:path';
import { safeText } from '../util/text.js';
import { NET_TOOLS, Signals, isShell, readsStdin } from './signals.js';
import type { GuardDenial } from './shell-guard.js';

type Ev = Record<string, unknown>;

export interface WatchAlert {
  category: 'watch_alert';
  timestamp: string;
  /** sensitive_access, shell_spawn, pipe_to_shell, shell_denied, file_denied, network_denied, file_blocked_path, file_outside_allow, network_outside_allow, sigma */
  signal: string;
  message: string;
  ProcessId: number;
  Image: string;
  /** sigma: the rule */
  rule_id?: string;
  rule_title?: string;
  level?: string;
  /** what would have been blocked with enforcement (nothing is blocked yet) */
  would_block?: boolean;
  TargetFilename?: string;
  CommandLine?: string;
  payload?: string;
  DestinationIp?: string;
  DestinationPort?: number;
  DestinationHostname?: string;
}

export interface WatchSummary {
  category: 'watch_summary';
  command: string[];
  exit_code: number;
  signal: string | null;
  duration_ms: number;
  processes: Array<{ ProcessId: number; Image: string; CommandLine: string; ParentProcessId: number; exit_code?: number }>;
  files_written: string[];
  files_read: string[];
  files_read_total: number;
  sensitive: Array<{ path: string; ProcessId: number; Image: string; operation: string }>;
  endpoints: Array<{ ip: string; port: number; protocol: string; host?: string; connections: number; ProcessIds: number[]; tls_sent?: number; tls_received?: number }>;
  tls: { sent_bytes: number; received_bytes: number; calls: number; truncated_calls: number; by_process: Array<{ ProcessId: number; Image: string; sent: number; received: number }> };
  alerts: WatchAlert[];
  blocked: string[];
  events: Record<string, number>;
  losses: Record<string, number>;
}

const MAX_LIST = 10_000;

export interface SessionOptions {
  json: boolean;
  write: (line: string) => void;
  signals: Signals;
  command: string[];
}

export class WatchSession {
  private readonly tree = new Set<number>();
  private readonly procs = new Map<number, WatchSummary['processes'][number]>();
  private readonly written = new Set<string>();
  private readonly read = new Set<string>();
  private readTotal = 0;
  private readonly sensitive: WatchSummary['sensitive'] = [];
  private readonly endpoints = new Map<string, WatchSummary['endpoints'][number]>();
  /** "pid:fd" of a connected socket → its endpoint (tls_data names the fd it used) */
  private readonly sockets = new Map<string, WatchSummary['endpoints'][number]>();
  /**
   * TLS calls on a "pid:fd" whose connect has not been read yet: the TLS and network
   * sensors have rings of their own, read in either order, so a connection's first
   * tls_data may come before its network_connection. Joined to the endpoint when the
   * connect comes (only calls made after it: an fd is reused once closed).
   */
  private readonly unjoined = new Map<string, Array<{ ts: string; n: number; send: boolean }>>();
  private readonly tls = { sent_bytes: 0, received_bytes: 0, calls: 0, truncated_calls: 0 };
  private readonly tlsBy = new Map<number, { ProcessId: number; Image: string; sent: number; received: number }>();
  readonly alerts: WatchAlert[] = [];
  private readonly counts: Record<string, number> = {};
  private readonly blocked: string[] = [];
  /** recent execs by parent (a pipeline's members are siblings): [time ms, pid, image, argv] */
  private readonly recent = new Map<number, Array<{ t: number; pid: number; image: string; argv: string[] }>>();
  private readonly started = Date.now();
  /** called with each new executable of the tree and each libssl it opens (the TLS sensor hooks those that export OpenSSL's functions) */
  onImage: ((image: string) => void) | null = null;

  constructor(private readonly o: SessionOptions) {}

  /** The root (the wrapper that becomes CMD). */
  addRoot(pid: number): void {
    this.tree.add(pid);
  }

  event(ev: Ev): void {
    const cat = ev.category as string;
    this.counts[cat] = (this.counts[cat] ?? 0) + 1;
    const pid = ev.ProcessId as number;
    this.tree.add(pid);
    if (this.o.json) this.o.write(JSON.stringify(ev));
    switch (cat) {
      case 'process_creation':
        this.onExec(ev);
        break;
      case 'process_termination': {
        const p = this.procs.get(pid);
        const v = ev.vigil as Ev | undefined;
        if (p && v && typeof v.exit_code === 'number') p.exit_code = v.exit_code;
        this.human(`exit  ${pid} ${safeText(String(ev.Image ?? ''))} status ${v?.exit_code ?? '?'}${v?.signal ? ` signal ${v.signal}` : ''}`);
        break;
      }
      case 'file_event':
      case 'file_access':
      case 'file_delete':
      case 'file_rename':
      case 'file_change':
        this.onFile(ev, cat);
        break;
      case 'network_connection':
        this.onConn(ev);
        break;
      case 'dns_query':
        this.human(`dns   ${pid} ${this.img(ev)} ${safeText(String(ev.QueryName ?? ''))}`);
        break;
      case 'tls_data':
        this.onTls(ev);
        break;
      default:
        break;
    }
  }

  private img(ev: Ev): string {
    return safeText(basename(String(ev.Image ?? '')));
  }

  private human(line: string): void {
    if (!this.o.json) this.o.write(line);
  }

  private alert(a: Omit<WatchAlert, 'category' | 'timestamp'>, ts: unknown): void {
    const full: WatchAlert = { category: 'watch_alert', timestamp: typeof ts === 'string' ? ts : new Date().toISOString(), ...a };
    if (this.alerts.length < MAX_LIST) this.alerts.push(full);
    if (this.o.json) this.o.write(JSON.stringify(full));
    else this.o.write(`! ALERT ${a.signal}: ${safeText(a.message)}`);
  }

  private onExec(ev: Ev): void {
    const pid = ev.ProcessId as number;
    const ppid = ev.ParentProcessId as number;
    const image = String(ev.Image ?? '');
    const cmd = String(ev.CommandLine ?? '');
    if (this.procs.size < MAX_LIST) this.procs.set(pid, { ProcessId: pid, Image: image, CommandLine: cmd, ParentProcessId: ppid });
    this.human(`exec  ${pid} ${safeText(image)}  ${safeText(cmd)}  (parent ${ppid})`);
    this.onImage?.(image);
    const parentImage = String(ev.ParentImage ?? '');
    const argvAll = ((ev.vigil as Ev | undefined)?.argv as string[] | undefined) ?? [];
    this.pipeToShell(ev, pid, ppid, image, argvAll);
    if (this.o.signals.policy.shells.action === 'alert' && isShell(image) && this.tree.has(ppid) && parentImage && !isShell(parentImage)) {
      const argv = ((ev.vigil as Ev | undefined)?.argv as string[] | undefined) ?? [];
      const c = argv.indexOf('-c');
      const payload = c >= 0 ? argv.slice(c + 1).join(' ') : undefined;
      this.alert(
        {
          signal: 'shell_spawn',
          message: `${basename(parentImage)} (${ppid}) started shell ${image} (${pid})${payload !== undefined ? ` -c ${payload}` : ''}`,
          ProcessId: pid,
          Image: image,
          CommandLine: cmd,
          ...(payload !== undefined ? { payload } : {}),
        },
        ev.timestamp,
      );
    }
  }

  /**
   * `curl URL | sh`: a shell reading commands from stdin and a network tool started
   * by the same parent within 2 s of each other (a pipeline's members are siblings).
   * A heuristic: the pipe itself is not seen (no fd tracking yet).
   */
  private pipeToShell(ev: Ev, pid: number, ppid: number, image: string, argv: string[]): void {
    if (this.o.signals.policy.shells.action === 'ignore') return;
    const now = Date.now();
    const list = (this.recent.get(ppid) ?? []).filter((x) => now - x.t < 2000);
    const me = { t: now, pid, image, argv };
    const tool = (x: { image: string }) => NET_TOOLS.has(basename(x.image));
    const stdinShell = (x: { image: string; argv: string[] }) => isShell(x.image) && readsStdin(x.argv);
    const partner = stdinShell(me) ? list.find(tool) : tool(me) ? list.find(stdinShell) : undefined;
    if (partner) {
      const [net, sh] = tool(me) ? [me, partner] : [partner, me];
      this.alert(
        {
          signal: 'pipe_to_shell',
          message: `${basename(net.image)} (${net.pid}) and shell ${sh.image} (${sh.pid}) reading stdin started together by ${ppid}: ${net.argv.join(' ')} | ${sh.argv.join(' ')}`,
          ProcessId: sh.pid,
          Image: sh.image,
          CommandLine: `${net.argv.join(' ')} | ${sh.argv.join(' ')}`,
        },
        ev.timestamp,
      );
    }
    list.push(me);
    if (this.recent.size > 4096) this.recent.clear();
    this.recent.set(ppid, list.slice(-16));
  }

  private onFile(ev: Ev, cat: string): void {
    const path = String(ev.TargetFilename ?? '');
    const v = (ev.vigil as Ev | undefined) ?? {};
    const op = String(v.operation ?? cat);
    const failed = typeof v.result === 'number' && v.result < 0;
    if (cat === 'file_access') {
      this.readTotal++;
      // the dynamic loader opening a libssl: hook that copy too (uprobes reach mappings made before the attach)
      if (!failed && /\/libssl\.so[.0-9]*$/.test(path)) this.onImage?.(path);
      if (!failed && this.read.size < MAX_LIST) this.read.add(path);
    } else if (!failed && this.written.size < MAX_LIST) {
      this.written.add(path);
      if (ev.SourceFilename) this.written.add(String(ev.SourceFilename));
    }
    const tag = cat === 'file_access' ? 'read ' : op.slice(0, 5).padEnd(5);
    this.human(`${tag} ${ev.ProcessId} ${this.img(ev)}  ${safeText(path)}${failed ? `  (${safeText(String(v.error ?? v.result))})` : ''}`);
    const pid = ev.ProcessId as number;
    const image = String(ev.Image ?? '');
    const sig = this.o.signals;
    if (sig.isSensitive(path)) {
      if (this.sensitive.length < MAX_LIST) this.sensitive.push({ path, ProcessId: pid, Image: image, operation: op });
      this.alert({ signal: 'sensitive_access', message: `${basename(image)} (${pid}) ${op} ${path}${failed ? ` (${v.error ?? 'failed'})` : ''}`, ProcessId: pid, Image: image, TargetFilename: path }, ev.timestamp);
    }
    if (sig.block(path)) {
      // with files.action: deny the kernel refuses what existed at start (file_denied says so); this is the attempt
      const deny = sig.policy.files.action === 'deny';
      this.alert({ signal: 'file_blocked_path', message: `${basename(image)} (${pid}) ${op} ${path} (files.block${deny ? '' : ', would block with files.action: deny'})`, ProcessId: pid, Image: image, TargetFilename: path, ...(deny ? {} : { would_block: true }) }, ev.timestamp);
    }
    if (cat !== 'file_access' && sig.allowFiles && !sig.allowFiles(path)) {
      this.alert({ signal: 'file_outside_allow', message: `${basename(image)} (${pid}) ${op} ${path} outside files.allow`, ProcessId: pid, Image: image, TargetFilename: path }, ev.timestamp);
    }
  }

  private onConn(ev: Ev): void {
    const v = (ev.vigil as Ev | undefined) ?? {};
    const op = String(v.operation ?? (ev.Initiated ? 'connect' : 'accept'));
    const ip = String(ev.DestinationIp ?? '');
    const port = Number(ev.DestinationPort ?? 0);
    const host = ev.DestinationHostname as string | undefined;
    const pid = ev.ProcessId as number;
    this.human(`${op.slice(0, 5).padEnd(5)} ${pid} ${this.img(ev)}  ${ev.Protocol} ${safeText(ip)}:${port}${host ? ` (${safeText(host)})` : ''}${typeof v.result === 'number' && v.result < 0 ? `  (${safeText(String(v.error ?? v.result))})` : ''}`);
    if (!ev.Initiated) return;
    const key = `${ev.Protocol}|${ip}|${port}`;
    let e = this.endpoints.get(key);
    if (!e && this.endpoints.size < MAX_LIST) {
      e = { ip, port, protocol: String(ev.Protocol), connections: 0, ProcessIds: [] };
      this.endpoints.set(key, e);
    }
    if (e) {
      const fd = (ev.vigil as Ev | undefined)?.fd;
      if (typeof fd === 'number') {
        if (this.sockets.size > 65536) this.sockets.clear();
        const key = `${pid}:${fd}`;
        this.sockets.set(key, e);
        const early = this.unjoined.get(key);
        if (early) {
          this.unjoined.delete(key);
          // timestamps are fixed-width RFC 3339 UTC: as strings they sort as times
          const since = String(ev.timestamp ?? '');
          for (const t of early) if (t.ts >= since) this.addTls(e, t.send, t.n);
        }
      }
      e.connections++;
      if (host) e.host = host;
      if (!e.ProcessIds.includes(pid) && e.ProcessIds.length < 64) e.ProcessIds.push(pid);
    }
    if (this.o.signals.outsideNetwork(ip, host)) {
      const image = String(ev.Image ?? '');
      this.alert({ signal: 'network_outside_allow', message: `${basename(image)} (${pid}) connected to ${host ? `${host} ` : ''}${ip}:${port} outside network.allow`, ProcessId: pid, Image: image, DestinationIp: ip, DestinationPort: port, ...(host ? { DestinationHostname: host } : {}) }, ev.timestamp);
    }
  }

  private onTls(ev: Ev): void {
    const n = Number(ev.Bytes ?? 0);
    const send = ev.Direction === 'send';
    this.tls.calls++;
    if (send) this.tls.sent_bytes += n;
    else this.tls.received_bytes += n;
    const trunc = ((ev.vigil as Ev | undefined)?.truncated as string[] | undefined)?.includes('Data');
    if (trunc) this.tls.truncated_calls++;
    const pid = ev.ProcessId as number;
    let b = this.tlsBy.get(pid);
    if (!b && this.tlsBy.size < MAX_LIST) this.tlsBy.set(pid, (b = { ProcessId: pid, Image: String(ev.Image ?? ''), sent: 0, received: 0 }));
    if (b) b[send ? 'sent' : 'received'] += n;
    const fd = (ev.vigil as Ev | undefined)?.fd;
    const ep = typeof fd === 'number' ? this.sockets.get(`${pid}:${fd}`) : undefined;
    if (ep) this.addTls(ep, send, n);
    else if (typeof fd === 'number') {
      // its connect may not have been read yet (another ring): kept for it, bounded
      const key = `${pid}:${fd}`;
      let l = this.unjoined.get(key);
      if (!l && this.unjoined.size < 4096) this.unjoined.set(key, (l = []));
      if (l && l.length < 256) l.push({ ts: String(ev.timestamp ?? ''), n, send });
    }
    const data = String(ev.Data ?? '');
    const shown = data.length > 120 ? `${data.slice(0, 120)}…` : data;
    const peer = ep ? ` ${send ? '→' : '←'} ${safeText(ep.host ?? ep.ip)}:${ep.port}` : '';
    this.human(`tls${send ? '> ' : '< '} ${pid} ${this.img(ev)}${peer}  ${n} B${trunc ? ' (cut)' : ''}  ${safeText(shown)}`);
  }

  private addTls(ep: WatchSummary['endpoints'][number], send: boolean, n: number): void {
    if (send) ep.tls_sent = (ep.tls_sent ?? 0) + n;
    else ep.tls_received = (ep.tls_received ?? 0) + n;
  }

  /** A Sigma rule fired on an event of the tree. */
  sigma(a: Record<string, unknown>): void {
    const ev = (a.event as Ev | undefined) ?? {};
    const pid = Number(ev.ProcessId ?? 0);
    const image = String(ev.Image ?? '');
    this.alert({ signal: 'sigma', message: `[${a.level}] ${a.rule_title} (${basename(image)} ${pid})`, ProcessId: pid, Image: image, rule_id: String(a.rule_id), rule_title: String(a.rule_title), level: String(a.level) }, a.timestamp);
  }

  /**
   * What the kernel refused in the tree: the exec of a shell (shells.action:
   * deny), the open of a sensitive or blocked file (sensitive.action / files.action:
   * deny), a connection outside network.allow (network.action: deny).
   */
  denied(d: GuardDenial, ts?: string): void {
    const proc = this.procs.get(d.task.tgid);
    const image = proc?.Image ?? `[${d.task.comm}]`;
    const who = `${d.task.comm} (${d.task.tgid})`;
    if (d.kind === 'net') {
      const what = `${who} ${d.operation} ${d.protocol === 'ipv6' ? `[${d.ip}]` : d.ip}:${d.port}: EPERM`;
      if (this.blocked.length < MAX_LIST) this.blocked.push(what);
      this.alert({ signal: 'network_denied', message: `${what} (network.action: deny)`, ProcessId: d.task.tgid, Image: image, DestinationIp: d.ip, DestinationPort: d.port }, ts);
    } else if (d.kind === 'shell') {
      const what = `${who} exec ${d.path || 'a shell'}: EPERM`;
      if (this.blocked.length < MAX_LIST) this.blocked.push(what);
      this.alert({ signal: 'shell_denied', message: `${what} (shells.action: deny)`, ProcessId: d.task.tgid, Image: image, TargetFilename: d.path }, ts);
    } else {
      const sensitive = this.o.signals.isSensitive(d.path);
      const what = `${who} open ${d.path || 'a guarded file'}: EPERM`;
      if (this.blocked.length < MAX_LIST) this.blocked.push(what);
      if (sensitive && this.sensitive.length < MAX_LIST) this.sensitive.push({ path: d.path, ProcessId: d.task.tgid, Image: image, operation: 'open denied' });
      this.alert({ signal: 'file_denied', message: `${what} (${sensitive ? 'sensitive' : 'files'}.action: deny)`, ProcessId: d.task.tgid, Image: image, TargetFilename: d.path }, ts);
    }
  }

  summary(exit: { code: number; signal: string | null }, losses: Record<string, number>): WatchSummary {
    return {
      category: 'watch_summary',
      command: this.o.command,
      exit_code: exit.code,
      signal: exit.signal,
      duration_ms: Date.now() - this.started,
      processes: [...this.procs.values()],
      files_written: [...this.written].sort(),
      files_read: [...this.read].sort(),
      files_read_total: this.readTotal,
      sensitive: this.sensitive,
      endpoints: [...this.endpoints.values()],
      tls: { ...this.tls, by_process: [...this.tlsBy.values()] },
      alerts: this.alerts,
      blocked: [...this.blocked],
      events: { ...this.counts },
      losses,
    };
  }
}

/** The summary for a person: a few lines per section, control characters escaped. */
export function formatSummary(s: WatchSummary): string {
  const L: string[] = [];
  const t = (x: string) => safeText(x);
  L.push('', `── vigil watch summary: ${t(s.command.join(' '))}`);
  L.push(`exit ${s.signal ? `signal ${s.signal}` : s.exit_code}, ${(s.duration_ms / 1000).toFixed(1)} s, ${Object.values(s.events).reduce((a, b) => a + b, 0)} events`);
  L.push(`processes (${s.processes.length}):`);
  for (const p of s.processes.slice(0, 50)) L.push(`  ${p.ProcessId} ← ${p.ParentProcessId}  ${t(p.CommandLine || p.Image)}${p.exit_code !== undefined ? `  [exit ${p.exit_code}]` : ''}`);
  L.push(`files written (${s.files_written.length}):`);
  for (const f of s.files_written.slice(0, 30)) L.push(`  ${t(f)}`);
  L.push(`files read (${s.files_read.length} distinct, ${s.files_read_total} opens)${s.files_read.length > 30 ? ': first 30' : ''}:`);
  for (const f of s.files_read.slice(0, 30)) L.push(`  ${t(f)}`);
  L.push(`sensitive accesses (${s.sensitive.length}):`);
  for (const x of s.sensitive.slice(0, 50)) L.push(`  ${t(x.path)}  by ${t(basename(x.Image))} (${x.ProcessId}) ${x.operation}`);
  L.push(`endpoints (${s.endpoints.length}):`);
  for (const e of s.endpoints.slice(0, 50)) {
    const tls = e.tls_sent || e.tls_received ? `  TLS ${e.tls_sent ?? 0} B sent, ${e.tls_received ?? 0} B received` : '';
    L.push(`  ${e.protocol} ${t(e.ip)}:${e.port}${e.host ? ` (${t(e.host)})` : ''}  ×${e.connections}${tls}`);
  }
  L.push(`TLS plaintext: ${s.tls.sent_bytes} B sent, ${s.tls.received_bytes} B received in ${s.tls.calls} calls${s.tls.truncated_calls ? ` (${s.tls.truncated_calls} captures cut)` : ''}`);
  L.push(`alerts (${s.alerts.length}):`);
  for (const a of s.alerts.slice(0, 50)) L.push(`  ${a.signal}: ${t(a.message)}`);
  if (s.blocked.length) {
    L.push(`blocked (${s.blocked.length}):`);
    for (const b of s.blocked.slice(0, 50)) L.push(`  ${t(b)}`);
  } else L.push('blocked: none');
  const lost = Object.entries(s.losses).filter(([, v]) => v > 0);
  L.push(`losses: ${lost.length ? lost.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  return L.join('\n');
}
