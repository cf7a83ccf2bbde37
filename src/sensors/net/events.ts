/**
 * Turns decoded network records into events: network_connection for connect,
 * accept, bind and listen; dns_query for each DNS query (emitted when its answer
 * arrives, or as unanswered after a timeout), and the names learned from the
 * answers become DestinationHostname of the same process's later connections.
 * Malformed DNS is counted (counters.dns_malformed) and never throws.
 */
import { RecordError } from '../../kernel/errors.js';
import { errnoName } from '../../kernel/errors.js';
import { jsonString } from '../../store/json.js';
import type { TaskIds } from '../../events/records.js';
import type { ProcessContext } from '../../process/context.js';
import type { ConnRecord, DnsRecord, NetRecord } from './decode.js';
import { DnsParseError, DnsType, STATUS_NO_RESPONSE, parseDns, queryResults, queryStatus, rcodeName, typeName, type DnsMessage } from './dns.js';
import { HostnameCache } from './hostnames.js';
import { formatAddr, unspecified, type IpText } from './ip.js';
import { AF_INET6, IPPROTO_TCP, NetFlags, NetOp, SOCK_STREAM } from './layouts.js';
import type { DnsQueryEvent, NetworkConnectionEvent } from './schema.js';

export type NetEvent = NetworkConnectionEvent | DnsQueryEvent;

export interface NetEventBuilderOptions {
  /** host-wide IP → name entries (0: no DestinationHostname) */
  hostnamesMax?: number;
  /** a query with no answer after this long is reported unanswered */
  dnsTimeoutMs?: number;
  /** queries waiting for their answer (the oldest is reported unanswered beyond it) */
  pendingMax?: number;
  /** wall clock in ms (tests) */
  now?: () => number;
}

/** Userspace counters of the sensor (losses and what was left out). */
export interface NetCounters {
  /** DNS messages that did not parse (dropped) */
  dns_malformed: number;
  /** queries reported without an answer (timed out, or evicted when too many waited) */
  dns_unanswered: number;
  /** of those, reported early because pendingMax queries were waiting */
  dns_pending_evicted: number;
  /** answers whose query was not seen (reported alone) */
  dns_answer_only: number;
  /** IP → name entries forgotten to stay within bounds */
  hostnames_evicted: number;
}

interface PendingQuery {
  ktimeNs: bigint;
  task: TaskIds;
  msg: DnsMessage;
  server: IpText;
  serverPort: number;
  protocol: 'udp' | 'tcp';
  truncated: boolean;
  atMs: number;
}

const OPS: Record<number, NetworkConnectionEvent['vigil']['operation']> = {
  [NetOp.CONNECT]: 'connect',
  [NetOp.ACCEPT]: 'accept',
  [NetOp.BIND]: 'bind',
  [NetOp.LISTEN]: 'listen',
};

export class NetEventBuilder {
  readonly names: HostnameCache;
  private readonly pending = new Map<string, PendingQuery>();
  private readonly timeoutMs: number;
  private readonly pendingMax: number;
  private readonly now: () => number;
  private readonly c = { dns_malformed: 0, dns_unanswered: 0, dns_pending_evicted: 0, dns_answer_only: 0 };

  constructor(
    private readonly ctx: ProcessContext,
    opts: NetEventBuilderOptions = {},
  ) {
    this.names = new HostnameCache({ maxHosts: opts.hostnamesMax ?? 4096 });
    this.timeoutMs = opts.dnsTimeoutMs ?? 5000;
    this.pendingMax = opts.pendingMax ?? 1024;
    this.now = opts.now ?? Date.now;
  }

  counters(): NetCounters {
    return { ...this.c, hostnames_evicted: this.names.evicted };
  }

  /** The events a record produces (none, one, or unanswered queries pushed out). */
  handle(rec: NetRecord): NetEvent[] {
    return rec.type === 'conn' ? [this.conn(rec)] : this.dns(rec);
  }

  /** Queries that waited longer than the timeout, reported unanswered. */
  expire(): DnsQueryEvent[] {
    const out: DnsQueryEvent[] = [];
    const limit = this.now() - this.timeoutMs;
    for (const [k, q] of this.pending) {
      if (q.atMs > limit) break; // insertion order is arrival order
      this.pending.delete(k);
      this.c.dns_unanswered++;
      out.push(this.dnsEvent(q, null, q.msg, true));
    }
    return out;
  }

  /** Every waiting query, reported unanswered (at shutdown). */
  flush(): DnsQueryEvent[] {
    const out: DnsQueryEvent[] = [];
    for (const q of this.pending.values()) {
      this.c.dns_unanswered++;
      out.push(this.dnsEvent(q, null, q.msg, true));
    }
    this.pending.clear();
    return out;
  }

  get waiting(): number {
    return this.pending.size;
  }

  /**
   * the last network_connection event built and its JSON text (what JSON.stringify
   * gives, written while it was built: the agent does not serialize it again)
   */
  lastConn: NetworkConnectionEvent | null = null;
  lastConnJson = '';

  private conn(r: ConnRecord): NetworkConnectionEvent {
    const operation = OPS[r.op];
    if (!operation) throw new RecordError(`network record with unknown operation ${r.op}`, 0);
    const actor = this.ctx.actor(r.ktimeNs, r.task);
    const local = formatAddr(r.family, r.localAddr);
    const remote = formatAddr(r.family, r.remoteAddr);
    const caller = r.flags & NetFlags.ADDR ? { ...formatAddr(r.addrFamily, r.addr), port: r.addrPort } : null;
    let src: IpText;
    let sport: number;
    let dst: IpText;
    let dport: number;
    switch (r.op) {
      case NetOp.CONNECT:
        src = local;
        sport = r.localPort;
        dst = caller ?? remote;
        dport = caller ? caller.port : r.remotePort;
        break;
      case NetOp.ACCEPT:
        src = remote;
        sport = r.remotePort;
        dst = local;
        dport = r.localPort;
        break;
      default: {
        // bind, listen: the local end; a failed bind shows what was asked for
        src = unspecified(r.family);
        sport = 0;
        const asked = r.op === NetOp.BIND && r.result !== 0 && caller;
        dst = asked ? caller : local;
        dport = asked ? caller.port : r.localPort;
      }
    }
    // the task fields' object is fresh per event: it becomes vigil (no copy); the
    // object and its JSON text are written side by side, in the same member order
    const ctx = this.ctx;
    const task = ctx.taskFields(r.ktimeNs, r.task);
    const family = r.family === AF_INET6 ? 'inet6' : 'inet';
    const vigil = task as unknown as NetworkConnectionEvent['vigil'];
    vigil.operation = operation;
    vigil.result = r.result;
    vigil.family = family;
    vigil.ip_protocol = r.protocol;
    vigil.fd = r.fd;
    let vj = `${ctx.taskJson(task)},"operation":"${operation}","result":${r.result},"family":"${family}","ip_protocol":${r.protocol},"fd":${r.fd}`;
    if (r.result < 0) {
      vigil.errno = errnoName(r.result);
      vj += `,"errno":${jsonString(vigil.errno)}`;
    }
    const initiated = r.op === NetOp.CONNECT;
    const protocol = r.sockType === SOCK_STREAM ? 'tcp' : 'udp';
    const ev: NetworkConnectionEvent = {
      category: 'network_connection',
      timestamp: actor.timestamp,
      Hostname: actor.Hostname,
      ProcessId: actor.ProcessId,
      ProcessGuid: actor.ProcessGuid,
      Image: actor.Image,
      User: actor.User,
      Initiated: initiated,
      Protocol: protocol,
      SourceIsIpv6: src.v6,
      SourceIp: src.ip,
      SourcePort: sport,
      DestinationIsIpv6: dst.v6,
      DestinationIp: dst.ip,
      DestinationPort: dport,
      vigil,
    };
    let tail = '}';
    if (initiated) {
      const hit = this.names.lookup(actor.ProcessGuid, dst.ip);
      if (hit) {
        ev.DestinationHostname = hit.name;
        vigil.hostname_source = hit.source;
        vj += `,"hostname_source":${jsonString(hit.source)}`;
        tail = `,"DestinationHostname":${jsonString(hit.name)}}`;
      }
    }
    this.lastConn = ev;
    this.lastConnJson =
      `{"category":"network_connection","timestamp":"${actor.timestamp}","Hostname":${ctx.hostJson},"ProcessId":${actor.ProcessId},"ProcessGuid":"${actor.ProcessGuid}",` +
      `"Image":${jsonString(actor.Image)},"User":${jsonString(actor.User)},"Initiated":${initiated},"Protocol":"${protocol}",` +
      `"SourceIsIpv6":${src.v6},"SourceIp":${jsonString(src.ip)},"SourcePort":${sport},"DestinationIsIpv6":${dst.v6},"DestinationIp":${jsonString(dst.ip)},` +
      `"DestinationPort":${dport},"vigil":{${vj}}${tail}`;
    return ev;
  }

  private dns(r: DnsRecord): DnsQueryEvent[] {
    let data: Uint8Array = r.data;
    let partial = (r.flags & NetFlags.DNS_TRUNCATED) !== 0;
    const tcp = r.protocol === IPPROTO_TCP;
    if (tcp) {
      // DNS over TCP: a 2-byte length, then the message
      if (data.length < 2) {
        this.c.dns_malformed++;
        return [];
      }
      const n = (data[0]! << 8) | data[1]!;
      if (n + 2 > data.length) partial = true;
      data = data.subarray(2, 2 + n);
    }
    let msg: DnsMessage;
    try {
      msg = parseDns(data, partial);
    } catch (e) {
      if (e instanceof DnsParseError) {
        this.c.dns_malformed++;
        return [];
      }
      throw e;
    }
    const q: PendingQuery = {
      ktimeNs: r.ktimeNs,
      task: r.task,
      msg,
      server: formatAddr(r.family, r.peerAddr),
      serverPort: r.peerPort,
      protocol: tcp ? 'tcp' : 'udp',
      truncated: partial,
      atMs: this.now(),
    };
    const key = `${r.task.tgid}|${msg.id}|${msg.question.type}|${msg.question.name.toLowerCase()}`;
    const out: DnsQueryEvent[] = [];
    if (!msg.response) {
      this.pending.delete(key); // a retry: wait from now
      this.pending.set(key, q);
      while (this.pending.size > this.pendingMax) {
        const [k, old] = this.pending.entries().next().value as [string, PendingQuery];
        this.pending.delete(k);
        this.c.dns_unanswered++;
        this.c.dns_pending_evicted++;
        out.push(this.dnsEvent(old, null, old.msg, true));
      }
      return out;
    }
    const asked = this.pending.get(key);
    if (asked) this.pending.delete(key);
    else this.c.dns_answer_only++;
    const guid = this.ctx.guid(r.task.tgid, r.task.startNs);
    for (const a of msg.answers) {
      if (a.type === DnsType.A || a.type === DnsType.AAAA) this.names.add(guid, a.data, msg.question.name);
    }
    out.push(this.dnsEvent(asked ?? q, q, msg, !asked));
    return out;
  }

  /** One dns_query event: `query` is when it was asked (else the answer), `answer` null when none came. */
  private dnsEvent(query: PendingQuery, answer: PendingQuery | null, msg: DnsMessage, alone: boolean): DnsQueryEvent {
    const q = msg.question;
    const answered = answer !== null;
    const vigil: DnsQueryEvent['vigil'] = {
      ...this.ctx.taskFields(query.ktimeNs, query.task),
      query_type: typeName(q.type),
      query_id: msg.id,
      rcode: answered ? rcodeName(msg.rcode) : 'NO_RESPONSE',
      answers: answered ? msg.answers.map((a) => ({ name: a.name, type: typeName(a.type), ttl: a.ttl, data: a.data })) : [],
      server_ip: query.server.ip,
      server_port: query.serverPort,
      protocol: query.protocol,
      response: answered,
      query_seen: !(answered && alone),
    };
    if (answer && (answer.truncated || msg.incomplete)) vigil.truncated = ['QueryResults'];
    return {
      category: 'dns_query',
      ...this.ctx.actor(query.ktimeNs, query.task),
      QueryName: q.name,
      QueryStatus: answered ? queryStatus(msg.rcode) : STATUS_NO_RESPONSE,
      QueryResults: answered ? queryResults(msg.answers) : '-',
      vigil,
    };
  }
}
