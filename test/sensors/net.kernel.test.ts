/**
 * Loads the real network sensor on this kernel (with the exec sensor, as the
 * agent runs them) and checks what it sees of real sockets: TCP over IPv4 and
 * IPv6 loopback (bind, listen, connect, accept with both ends), a refused
 * connect, a non-blocking connect in progress, UDP connect, the agent's own
 * sockets left out, loopback left out in the kernel when configured, and DNS:
 * a dnsmasq in a private network and mount namespace answers glibc's resolver,
 * the queries become dns_query events and the answer names the next connection
 * of the same process (DestinationHostname). Sigma rules (SigmaHQ's and one of
 * our own) fire on the live events through the detection engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSensors, type SensorRun } from './harness.js';
import { firstLine } from '../cli/wait.js';
import { EventSchema } from '../../src/sensors/index.js';
import { createDetector } from '../../src/detection/index.js';
import type { DnsQueryEvent, NetworkConnectionEvent } from '../../src/sensors/net/schema.js';

const PY = '/usr/bin/python3';
const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => existsSync(p));
const SIGMA = fileURLToPath(new URL('../fixtures/sigma/rules/linux/network_connection', import.meta.url));

let run: SensorRun;
let events: Array<Record<string, unknown>>;

beforeAll(() => {
  run = startSensors({ exec: {}, network: {} });
  events = run.events;
});

afterAll(() => run?.close());

const net = () => run.sensors.find((s) => s.name === 'network')!;

function conns(pred: (e: NetworkConnectionEvent) => boolean): NetworkConnectionEvent[] {
  run.drain();
  return events.filter((e): e is NetworkConnectionEvent => e.category === 'network_connection').filter(pred);
}

function dnsEvents(pred: (e: DnsQueryEvent) => boolean): DnsQueryEvent[] {
  run.drain();
  return events.filter((e): e is DnsQueryEvent => e.category === 'dns_query').filter(pred);
}

/** Run a Python snippet; returns its pid and what it printed (JSON on the last line). */
function py(code: string): { pid: number; out: Record<string, unknown> } {
  const r = spawnSync(PY, ['-c', code], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { pid: r.pid!, out: JSON.parse(lines[lines.length - 1]!) };
}

const TCP_PAIR = (host: string, family: string) => `
import socket, json, os
srv = socket.socket(socket.${family}, socket.SOCK_STREAM)
srv.bind(('${host}', 0))
srv.listen(4)
port = srv.getsockname()[1]
cli = socket.socket(socket.${family}, socket.SOCK_STREAM)
cli.connect(('${host}', port))
conn, peer = srv.accept()
print(json.dumps({'port': port, 'cport': cli.getsockname()[1], 'cfd': cli.fileno(), 'afd': conn.fileno(), 'sfd': srv.fileno()}))
`;

describe('network sensor (real BPF on this kernel)', () => {
  it('TCP over 127.0.0.1: bind, listen, connect and accept with both ends', () => {
    const { pid, out } = py(TCP_PAIR('127.0.0.1', 'AF_INET'));
    const port = out.port as number;
    const cport = out.cport as number;
    const mine = conns((e) => e.ProcessId === pid);
    const op = (o: string) => mine.filter((e) => e.vigil.operation === o);

    expect(op('bind')).toHaveLength(1);
    expect(op('bind')[0]).toMatchObject({ Initiated: false, Protocol: 'tcp', DestinationIp: '127.0.0.1', DestinationPort: port, SourcePort: 0 });
    expect(op('bind')[0]!.vigil).toMatchObject({ result: 0, fd: out.sfd, family: 'inet', ip_protocol: 6 });
    expect(op('listen')[0]).toMatchObject({ Initiated: false, DestinationIp: '127.0.0.1', DestinationPort: port });

    const c = op('connect');
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({
      Initiated: true,
      Protocol: 'tcp',
      SourceIsIpv6: false,
      SourceIp: '127.0.0.1',
      SourcePort: cport,
      DestinationIsIpv6: false,
      DestinationIp: '127.0.0.1',
      DestinationPort: port,
    });
    expect(c[0]!.vigil).toMatchObject({ result: 0, fd: out.cfd });
    expect(c[0]!.vigil.errno).toBeUndefined();
    expect(c[0]!.Image).toBe(realpathSync(PY));
    expect(c[0]!.User).toBe('root');
    expect(c[0]!.ProcessGuid).toMatch(/^\{[0-9a-f-]{36}\}$/);

    const a = op('accept');
    expect(a).toHaveLength(1);
    // accept: Source is the peer that initiated, Destination this (listening) end
    expect(a[0]).toMatchObject({ Initiated: false, Protocol: 'tcp', SourceIp: '127.0.0.1', SourcePort: cport, DestinationIp: '127.0.0.1', DestinationPort: port });
    expect(a[0]!.vigil).toMatchObject({ operation: 'accept', result: 0, fd: out.afd });
  });

  it('TCP over ::1 (IPv6)', () => {
    const { pid, out } = py(TCP_PAIR('::1', 'AF_INET6'));
    const mine = conns((e) => e.ProcessId === pid);
    const c = mine.find((e) => e.vigil.operation === 'connect');
    expect(c).toMatchObject({ Initiated: true, SourceIsIpv6: true, SourceIp: '::1', SourcePort: out.cport, DestinationIsIpv6: true, DestinationIp: '::1', DestinationPort: out.port });
    expect(c!.vigil.family).toBe('inet6');
    const a = mine.find((e) => e.vigil.operation === 'accept');
    expect(a).toMatchObject({ Initiated: false, SourceIp: '::1', SourcePort: out.cport, DestinationIp: '::1', DestinationPort: out.port });
  });

  it('IPv4 over an IPv6 socket is shown as IPv4', () => {
    const { pid, out } = py(`
import socket, json
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM); srv.bind(('127.0.0.1', 0)); srv.listen(1)
port = srv.getsockname()[1]
cli = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
cli.connect(('::ffff:127.0.0.1', port))
print(json.dumps({'port': port, 'cport': cli.getsockname()[1]}))`);
    const [c] = conns((e) => e.ProcessId === pid && e.vigil.operation === 'connect');
    expect(c).toMatchObject({ SourceIp: '127.0.0.1', SourceIsIpv6: false, DestinationIp: '127.0.0.1', DestinationIsIpv6: false, DestinationPort: out.port, SourcePort: out.cport });
    expect(c!.vigil.family).toBe('inet6');
  });

  it('a refused connect carries its result', () => {
    const { pid, out } = py(`
import socket, json, errno
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
c = socket.socket()
rc = c.connect_ex(('127.0.0.1', port))
print(json.dumps({'port': port, 'rc': rc}))`);
    expect(out.rc).toBe(111);
    const [c] = conns((e) => e.ProcessId === pid && e.vigil.operation === 'connect');
    expect(c).toMatchObject({ Initiated: true, DestinationIp: '127.0.0.1', DestinationPort: out.port });
    expect(c!.vigil).toMatchObject({ result: -111, errno: 'ECONNREFUSED' });
  });

  it('a non-blocking connect in progress counts as initiated (EINPROGRESS)', () => {
    const { pid, out } = py(`
import socket, json
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1); port = srv.getsockname()[1]
c = socket.socket(); c.setblocking(False)
rc = c.connect_ex(('127.0.0.1', port))
print(json.dumps({'port': port, 'rc': rc, 'cport': c.getsockname()[1]}))`);
    const [c] = conns((e) => e.ProcessId === pid && e.vigil.operation === 'connect');
    expect(c).toMatchObject({ Initiated: true, DestinationPort: out.port, SourcePort: out.cport });
    expect(c!.vigil.result).toBe(out.rc === 0 ? 0 : -115);
    if (out.rc !== 0) expect(c!.vigil.errno).toBe('EINPROGRESS');
  });

  it('UDP connect and bind', () => {
    const { pid, out } = py(`
import socket, json
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('127.0.0.1', 0))
u.connect(('127.0.0.1', 9))
print(json.dumps({'lport': u.getsockname()[1]}))`);
    const mine = conns((e) => e.ProcessId === pid);
    expect(mine.find((e) => e.vigil.operation === 'bind')).toMatchObject({ Protocol: 'udp', DestinationPort: out.lport });
    expect(mine.find((e) => e.vigil.operation === 'connect')).toMatchObject({
      Initiated: true,
      Protocol: 'udp',
      SourceIp: '127.0.0.1',
      SourcePort: out.lport,
      DestinationIp: '127.0.0.1',
      DestinationPort: 9,
    });
    expect(mine.find((e) => e.vigil.operation === 'connect')!.vigil.ip_protocol).toBe(17);
  });

  it('leaves AF_UNIX sockets and the agent\'s own sockets out', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'vigil-unix-')), 's');
    const { pid } = py(`
import socket, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind('${sock}'); s.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect('${sock}')
print(json.dumps({}))`);
    expect(conns((e) => e.ProcessId === pid)).toEqual([]);

    // this test process is the agent (selfPid): its connection is not reported, the peer's accept is
    const { port, done } = await pyServerOnce();
    await new Promise<void>((resolve, reject) => {
      const c = tcpConnect(port, '127.0.0.1', () => {
        c.end();
        resolve();
      });
      c.on('error', reject);
    });
    const serverPid = await done;
    expect(conns((e) => e.ProcessId === process.pid)).toEqual([]);
    expect(conns((e) => e.ProcessId === serverPid && e.vigil.operation === 'accept')).toHaveLength(1);
  });

  it('loopback: false leaves loopback connections out in the kernel (counted)', () => {
    const quiet = startSensors({ network: { loopback: false, dns: false } });
    try {
      const { pid, out } = py(`
import socket, json
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect(('127.0.0.1', 9))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rc = v.connect_ex(('198.18.0.7', 9))
print(json.dumps({'rc': rc}))`);
      quiet.drain();
      const mine = quiet.events.filter((e) => e.category === 'network_connection' && e.ProcessId === pid) as NetworkConnectionEvent[];
      expect(mine.map((e) => e.DestinationIp)).toEqual(['198.18.0.7']);
      // without a route (the VM) the connect fails with ENETUNREACH and is still reported
      expect(mine[0]!.vigil.result).toBe(out.rc === 0 ? 0 : -(out.rc as number));
      expect(quiet.sensors[0]!.stats().kernel.loopback).toBeGreaterThanOrEqual(1);
      // the default sensor still sees both
      expect(conns((e) => e.ProcessId === pid).map((e) => e.DestinationIp).sort()).toEqual(['127.0.0.1', '198.18.0.7']);
    } finally {
      quiet.close();
    }
  });

  it('curl to a local server: the connection with both ends, and the server\'s accept', async () => {
    const { port, done } = await pyServerOnce();
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{local_port}', `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    const cport = Number(r.stdout);
    const serverPid = await done;
    const [c] = conns((e) => e.ProcessId === r.pid && e.vigil.operation === 'connect' && e.DestinationPort === port);
    expect(c).toMatchObject({ Initiated: true, Protocol: 'tcp', SourceIp: '127.0.0.1', SourcePort: cport, DestinationIp: '127.0.0.1' });
    expect(c!.Image).toMatch(/\/curl$/);
    const [a] = conns((e) => e.ProcessId === serverPid && e.vigil.operation === 'accept');
    expect(a).toMatchObject({ Initiated: false, SourcePort: cport, DestinationPort: port });
  });
});

/** A Python process that accepts one connection on 127.0.0.1 (answers HTTP 200) and exits. */
async function pyServerOnce(): Promise<{ port: number; done: Promise<number> }> {
  const { spawn } = await import('node:child_process');
  const p = spawn(PY, ['-c', `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.recv(4096)
c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')
c.close()
`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    firstLine(p.stdout).then((l) => resolve(Number(l)), reject);
    p.once('error', reject);
  });
  const done = new Promise<number>((resolve) => p.once('exit', () => resolve(p.pid!)));
  return { port, done };
}

/**
 * Runs `script` (sh) in a private network and mount namespace with lo up,
 * 198.18.0.0/15 routed to lo, a dnsmasq on 127.0.0.1:53 answering `addresses`,
 * and /etc/resolv.conf pointing at it (bind-mounted: the host's is untouched).
 */
function inDnsNamespace(addresses: string[], script: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-dns-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n');
  const setup = [
    'set -e',
    'ip link set lo up',
    'ip addr add 198.18.0.1/15 dev lo',
    `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
    `${DNSMASQ} -k --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --port=53 --user=root --pid-file=${dir}/dnsmasq.pid ${addresses.map((a) => `--address=${a}`).join(' ')} &`,
    'DPID=$!',
    // wait until it answers (up to 30 s: dnsmasq starts slowly on a busy machine); the script's own lookups would fail if it never does
    `for i in $(seq 1 300); do getent hosts ${addresses[0]!.split('/')[1]} >/dev/null 2>&1 && break; sleep 0.1; done`,
    'trap "kill $DPID" EXIT',
  ].join('\n');
  writeFileSync(join(dir, 'run.sh'), `${setup}\n${script}\n`);
  const r = spawnSync('unshare', ['-m', '-n', '/bin/sh', join(dir, 'run.sh')], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`dns namespace script failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

describe.skipIf(!DNSMASQ)('DNS (dnsmasq in a private namespace)', () => {
  let out: Record<string, number | string>;

  beforeAll(() => {
    const stdout = inDnsNamespace(
      ['/vigil-test.example/198.18.0.7', '/vigil-test.example/2001:db8::7', '/nx.vigil-test.example/', '/vigil.localto.net/198.18.0.9', '/vigil-raw.example/198.18.0.20'],
      `
getent hosts vigil-test.example
${PY} -c "
import socket, json, os
infos = socket.getaddrinfo('vigil-test.example', None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
ip = [i for i in infos if i[0] == socket.AF_INET][0][4][0]
ip6 = [i for i in infos if i[0] == socket.AF_INET6][0][4][0]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect((ip, 9))
try:
  socket.gethostbyname('nx.vigil-test.example'); nx = 'resolved'
except OSError as e:
  nx = str(e)
t = socket.getaddrinfo('vigil.localto.net', None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); w.connect((t, 4444))
# unconnected sockets: sendto + recvfrom, sendmsg + recvmsg
import struct
def query(qid, label):
  return struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + bytes([len(label)]) + label.encode() + b'\\x09vigil-raw\\x07example\\x00' + struct.pack('>HH', 1, 1)
r1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r1.settimeout(5)
r1.sendto(query(0x4242, 'raw'), ('127.0.0.1', 53)); r1.recvfrom(512)
r2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r2.settimeout(5)
r2.sendmsg([query(0x4343, 'msg')], [], 0, ('127.0.0.1', 53)); r2.recvmsg(512)
# not DNS at all: garbage to port 53 must be counted, never thrown
g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); g.sendto(b'\\x00\\x01garbage', ('127.0.0.1', 53))
print(json.dumps({'pid': os.getpid(), 'ip': ip, 'ip6': ip6, 'nx': nx, 'lport': u.getsockname()[1]}))
"
${PY} -c "
import socket, json, os
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.connect(('198.18.0.7', 10))
print(json.dumps({'other': os.getpid()}))
"
`,
    );
    const lines = stdout.trim().split('\n');
    out = { ...JSON.parse(lines[lines.length - 2]!), ...JSON.parse(lines[lines.length - 1]!) };
    expect(stdout).toMatch(/^(198\.18\.0\.7|2001:db8::7)\s+vigil-test\.example/m);
    run.drain();
  });

  it('queries and answers become dns_query events (A, AAAA, NXDOMAIN)', () => {
    expect(out.ip).toBe('198.18.0.7');
    const mine = dnsEvents((e) => e.ProcessId === out.pid);
    const a = mine.find((e) => e.QueryName === 'vigil-test.example' && e.vigil.query_type === 'A');
    expect(a).toMatchObject({ QueryStatus: '0', QueryResults: '::ffff:198.18.0.7;', Image: realpathSync(PY) });
    expect(a!.vigil).toMatchObject({ rcode: 'NOERROR', server_ip: '127.0.0.1', server_port: 53, protocol: 'udp', response: true, query_seen: true });
    expect(a!.vigil.answers).toEqual([{ name: 'vigil-test.example', type: 'A', ttl: expect.any(Number), data: '198.18.0.7' }]);
    const aaaa = mine.find((e) => e.QueryName === 'vigil-test.example' && e.vigil.query_type === 'AAAA');
    expect(out.ip6).toBe('2001:db8::7');
    expect(aaaa).toMatchObject({ QueryStatus: '0', QueryResults: '2001:db8::7;' });
    const nx = mine.find((e) => e.QueryName === 'nx.vigil-test.example' && e.vigil.query_type === 'A');
    expect(nx).toMatchObject({ QueryStatus: '9003', QueryResults: '-' });
    expect(nx!.vigil.rcode).toBe('NXDOMAIN');
    // unconnected sockets: sendto/recvfrom and sendmsg/recvmsg
    for (const [n, id] of [['raw.vigil-raw.example', 0x4242], ['msg.vigil-raw.example', 0x4343]] as const) {
      const e = mine.filter((x) => x.QueryName === n);
      expect(e, n).toHaveLength(1);
      expect(e[0]).toMatchObject({ QueryStatus: '0', QueryResults: '::ffff:198.18.0.20;' });
      expect(e[0]!.vigil).toMatchObject({ query_id: id, response: true, query_seen: true, server_ip: '127.0.0.1', server_port: 53 });
    }
    // getent (another process) resolved too
    expect(dnsEvents((e) => e.QueryName === 'vigil-test.example' && /getent$/.test(e.Image)).length).toBeGreaterThanOrEqual(1);
  });

  it('the next connection of the same process carries DestinationHostname', () => {
    const [c, ...more] = conns((e) => e.ProcessId === out.pid && e.DestinationIp === '198.18.0.7');
    // glibc's getaddrinfo also connects a UDP socket to port 0 of each answer (RFC 6724 sorting): left out, counted
    expect(more).toEqual([]);
    expect(net().stats().kernel.udp_port0).toBeGreaterThanOrEqual(1);
    expect(c).toMatchObject({ Initiated: true, Protocol: 'udp', DestinationPort: 9, DestinationHostname: 'vigil-test.example', SourceIp: '198.18.0.1', SourcePort: out.lport });
    expect(c!.vigil.hostname_source).toBe('process');
    // a process that did not resolve it gets the host-wide answer
    const [o] = conns((e) => e.ProcessId === out.other && e.DestinationIp === '198.18.0.7');
    expect(o).toMatchObject({ DestinationHostname: 'vigil-test.example', DestinationPort: 10 });
    expect(o!.vigil.hostname_source).toBe('host');
    // the resolver's own connect to the name server (loopback, reported by default)
    expect(conns((e) => e.ProcessId === out.pid && e.DestinationPort === 53 && e.Protocol === 'udp').length).toBeGreaterThanOrEqual(1);
  });

  it('malformed DNS is counted, not thrown', () => {
    const st = net().stats();
    expect(st.counters?.dns_malformed).toBeGreaterThanOrEqual(1);
    expect(st.badRecords).toBe(0);
    expect(st.kernel.dns).toBeGreaterThanOrEqual(4);
  });

  it('SigmaHQ network_connection rules and one of our own fire on the live events', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-net-rules-'));
    mkdirSync(join(dir, 'sigmahq'));
    for (const f of ['net_connection_lnx_domain_localtonet_tunnel.yml', 'net_connection_lnx_susp_malware_callback_port.yml']) cpSync(join(SIGMA, f), join(dir, 'sigmahq', f));
    writeFileSync(
      join(dir, 'own.yml'),
      `title: UDP to the test resolver's answer by name
id: 6f1c2a9e-1d0b-4c1e-9a57-0c3d1e0b7a11
status: test
logsource: { product: linux, category: network_connection }
detection:
  selection:
    Initiated: 'true'
    Protocol: udp
    DestinationHostname|endswith: '.example'
    DestinationIp|cidr: 198.18.0.0/15
  condition: selection
level: low
`,
    );
    writeFileSync(
      join(dir, 'own-dns.yml'),
      `title: DNS lookup of a LocaltoNet name
id: 0b9f6c1e-52a3-4d7e-8f21-6a0e3c9d4b22
status: test
logsource: { product: linux, category: dns_query }
detection:
  selection:
    QueryName|endswith: '.localto.net'
    QueryStatus: '0'
  condition: selection
level: low
`,
    );
    const det = createDetector({ ruleDirs: [dir], onError: (e) => { if (e.severity === 'error') throw new Error(e.message); } });
    try {
      expect(det.stats().rules).toBe(4);
      const fired = new Map<string, Array<Record<string, unknown>>>();
      run.drain();
      for (const ev of events) for (const a of det.evaluate(ev)) fired.set(a.rule_id, [...(fired.get(a.rule_id) ?? []), a.event]);
      // SigmaHQ: LocaltoNet tunnel (DestinationHostname|endswith .localto.net, Initiated 'true'): our DNS answer named it
      const lt = fired.get('c4568f5d-131f-4e78-83d4-45b2da0ec4f1') ?? [];
      expect(lt.map((e) => [e.ProcessId, e.DestinationHostname, e.DestinationPort])).toEqual([[out.pid, 'vigil.localto.net', 4444]]);
      // SigmaHQ: malware callback port (4444) to an address outside the private ranges
      const cb = fired.get('dbfc7c98-04ab-4ab7-aa94-c74d22aa7376') ?? [];
      expect(cb.map((e) => [e.ProcessId, e.DestinationIp, e.DestinationPort])).toEqual([[out.pid, '198.18.0.9', 4444]]);
      // ours
      const own = fired.get('6f1c2a9e-1d0b-4c1e-9a57-0c3d1e0b7a11') ?? [];
      expect(own.map((e) => e.ProcessId).sort()).toEqual([out.pid, out.other].sort());
      // ours, on dns_query: the A lookup answered (the AAAA one was refused by dnsmasq: status 9005)
      const dq = fired.get('0b9f6c1e-52a3-4d7e-8f21-6a0e3c9d4b22') ?? [];
      expect(dq.map((e) => [e.ProcessId, e.QueryName, (e.vigil as Record<string, unknown>).query_type])).toEqual([[out.pid, 'vigil.localto.net', 'A']]);
    } finally {
      det.close();
    }
  });
});

describe('every event', () => {
  it('validates against the published schema; nothing lost', () => {
    run.drain();
    const mine = events.filter((e) => e.category === 'network_connection' || e.category === 'dns_query');
    expect(mine.length).toBeGreaterThan(10);
    const bad = mine.map((e) => EventSchema.safeParse(e)).filter((r) => !r.success);
    expect(bad.map((r) => r.error?.issues[0])).toEqual([]);
    const st = net().stats();
    expect(st.badRecords).toBe(0);
    expect(st.kernelDrops).toBe(0);
    expect(st.kernel.pending_full ?? 0).toBe(0);
  });
});
