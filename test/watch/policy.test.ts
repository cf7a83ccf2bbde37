/** The watch policy (src/watch/policy.ts) and signals (src/watch/signals.ts): no kernel needed. */
import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError, DEFAULT_POLICY } from '../../src/watch/policy.js';
import { Signals, compilePatterns, isShell, readsStdin } from '../../src/watch/signals.js';
import { ipv6Bytes, ipv6Text } from '../../src/watch/shell-guard.js';
import { networkAllow } from '../../src/watch/run.js';

function err(text: string): PolicyError {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('watch policy', () => {
  it('an empty file is the default policy', () => {
    expect(parsePolicy('', 'p.yaml')).toEqual(DEFAULT_POLICY);
    expect(parsePolicy('# nothing\n', 'p.yaml')).toEqual(DEFAULT_POLICY);
  });

  it('names file:line and the key of a bad value, an unknown key, a wrong type and bad YAML', () => {
    const a = err('sensitive:\n  paths:\n    - relative/path\n');
    expect([a.line, a.key]).toEqual([3, 'sensitive.paths[0]']);
    const b = err('network:\n  allow: [10.0.0.0/8]\n  alow: []\n');
    expect([b.line, b.key]).toEqual([3, 'network.alow']);
    expect(b.problem).toContain('unknown key (known here: allow, loopback, action)');
    const c = err('tls:\n  capture_bytes: lots\n');
    expect([c.line, c.key]).toEqual([2, 'tls.capture_bytes']);
    const d = err('shells:\n  action: alert: deny\n');
    expect(d.line).toBe(2);
    expect(d.problem).toMatch(/^not valid YAML/);
    const e = err('- a list\n');
    expect(e.problem).toContain('must be a mapping');
    expect(err('shells:\n  action: forbid\n').message).toBe('p.yaml:2: shells.action: ' + err('shells:\n  action: forbid\n').problem);
  });

  it('network.action: deny refuses wildcard host names at their line (the kernel checks addresses); alert keeps them', () => {
    const e = err('network:\n  action: deny\n  allow:\n    - 10.0.0.0/8\n    - "*.example.com"\n');
    expect([e.line, e.key]).toEqual([5, 'network.allow[1]']);
    expect(e.problem).toContain('wildcard host name cannot be enforced in the kernel');
    expect(parsePolicy('network:\n  allow: ["*.example.com"]\n', 'p.yaml').network.action).toBe('alert');
    expect(parsePolicy('files:\n  block: [/srv/x/]\n  action: deny\n', 'p.yaml').files.action).toBe('deny');
    expect(err('files:\n  action: block\n').key).toBe('files.action');
  });

  it('the network guard\'s allow list: CIDRs and addresses as given, loopback always, names resolved now, unresolvable names said', async () => {
    const warned: string[] = [];
    const a = await networkAllow(['10.1.0.0/16', '192.0.2.7', '2001:db8::/32', 'localhost', 'no-such-host.invalid'], (m) => warned.push(m));
    expect(a.v4).toEqual(expect.arrayContaining([{ addr: '127.0.0.0', bits: 8 }, { addr: '10.1.0.0', bits: 16 }, { addr: '192.0.2.7', bits: 32 }]));
    expect(a.v6).toEqual(expect.arrayContaining([{ addr: '::1', bits: 128 }, { addr: '2001:db8::', bits: 32 }]));
    expect(a.v4.filter((x) => x.addr === '127.0.0.1').length).toBeGreaterThan(0); // localhost resolved
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('no-such-host.invalid did not resolve');
  });

  it('IPv6 text to the 16 bytes the kernel compares', () => {
    expect(ipv6Bytes('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipv6Bytes('2001:db8::').toString('hex')).toBe('20010db8000000000000000000000000');
    expect(ipv6Bytes('fe80::1:2').toString('hex')).toBe('fe800000000000000000000000010002');
    expect(ipv6Bytes('::ffff:192.0.2.1').toString('hex')).toBe('00000000000000000000ffffc0000201');
    expect(ipv6Bytes('1:2:3:4:5:6:7:8').toString('hex')).toBe('00010002000300040005000600070008');
    for (const t of ['::1', '2001:db8::', 'fe80::1:2', '::ffff:192.0.2.1', '1:2:3:4:5:6:7:8', '1:0:0:2::3', '::']) expect(ipv6Text(ipv6Bytes(t))).toBe(t);
  });

  it('a duplicate key is an error (a second value never silently wins)', () => {
    expect(err('shells:\n  action: alert\nshells:\n  action: ignore\n').line).toBe(3);
  });
});

describe('watch signals', () => {
  it('path patterns: exact, directory prefix, ~/ for each home, file-name globs', () => {
    const m = compilePatterns(['/etc/shadow', '~/.ssh/', '.env', '.env.*', '*.pem'], ['/home/ann', '/root']);
    expect(m('/etc/shadow')).toBe(true);
    expect(m('/etc/shadow-')).toBe(false);
    expect(m('/home/ann/.ssh/id_ed25519')).toBe(true);
    expect(m('/root/.ssh/config')).toBe(true);
    expect(m('/home/bob/.ssh/config')).toBe(false);
    expect(m('/srv/app/.env')).toBe(true);
    expect(m('/srv/app/.env.production')).toBe(true);
    expect(m('/srv/app/.envrc')).toBe(false);
    expect(m('/tmp/cert.pem')).toBe(true);
  });

  it('defaults, extra paths and ignore', () => {
    const p = parsePolicy('sensitive:\n  paths: [/srv/secret/]\n  ignore: [/srv/app/.env.example]\n', 'p.yaml');
    const s = new Signals(p, ['/home/ann']);
    expect(s.isSensitive('/home/ann/.aws/credentials')).toBe(true);
    expect(s.isSensitive('/srv/secret/k')).toBe(true);
    expect(s.isSensitive('/srv/app/.env.example')).toBe(false);
    expect(s.isSensitive('/srv/app/README')).toBe(false);
    const off = new Signals(parsePolicy('sensitive:\n  defaults: false\n', 'p.yaml'), ['/home/ann']);
    expect(off.isSensitive('/etc/shadow')).toBe(false);
  });

  it('network allow list: CIDRs, addresses, host names and *. suffixes; no list: nothing is outside', () => {
    expect(new Signals(DEFAULT_POLICY, []).outsideNetwork('203.0.113.9', undefined)).toBe(false);
    const s = new Signals(parsePolicy('network:\n  allow: [10.0.0.0/8, "::1", api.example.com, "*.github.com"]\n', 'p.yaml'), []);
    expect(s.outsideNetwork('10.1.2.3', undefined)).toBe(false);
    expect(s.outsideNetwork('::1', undefined)).toBe(false);
    expect(s.outsideNetwork('203.0.113.9', 'api.example.com')).toBe(false);
    expect(s.outsideNetwork('203.0.113.9', 'codeload.github.com.')).toBe(false);
    expect(s.outsideNetwork('203.0.113.9', 'evil.example.com')).toBe(true);
    expect(s.outsideNetwork('203.0.113.9', undefined)).toBe(true);
  });

  it('shells by executable name; shells that read stdin', () => {
    expect(isShell('/usr/bin/dash')).toBe(true);
    expect(isShell('/usr/bin/bash')).toBe(true);
    expect(isShell('/usr/bin/shellcheck')).toBe(false);
    expect(readsStdin(['sh'])).toBe(true);
    expect(readsStdin(['bash', '-s'])).toBe(true);
    expect(readsStdin(['sh', '-c', 'echo'])).toBe(false);
    expect(readsStdin(['sh', 'script.sh'])).toBe(false);
  });
});
