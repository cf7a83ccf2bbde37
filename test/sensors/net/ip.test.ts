import { describe, expect, it } from 'vitest';
import { formatAddr, formatIpv6, isV4Mapped, unspecified } from '../../../src/sensors/net/ip.js';
import { HostnameCache } from '../../../src/sensors/net/hostnames.js';
import { addr16 } from './records.js';

describe('address text', () => {
  it('IPv6 in RFC 5952 form', () => {
    const cases: Array<[string, string]> = [
      ['0:0:0:0:0:0:0:1', '::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
      ['fe80:0:0:0:abcd:0:0:0', 'fe80::abcd:0:0:0'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest run
      ['2001:DB8:0:0:0:0:0:0', '2001:db8::'],
    ];
    for (const [full, want] of cases) expect(formatIpv6(addr16(full))).toBe(want);
  });

  it('IPv4, v4-mapped IPv6 as IPv4, unspecified', () => {
    expect(formatAddr(2, addr16('192.0.2.1'))).toEqual({ ip: '192.0.2.1', v6: false });
    expect(isV4Mapped(addr16('::ffff:c000:201'))).toBe(true);
    expect(formatAddr(10, addr16('::ffff:c000:201'))).toEqual({ ip: '192.0.2.1', v6: false });
    expect(formatAddr(10, addr16('::1'))).toEqual({ ip: '::1', v6: true });
    expect(formatAddr(1, addr16('::1'))).toEqual({ ip: '', v6: false });
    expect(unspecified(10)).toEqual({ ip: '::', v6: true });
    expect(unspecified(2)).toEqual({ ip: '0.0.0.0', v6: false });
  });
});

describe('hostname cache', () => {
  it('per process first, host-wide as fallback, newest answer wins', () => {
    const c = new HostnameCache({ maxHosts: 10 });
    c.add('p1', '192.0.2.1', 'a.example');
    c.add('p2', '192.0.2.1', 'b.example');
    expect(c.lookup('p1', '192.0.2.1')).toEqual({ name: 'a.example', source: 'process' });
    expect(c.lookup('p3', '192.0.2.1')).toEqual({ name: 'b.example', source: 'host' });
    expect(c.lookup('p1', '192.0.2.2')).toBeUndefined();
  });

  it('stays within its bounds (least recently written goes first), counted', () => {
    const c = new HostnameCache({ maxHosts: 3, maxProcesses: 2, perProcess: 2 });
    for (let i = 0; i < 5; i++) c.add('p1', `192.0.2.${i}`, `n${i}.example`);
    expect(c.size).toBe(3);
    expect(c.lookup('p1', '192.0.2.0')).toBeUndefined();
    expect(c.lookup('p1', '192.0.2.4')?.source).toBe('process');
    expect(c.lookup('p1', '192.0.2.2')).toEqual({ name: 'n2.example', source: 'host' });
    c.add('p2', '10.0.0.1', 'x');
    c.add('p3', '10.0.0.2', 'y');
    expect(c.lookup('p1', '192.0.2.4')?.source).toBe('host'); // p1's own map was evicted
    expect(c.evicted).toBeGreaterThan(0);
  });

  it('maxHosts 0 remembers nothing', () => {
    const c = new HostnameCache({ maxHosts: 0 });
    c.add('p', '192.0.2.1', 'a');
    expect(c.lookup('p', '192.0.2.1')).toBeUndefined();
  });
});
