import { describe, expect, it } from 'vitest';
import { RecordError } from '../../../src/kernel/errors.js';
import { ProcessContext } from '../../../src/process/context.js';
import { decodeNetRecord } from '../../../src/sensors/net/decode.js';
import { NetEventBuilder } from '../../../src/sensors/net/events.js';
import { AF_INET6, NetFlags, NetOp, VigilNetConn, VigilNetDns } from '../../../src/sensors/net/layouts.js';
import type { DnsQueryEvent, NetworkConnectionEvent } from '../../../src/sensors/net/schema.js';
import { EventSchema } from '../../../src/sensors/index.js';
import { connRecord, dnsMessage, dnsRecord, name, ptr, rr, view } from './records.js';

const decode = (b: Buffer) => decodeNetRecord(view(b), b, 0, b.length);

function setup(now = { t: 0 }) {
  const ctx = new ProcessContext({ host: 'test-host', bootId: '11111111-2222-3333-4444-555555555555' });
  ctx.table.exec({ pid: 4242, ppid: 1, startNs: 1_000_000_000n, image: '/usr/bin/curl', commandLine: 'curl x', cwd: '/', uid: 0 });
  const b = new NetEventBuilder(ctx, { now: () => now.t, dnsTimeoutMs: 5000, pendingMax: 3 });
  const all: Array<Record<string, unknown>> = [];
  const handle = (buf: Buffer) => {
    const evs = b.handle(decode(buf));
    // every connection event of these tests: the JSON text written while building is JSON.stringify's
    for (const ev of evs) {
      if (ev.category !== 'network_connection') continue;
      expect(ev).toBe(b.lastConn);
      expect(b.lastConnJson).toBe(JSON.stringify(ev));
    }
    all.push(...(evs as unknown as Array<Record<string, unknown>>));
    return evs;
  };
  return { ctx, b, handle, all, now };
}

const A = (ip: string) => Buffer.from(ip.split('.').map(Number));

describe('network record decoding', () => {
  it('decodes a connection record field by field', () => {
    const r = decode(connRecord({ op: NetOp.ACCEPT, result: 0, fd: 7, local: '10.0.0.1', localPort: 80, remote: '10.0.0.9', remotePort: 40000, task: { tgid: 99, pid: 100, comm: 'srv' } }));
    expect(r).toMatchObject({ type: 'conn', op: NetOp.ACCEPT, fd: 7, family: 2, localPort: 80, remotePort: 40000 });
    if (r.type !== 'conn') throw new Error();
    expect(r.task).toMatchObject({ tgid: 99, pid: 100, comm: 'srv' });
    expect([...r.localAddr.subarray(0, 4)]).toEqual([10, 0, 0, 1]);
  });

  it('refuses short, oversized and unknown records', () => {
    expect(() => decode(connRecord().subarray(0, 100))).toThrow(RecordError);
    expect(() => decode(connRecord({ size: 100 }))).toThrow(/expected at least 168/);
    const dns = dnsRecord(Buffer.alloc(20), { dataLen: 600 });
    expect(() => decode(dns)).toThrow(/overrun/);
    const lie = dnsRecord(Buffer.alloc(20), { dataLen: 40 });
    expect(() => decode(lie)).toThrow(/overrun/);
    const unknown = connRecord();
    unknown.writeUInt16LE(47, 0);
    expect(() => decode(unknown)).toThrow(/unknown record type 47/);
    const version = connRecord();
    version.writeUInt8(9, 2);
    expect(() => decode(version)).toThrow(/version 9/);
    expect(() => decode(Buffer.alloc(8))).toThrow(/shorter than/);
  });

  it('copies the DNS payload out of the ring', () => {
    const msg = dnsMessage({});
    const buf = dnsRecord(msg);
    const r = decode(buf);
    if (r.type !== 'dns') throw new Error();
    buf.fill(0, VigilNetDns.size);
    expect(Buffer.compare(r.data, msg)).toBe(0);
  });
});

describe('network_connection events', () => {
  it('connect: Source is this end, Destination what was asked for', () => {
    const { handle } = setup();
    const [e] = handle(connRecord({ op: NetOp.CONNECT, local: '192.0.2.2', localPort: 51000, addr: '198.51.100.7', addrPort: 443, remote: '198.51.100.7', remotePort: 443 })) as NetworkConnectionEvent[];
    expect(e).toMatchObject({
      category: 'network_connection',
      Hostname: 'test-host',
      ProcessId: 4242,
      Image: '/usr/bin/curl',
      Initiated: true,
      Protocol: 'tcp',
      SourceIsIpv6: false,
      SourceIp: '192.0.2.2',
      SourcePort: 51000,
      DestinationIsIpv6: false,
      DestinationIp: '198.51.100.7',
      DestinationPort: 443,
    });
    expect(e!.vigil).toMatchObject({ operation: 'connect', result: 0, family: 'inet', ip_protocol: 6, fd: 3 });
    expect(e!.DestinationHostname).toBeUndefined();
    expect(EventSchema.safeParse(e).success).toBe(true);
  });

  it('a failed connect names its errno; EINPROGRESS is initiated', () => {
    const { handle } = setup();
    const [refused] = handle(connRecord({ result: -111, addr: '127.0.0.1', addrPort: 1, flags: NetFlags.ADDR | NetFlags.LOCAL_UNSET })) as NetworkConnectionEvent[];
    expect(refused).toMatchObject({ Initiated: true, SourceIp: '0.0.0.0', SourcePort: 0, DestinationIp: '127.0.0.1', DestinationPort: 1 });
    expect(refused!.vigil).toMatchObject({ result: -111, errno: 'ECONNREFUSED' });
    const [inprog] = handle(connRecord({ result: -115, addr: '127.0.0.1', addrPort: 80, localPort: 3333, local: '127.0.0.1' })) as NetworkConnectionEvent[];
    expect(inprog!.vigil.errno).toBe('EINPROGRESS');
    expect(inprog!.Initiated).toBe(true);
  });

  it('accept: Source is the peer, Destination this end', () => {
    const { handle } = setup();
    const [e] = handle(connRecord({ op: NetOp.ACCEPT, local: '10.0.0.1', localPort: 22, remote: '10.0.0.9', remotePort: 40000, fd: 9 })) as NetworkConnectionEvent[];
    expect(e).toMatchObject({ Initiated: false, SourceIp: '10.0.0.9', SourcePort: 40000, DestinationIp: '10.0.0.1', DestinationPort: 22 });
    expect(e!.vigil).toMatchObject({ operation: 'accept', fd: 9 });
  });

  it('bind and listen: the local end; a failed bind shows what was asked', () => {
    const { handle } = setup();
    const [bound] = handle(connRecord({ op: NetOp.BIND, local: '0.0.0.0', localPort: 8080, addr: '0.0.0.0', addrPort: 0 })) as NetworkConnectionEvent[];
    expect(bound).toMatchObject({ Initiated: false, SourceIp: '0.0.0.0', SourcePort: 0, DestinationIp: '0.0.0.0', DestinationPort: 8080 });
    const [failed] = handle(connRecord({ op: NetOp.BIND, result: -98, localPort: 0, addr: '127.0.0.1', addrPort: 22 })) as NetworkConnectionEvent[];
    expect(failed).toMatchObject({ DestinationIp: '127.0.0.1', DestinationPort: 22 });
    expect(failed!.vigil.errno).toBe('EADDRINUSE');
    const [listen] = handle(connRecord({ op: NetOp.LISTEN, family: AF_INET6, local: '::', localPort: 8080 })) as NetworkConnectionEvent[];
    expect(listen).toMatchObject({ Initiated: false, SourceIp: '::', SourceIsIpv6: true, DestinationIp: '::', DestinationIsIpv6: true, DestinationPort: 8080 });
    expect(listen!.vigil.operation).toBe('listen');
  });

  it('UDP, IPv6, and IPv4 over an IPv6 socket', () => {
    const { handle } = setup();
    const [u] = handle(connRecord({ sockType: 2, protocol: 17, family: AF_INET6, local: '2001:db8::2', localPort: 5000, addr: '2001:db8::1', addrPort: 53 })) as NetworkConnectionEvent[];
    expect(u).toMatchObject({ Protocol: 'udp', SourceIp: '2001:db8::2', SourceIsIpv6: true, DestinationIp: '2001:db8::1', DestinationIsIpv6: true });
    const [m] = handle(connRecord({ family: AF_INET6, local: '::ffff:127.0.0.1', localPort: 5000, addr: '::ffff:127.0.0.1', addrPort: 80 })) as NetworkConnectionEvent[];
    expect(m).toMatchObject({ SourceIp: '127.0.0.1', SourceIsIpv6: false, DestinationIp: '127.0.0.1', DestinationIsIpv6: false });
    expect(m!.vigil.family).toBe('inet6');
  });

  it('an unknown operation is a bad record', () => {
    const { handle } = setup();
    expect(() => handle(connRecord({ op: 9 }))).toThrow(RecordError);
  });

  it('an image the process table does not know shows the kernel comm in brackets', () => {
    const { handle } = setup();
    const [e] = handle(connRecord({ task: { tgid: 777, comm: 'ghost' }, addr: '1.1.1.1', addrPort: 80 })) as NetworkConnectionEvent[];
    expect(e!.Image).toBe('[ghost]');
  });
});

describe('dns_query events and DestinationHostname', () => {
  const answer = (id: number, qname: string, ips: string[], qtype = 1) =>
    dnsMessage({ id, response: true, qname, qtype, answers: ips.map((ip) => rr({ name: ptr(12), type: 1, data: A(ip) })) });

  it('pairs a query with its answer: one event, the query\'s time, the answer\'s results', () => {
    const { handle, b } = setup();
    expect(handle(dnsRecord(dnsMessage({ id: 7, qname: 'api.example.com' }), { ktimeNs: 1_000n }))).toEqual([]);
    expect(b.waiting).toBe(1);
    const [e] = handle(dnsRecord(answer(7, 'api.example.com', ['203.0.113.5', '203.0.113.6']), { op: NetOp.RECV, ktimeNs: 2_000n })) as DnsQueryEvent[];
    expect(e).toMatchObject({
      category: 'dns_query',
      ProcessId: 4242,
      Image: '/usr/bin/curl',
      QueryName: 'api.example.com',
      QueryStatus: '0',
      QueryResults: '::ffff:203.0.113.5;::ffff:203.0.113.6;',
    });
    expect(e!.vigil).toMatchObject({ boot_ns: '1000', query_type: 'A', query_id: 7, rcode: 'NOERROR', server_ip: '127.0.0.53', server_port: 53, protocol: 'udp', response: true, query_seen: true });
    expect(b.waiting).toBe(0);
    expect(EventSchema.safeParse(e).success).toBe(true);
  });

  it('the same process\'s next connect to an answered address carries DestinationHostname; another process gets the host-wide one', () => {
    const { handle, ctx } = setup();
    handle(dnsRecord(dnsMessage({ id: 1, qname: 'pool.minexmr.com' })));
    handle(dnsRecord(answer(1, 'pool.minexmr.com', ['203.0.113.9']), { op: NetOp.RECV }));
    const [own] = handle(connRecord({ addr: '203.0.113.9', addrPort: 4444 })) as NetworkConnectionEvent[];
    expect(own).toMatchObject({ DestinationHostname: 'pool.minexmr.com' });
    expect(own!.vigil.hostname_source).toBe('process');
    ctx.table.exec({ pid: 5000, ppid: 1, startNs: 2_000_000_000n, image: '/bin/other', commandLine: 'other', cwd: '/', uid: 0 });
    const [other] = handle(connRecord({ addr: '203.0.113.9', addrPort: 4444, task: { tgid: 5000, startNs: 2_000_000_000n } })) as NetworkConnectionEvent[];
    expect(other).toMatchObject({ DestinationHostname: 'pool.minexmr.com' });
    expect(other!.vigil.hostname_source).toBe('host');
    // accept does not look names up
    const [acc] = handle(connRecord({ op: NetOp.ACCEPT, remote: '203.0.113.9', local: '10.0.0.1', localPort: 80 })) as NetworkConnectionEvent[];
    expect(acc!.DestinationHostname).toBeUndefined();
  });

  it('NXDOMAIN and an answer whose query was not seen', () => {
    const { handle, b } = setup();
    const [e] = handle(dnsRecord(dnsMessage({ id: 3, response: true, rcode: 3, qname: 'nope.example' }), { op: NetOp.RECV })) as DnsQueryEvent[];
    expect(e).toMatchObject({ QueryName: 'nope.example', QueryStatus: '9003', QueryResults: '-' });
    expect(e!.vigil).toMatchObject({ rcode: 'NXDOMAIN', query_seen: false, response: true });
    expect(b.counters().dns_answer_only).toBe(1);
  });

  it('a query with no answer is reported after the timeout, and at flush', () => {
    const now = { t: 1000 };
    const { handle, b } = setup(now);
    handle(dnsRecord(dnsMessage({ id: 1, qname: 'slow.example' })));
    now.t = 3000;
    handle(dnsRecord(dnsMessage({ id: 2, qname: 'later.example' })));
    now.t = 5999;
    expect(b.expire()).toEqual([]);
    now.t = 6001;
    const [e] = b.expire();
    expect(e).toMatchObject({ QueryName: 'slow.example', QueryStatus: '1460', QueryResults: '-' });
    expect(e!.vigil).toMatchObject({ rcode: 'NO_RESPONSE', response: false, query_seen: true, answers: [] });
    expect(EventSchema.safeParse(e).success).toBe(true);
    const rest = b.flush();
    expect(rest.map((x) => x.QueryName)).toEqual(['later.example']);
    expect(b.counters().dns_unanswered).toBe(2);
  });

  it('at most pendingMax queries wait: the oldest is pushed out unanswered (counted)', () => {
    const { handle, b } = setup();
    for (let i = 1; i <= 3; i++) expect(handle(dnsRecord(dnsMessage({ id: i, qname: `q${i}.example` })))).toEqual([]);
    const out = handle(dnsRecord(dnsMessage({ id: 4, qname: 'q4.example' }))) as DnsQueryEvent[];
    expect(out.map((e) => e.QueryName)).toEqual(['q1.example']);
    expect(b.counters()).toMatchObject({ dns_pending_evicted: 1, dns_unanswered: 1 });
  });

  it('a retransmitted query waits once; the answer matches case-insensitively (0x20 randomisation)', () => {
    const { handle, b } = setup();
    handle(dnsRecord(dnsMessage({ id: 9, qname: 'Mixed.Example' })));
    handle(dnsRecord(dnsMessage({ id: 9, qname: 'Mixed.Example' })));
    expect(b.waiting).toBe(1);
    const [e] = handle(dnsRecord(answer(9, 'mIXED.example', ['192.0.2.1']), { op: NetOp.RECV })) as DnsQueryEvent[];
    expect(e!.vigil.query_seen).toBe(true);
    expect(b.waiting).toBe(0);
  });

  it('malformed DNS is counted and produces nothing', () => {
    const { handle, b } = setup();
    expect(handle(dnsRecord(Buffer.from('\x00\x01garbage')))).toEqual([]);
    expect(handle(dnsRecord(Buffer.concat([Buffer.alloc(4), Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]), ptr(12)]), { op: NetOp.RECV }))).toEqual([]);
    expect(handle(dnsRecord(Buffer.from([0]), { protocol: 6 }))).toEqual([]);
    expect(b.counters().dns_malformed).toBe(3);
  });

  it('a cut capture keeps the answers before the cut and says so', () => {
    const { handle } = setup();
    const full = answer(5, 'big.example', ['192.0.2.1', '192.0.2.2']);
    const cut = full.subarray(0, full.length - 3);
    const [e] = handle(dnsRecord(cut, { op: NetOp.RECV, flags: NetFlags.DNS_TRUNCATED, msgLen: 900 })) as DnsQueryEvent[];
    expect(e!.vigil.answers.map((a) => a.data)).toEqual(['192.0.2.1']);
    expect(e!.vigil.truncated).toEqual(['QueryResults']);
  });

  it('DNS over TCP: the 2-byte length prefix is skipped', () => {
    const { handle } = setup();
    const msg = answer(6, 'tcp.example', ['192.0.2.3']);
    const framed = Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
    const [e] = handle(dnsRecord(framed, { op: NetOp.RECV, protocol: 6 })) as DnsQueryEvent[];
    expect(e).toMatchObject({ QueryName: 'tcp.example', QueryResults: '::ffff:192.0.2.3;' });
    expect(e!.vigil.protocol).toBe('tcp');
  });

  it('attacker-controlled names stay data: escaped in QueryName and DestinationHostname', () => {
    const { handle } = setup();
    const evil = Buffer.concat([Buffer.from([14]), Buffer.from('evil.com\n\x1b[31m', 'latin1'), name('x')]);
    const msg = dnsMessage({ id: 11, response: true, qname: evil, answers: [rr({ name: ptr(12), type: 1, data: A('192.0.2.66') })] });
    const [q] = handle(dnsRecord(msg, { op: NetOp.RECV })) as DnsQueryEvent[];
    expect(q!.QueryName).toBe('evil\\.com\\010\\027[31m.x');
    const [c] = handle(connRecord({ addr: '192.0.2.66', addrPort: 443 })) as NetworkConnectionEvent[];
    expect(c!.DestinationHostname).toBe('evil\\.com\\010\\027[31m.x');
    expect(VigilNetConn.size).toBe(168);
  });
});
