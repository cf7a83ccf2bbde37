/**
 * The syslog output: RFC 5424 formatting (checked with a strict parser) and
 * delivery to a real rsyslogd (Debian's package) on loopback UDP, TCP
 * (octet-counted) and a private Unix datagram socket, with attacker-shaped
 * argv (newlines, quotes, brackets, a fake syslog header, non-ASCII).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outputsConfigSchema, openOutputs } from '../../src/sinks/index.js';
import { formatSyslog, sdValue, timestamp, type SyslogFormatOptions } from '../../src/sinks/syslog/format.js';
import type { SinkRecord } from '../../src/sinks/sink.js';
import type { Sink } from '../../src/sinks/sink.js';
import { parse5424, Rsyslog, waitFor } from './rsyslog.js';

const EVIL = 'sh -c "echo pwned]\n<13>1 2026-01-01T00:00:00Z fake vigil - - - injected\r\n\\x" \u00e9\u4e2d\ud83d\ude00 \u0007';

function alert(n: number, level = 'high', cmd = EVIL): SinkRecord {
  const value = {
    rule_id: `rule-${n}`,
    rule_title: 'Suspicious "shell"] \\ test',
    level,
    tags: [],
    matched: ['sel'],
    rule_path: '/r.yml',
    timestamp: '2026-11-29T00:00:00.000Z',
    event: { category: 'process_creation', ProcessId: 4242 + n, Image: '/bin/sh', CommandLine: cmd, seq: n },
  };
  return { kind: 'alert', value, json: JSON.stringify(value) };
}

const FMT: SyslogFormatOptions = { facility: 'authpriv', hostname: 'host-1', appName: 'vigil', procId: '77', encoding: 'ascii', maxBytes: 8192 };

describe('RFC 5424 format', () => {
  it('one line a strict parser accepts; PRI from the level; SD escaped; MSG is the JSON', () => {
    const rec = alert(1);
    const line = formatSyslog(rec, FMT, Date.UTC(2026, 10, 29, 1, 2, 3, 456) * 1000 + 789);
    expect(line).not.toMatch(/[\n\r\0]/);
    expect(/^[\x20-\x7e]*$/.test(line.split('] ').slice(1).join('] '))).toBe(true); // ascii MSG
    const p = parse5424(line);
    expect(p.pri).toBe(10 * 8 + 3); // authpriv.err for high
    expect(p.timestamp).toBe('2026-11-29T01:02:03.456789Z');
    expect([p.hostname, p.appName, p.procId, p.msgId]).toEqual(['host-1', 'vigil', '77', 'alert']);
    expect(p.sd).toHaveLength(1);
    expect(p.sd[0]!.id).toBe('vigil@32473');
    expect(p.sd[0]!.params).toMatchObject({ kind: 'alert', rule_id: 'rule-1', rule: 'Suspicious "shell"] \\ test', level: 'high', pid: '4243', image: '/bin/sh' });
    expect(p.bom).toBe(false);
    expect(JSON.parse(p.msg)).toEqual(rec.value);
  });

  it('levels map to severities; events are info with their category as MSGID', () => {
    const sev = (level: string) => parse5424(formatSyslog(alert(1, level), FMT)).pri % 8;
    expect(['critical', 'high', 'medium', 'low', 'informational', 'bogus'].map(sev)).toEqual([2, 3, 4, 5, 6, 6]);
    const ev = { category: 'file_create', ProcessId: 1, Image: '/x' };
    const p = parse5424(formatSyslog({ kind: 'event', value: ev, json: JSON.stringify(ev) }, { ...FMT, facility: 'local3' }));
    expect(p.pri).toBe(19 * 8 + 6);
    expect(p.msgId).toBe('file_create');
  });

  it('SD values: quote, backslash and bracket escaped, control characters replaced, lone surrogates replaced', () => {
    expect(sdValue('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    expect(sdValue('x\ny\u0000z\u009b')).toBe('x\uFFFDy\uFFFDz\uFFFD');
    expect(sdValue('\ud800x')).toBe('\uFFFDx');
  });

  it('utf8 encoding: BOM then the UTF-8 JSON', () => {
    const rec = alert(2);
    const p = parse5424(formatSyslog(rec, { ...FMT, encoding: 'utf8' }));
    expect(p.bom).toBe(true);
    expect(p.msg).toBe(rec.json);
  });

  it('a message over max bytes has its MSG cut at a character boundary and says how long it was', () => {
    const rec = alert(3, 'low', 'é'.repeat(3000));
    const line = formatSyslog(rec, { ...FMT, encoding: 'utf8', maxBytes: 1000 });
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(1000);
    const p = parse5424(line);
    expect(Number(p.sd[0]!.params.truncated)).toBe(Buffer.byteLength(rec.json) + 3);
    expect(p.msg.includes('\uFFFD')).toBe(false);
  });

  it('timestamps: RFC 3339 UTC with microseconds', () => {
    expect(timestamp(0)).toBe('1970-01-01T00:00:00.000000Z');
    expect(timestamp(1_700_000_000_123_456)).toBe('2023-11-14T22:13:20.123456Z');
  });
});

describe('syslog output → rsyslogd', () => {
  let rs: Rsyslog;
  beforeAll(async () => {
    rs = await Rsyslog.start();
  }, 20_000);
  afterAll(async () => {
    await rs?.close();
  });

  const open = (section: Record<string, unknown>): Sink => {
    const cfg = outputsConfigSchema().parse({ syslog: { enabled: true, ...section } });
    const [sink] = openOutputs(cfg as never, { hostname: 'vigil-test' }, (_n, e) => {
      throw e;
    });
    return sink!;
  };

  for (const transport of ['udp', 'tcp', 'unix'] as const) {
    it(`${transport}: every alert arrives as one valid RFC 5424 message, argv intact`, async () => {
      const address = transport === 'unix' ? rs.socket : `127.0.0.1:${rs.port}`;
      const sink = open({ transport, address, min_level: 'medium' });
      const before = rs.received().filter((r) => r.input === `im${transport === 'unix' ? 'uxsock' : transport}`).length;
      const sent: SinkRecord[] = [];
      for (let i = 0; i < 20; i++) {
        const rec = alert(i);
        sent.push(rec);
        expect(sink.write(rec)).toBe(true);
      }
      // below min_level: not sent, not counted as a drop
      expect(sink.write(alert(99, 'low'))).toBe(true);
      await sink.flush();
      const input = transport === 'unix' ? 'imuxsock' : `im${transport}`;
      await waitFor(() => rs.received().filter((r) => r.input === input).length >= before + 20, 5000, `20 messages over ${transport}`);
      const got = rs.received().filter((r) => r.input === input).slice(before);
      expect(got).toHaveLength(20);
      for (const [i, r] of got.entries()) {
        const p = parse5424(r.raw);
        // rsyslog's own RFC 5424 parser agrees field by field
        expect(r.version).toBe('1');
        expect([r.pri, r.host, r.app, r.procid, r.msgid]).toEqual([String(p.pri), 'vigil-test', 'vigil', String(process.pid), 'alert']);
        expect(r.sd).toBe(r.raw.slice(r.raw.indexOf('[vigil@32473'), r.raw.indexOf('] {') + 1));
        expect(JSON.parse(p.msg)).toEqual(sent[i]!.value);
        expect(JSON.parse(r.msg)).toEqual(sent[i]!.value);
      }
      const st = sink.stats();
      expect(st).toMatchObject({ written: 20, dropped: 0, pending: 0 });
      expect(st.delivery).toMatchObject({ queued: 20, sent: 20, drops: { full: 0, failed: 0, shutdown: 0 } });
      await sink.close();
    });
  }

  it('tcp: rsyslogd down then back — queued alerts are retried and arrive once; the queue bound drops and counts the rest', async () => {
    const sink = open({ transport: 'tcp', address: `127.0.0.1:${rs.port}`, queue: { max_records: 10 }, retry: { initial: '20ms', max: '100ms', max_attempts: 0 } });
    const before = rs.received().filter((r) => r.input === 'imtcp').length;
    await rs.stop();
    for (let i = 0; i < 15; i++) sink.write(alert(100 + i));
    await waitFor(() => (sink.stats().delivery?.retries ?? 0) >= 2, 5000, 'retries while rsyslogd is down');
    expect(sink.stats().delivery).toMatchObject({ queued: 10, sent: 0, queueDepth: 10, drops: { full: 5 } });
    expect(sink.stats().errors).toBeGreaterThanOrEqual(2);
    await rs.start();
    await sink.flush();
    await waitFor(() => rs.received().filter((r) => r.input === 'imtcp').length >= before + 10, 5000, '10 messages after the restart');
    const got = rs.received().filter((r) => r.input === 'imtcp').slice(before);
    expect(got.map((r) => (JSON.parse(parse5424(r.raw).msg) as { event: { seq: number } }).event.seq)).toEqual([...Array(10).keys()].map((i) => 100 + i));
    expect(sink.stats()).toMatchObject({ written: 10, dropped: 5 });
    await sink.close();
  });

  it('unix: nobody listening — retried, then given up after max_attempts and counted as failed', async () => {
    const sink = open({ transport: 'unix', address: `${rs.dir}/nobody`, retry: { initial: '1ms', max: '5ms', max_attempts: 3 } });
    sink.write(alert(1));
    sink.write(alert(2));
    await sink.flush();
    expect(sink.stats().delivery).toMatchObject({ queued: 2, sent: 0, retries: 2, drops: { failed: 2 } });
    expect(sink.stats().dropped).toBe(2);
    await sink.close();
  });
});

describe('outputs config', () => {
  it('rejects a udp/tcp address that is not HOST:PORT and an unknown key', () => {
    expect(() => outputsConfigSchema().parse({ syslog: { transport: 'tcp', address: '/dev/log' } })).toThrow(/HOST:PORT/);
    expect(() => outputsConfigSchema().parse({ syslog: { bogus: 1 } })).toThrow();
    expect(() => outputsConfigSchema().parse({ command: {} })).toThrow();
  });
});
