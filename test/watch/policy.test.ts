/** The watch policy (src/watch/policy.ts) and signals (src/watch/signals.ts): no kernel needed. */
import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError, DEFAULT_POLICY } from '../../src/watch/policy.js';
import { Signals, compilePatterns, isShell, readsStdin } from '../../src/watch/signals.js';

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
    expect(b.problem).toContain('unknown key (known here: allow, loopback)');
    const c = err('tls:\n  capture_bytes: lots\n');
    expect([c.line, c.key]).toEqual([2, 'tls.capture_bytes']);
    const d = err('shells:\n  action: alert: deny\n');
    expect(d.line).toBe(2);
    expect(d.problem).toMatch(/^not valid YAML/);
    const e = err('- a list\n');
    expect(e.problem).toContain('must be a mapping');
    expect(err('shells:\n  action: forbid\n').message).toBe('p.yaml:2: shells.action: ' + err('shells:\n  action: forbid\n').problem);
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
