/**
 * The watch session joins a TLS call to the connection it used (pid and fd) in the
 * summary's endpoints. The TLS and network sensors have rings of their own, read in
 * either order: a connection's first tls_data may be read before its
 * network_connection. The join must not depend on that order (it once did: the host
 * watch test failed on a loaded machine with the endpoint's tls_sent missing).
 */
import { describe, expect, it } from 'vitest';
import { WatchSession } from '../../src/watch/session.js';
import { Signals } from '../../src/watch/signals.js';
import { DEFAULT_POLICY } from '../../src/watch/policy.js';

const session = () => new WatchSession({ json: true, write: () => undefined, signals: new Signals(DEFAULT_POLICY, []), command: ['curl'] });
const at = (us: number) => `2026-11-30T12:00:00.${String(us).padStart(6, '0')}Z`;
const connect = (pid: number, fd: number, us: number, port = 8443) => ({
  category: 'network_connection',
  timestamp: at(us),
  ProcessId: pid,
  Image: '/usr/bin/curl',
  Initiated: true,
  Protocol: 'tcp',
  DestinationIp: '127.0.0.1',
  DestinationPort: port,
  vigil: { operation: 'connect', fd },
});
const tls = (pid: number, fd: number, us: number, dir: 'send' | 'receive', bytes: number) => ({
  category: 'tls_data',
  timestamp: at(us),
  ProcessId: pid,
  Image: '/usr/bin/curl',
  Direction: dir,
  Bytes: bytes,
  Data: 'x'.repeat(bytes),
  vigil: { fd },
});
const endpoint = (s: WatchSession, port = 8443) => s.summary({ code: 0, signal: null }, {}).endpoints.find((e) => e.port === port);

describe('watch session: TLS bytes per endpoint', () => {
  it('the same counts whichever ring is read first', () => {
    const inOrder = session();
    inOrder.addRoot(100);
    for (const ev of [connect(100, 5, 10), tls(100, 5, 20, 'send', 70), tls(100, 5, 30, 'receive', 200)]) inOrder.event(ev);
    expect(endpoint(inOrder)).toMatchObject({ connections: 1, tls_sent: 70, tls_received: 200 });

    // the TLS ring read before the network ring
    const late = session();
    late.addRoot(100);
    for (const ev of [tls(100, 5, 20, 'send', 70), tls(100, 5, 30, 'receive', 200), connect(100, 5, 10)]) late.event(ev);
    expect(endpoint(late)).toMatchObject({ connections: 1, tls_sent: 70, tls_received: 200 });
  });

  it('TLS calls on an fd before a later connect on that fd (the fd reused) are not that connection\'s', () => {
    const s = session();
    s.addRoot(100);
    // fd 5 carried TLS (an accepted socket, say) before a new connection got fd 5
    for (const ev of [tls(100, 5, 20, 'send', 70), connect(100, 5, 50), tls(100, 5, 60, 'send', 9)]) s.event(ev);
    expect(endpoint(s)).toMatchObject({ connections: 1, tls_sent: 9 });
    expect(endpoint(s)!.tls_received).toBeUndefined();
  });
});
