/**
 * The origin record format (docs/provenance.md): what is written reads back,
 * and every kind of bad content is reported with its class, never thrown.
 */
import { describe, expect, it } from 'vitest';
import { encodeOrigin, parseOrigin, ORIGIN_MAX_BYTES, type OriginRecord } from '../../src/provenance/index.js';
import { addressText } from '../../src/events/taint.js';

const rec: OriginRecord = {
  v: 1, kind: 'network', time: '2026-11-29T23:37:07.512345Z', path: '/tmp/dl.sh', exe: '/usr/bin/curl', comm: 'curl',
  pid: 42, uid: 1000, host: 'h', depth: 0, remote: { address: '198.18.0.2', port: 8080, host: 'example.test' },
};

describe('origin record', () => {
  it('round-trips', () => {
    expect(parseOrigin(encodeOrigin(rec))).toEqual({ ok: true, record: rec });
  });

  it('refuses to write a record that does not match the schema or is too large', () => {
    expect(() => encodeOrigin({ ...rec, comm: 'x'.repeat(17) })).toThrow();
    expect(() => encodeOrigin({ ...rec, path: '/' + 'a'.repeat(4095), exe: '/' + 'b'.repeat(4095) })).toThrow(new RegExp(`exceeds ${ORIGIN_MAX_BYTES}`));
  });

  it.each([
    ['not UTF-8', Buffer.from([0xc3, 0x28, 0xff]), 'garbage'],
    ['not JSON', Buffer.from('MZ\u0090\u0000'), 'garbage'],
    ['a JSON array', Buffer.from('[1,2]'), 'garbage'],
    ['JSON with junk inside', Buffer.from('{"v":1 x}'), 'garbage'],
    ['empty', Buffer.alloc(0), 'garbage'],
    ['cut in a string', encodeOrigin(rec).subarray(0, 30), 'truncated'],
    ['cut after a comma', Buffer.from('{"v":1,'), 'truncated'],
    ['cut after the brace', Buffer.from('{'), 'truncated'],
    ['version 2', Buffer.from(JSON.stringify({ ...rec, v: 2 })), 'version'],
    ['no version', Buffer.from('{"kind":"network"}'), 'version'],
    ['a missing field', Buffer.from(JSON.stringify({ ...rec, exe: undefined })), 'invalid'],
    ['an unknown field', Buffer.from(JSON.stringify({ ...rec, extra: 1 })), 'invalid'],
    ['a port out of range', Buffer.from(JSON.stringify({ ...rec, remote: { address: 'x', port: 70000 } })), 'invalid'],
  ])('%s is reported as %s', (_what, bytes, problem) => {
    const r = parseOrigin(bytes);
    expect(r).toMatchObject({ ok: false, problem });
    if (!r.ok) expect(r.detail.length).toBeGreaterThan(0);
  });
});

describe('remote address text', () => {
  it('IPv4, IPv6 (RFC 5952) and IPv4-mapped IPv6', () => {
    expect(addressText(2, Uint8Array.from([198, 18, 0, 2, ...new Array(12).fill(0)]))).toBe('198.18.0.2');
    const v6 = new Uint8Array(16);
    v6[0] = 0x20; v6[1] = 0x01; v6[2] = 0x0d; v6[3] = 0xb8; v6[15] = 1;
    expect(addressText(10, v6)).toBe('2001:db8::1');
    const lo = new Uint8Array(16);
    lo[15] = 1;
    expect(addressText(10, lo)).toBe('::1');
    const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    expect(addressText(10, mapped)).toBe('127.0.0.1');
  });
});
