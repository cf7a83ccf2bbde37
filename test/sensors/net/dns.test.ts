import { describe, expect, it } from 'vitest';
import { DnsParseError, DnsTruncatedError, parseDns, queryResults, queryStatus, readName, rcodeName, typeName } from '../../../src/sensors/net/dns.js';
import { dnsMessage, name, ptr, rr } from './records.js';

const A = (ip: string) => Buffer.from(ip.split('.').map(Number));

describe('DNS parser', () => {
  it('reads a query: id, flags, the question', () => {
    const m = parseDns(dnsMessage({ id: 0xbeef, qname: 'www.Example.com', qtype: 28 }));
    expect(m).toMatchObject({ id: 0xbeef, response: false, opcode: 0, rcode: 0, tc: false, answers: [], incomplete: false });
    expect(m.question).toEqual({ name: 'www.Example.com', type: 28, class: 1 });
  });

  it('reads an answer with a CNAME chain and A records through compression pointers', () => {
    // question name at offset 12; answers point back at it and at the CNAME target
    const q = 'www.example.com';
    const cnameTarget = Buffer.concat([Buffer.from([4]), Buffer.from('edge'), ptr(16)]); // edge.example.com
    const first = rr({ name: ptr(12), type: 5, data: cnameTarget });
    const targetOffset = 12 + name(q).length + 4 + 2 + 10; // rdata of the first answer
    const msg = dnsMessage({
      response: true,
      qname: q,
      answers: [first, rr({ name: ptr(targetOffset), type: 1, ttl: 60, data: A('198.18.0.7') }), rr({ name: ptr(targetOffset), type: 1, data: A('198.18.0.8') })],
    });
    const m = parseDns(msg);
    expect(m.response).toBe(true);
    expect(m.answers).toEqual([
      { name: 'www.example.com', type: 5, ttl: 300, data: 'edge.example.com' },
      { name: 'edge.example.com', type: 1, ttl: 60, data: '198.18.0.7' },
      { name: 'edge.example.com', type: 1, ttl: 300, data: '198.18.0.8' },
    ]);
    expect(queryResults(m.answers)).toBe('type:  5 edge.example.com;::ffff:198.18.0.7;::ffff:198.18.0.8;');
  });

  it('reads AAAA answers in RFC 5952 form', () => {
    const six = Buffer.alloc(16);
    six.writeUInt16BE(0x2001, 0);
    six.writeUInt16BE(0x0db8, 2);
    six.writeUInt16BE(7, 14);
    const m = parseDns(dnsMessage({ response: true, qtype: 28, answers: [rr({ name: ptr(12), type: 28, data: six })] }));
    expect(m.answers[0]!.data).toBe('2001:db8::7');
    expect(queryResults(m.answers)).toBe('2001:db8::7;');
  });

  it('keeps other record types by number', () => {
    const m = parseDns(dnsMessage({ response: true, qtype: 16, answers: [rr({ name: ptr(12), type: 16, data: Buffer.from('\x05hello') })] }));
    expect(m.answers[0]).toMatchObject({ type: 16, data: '' });
    expect(queryResults(m.answers)).toBe('type:  16;');
    expect(typeName(16)).toBe('TXT');
    expect(typeName(9999)).toBe('TYPE9999');
  });

  it('response codes and Windows-style QueryStatus', () => {
    const m = parseDns(dnsMessage({ response: true, rcode: 3 }));
    expect(m.rcode).toBe(3);
    expect(rcodeName(3)).toBe('NXDOMAIN');
    expect(rcodeName(15)).toBe('RCODE15');
    expect(queryStatus(0)).toBe('0');
    expect(queryStatus(3)).toBe('9003');
    expect(queryResults([])).toBe('-');
  });

  it('shows bytes that are not printable ASCII, dots and backslashes inside labels as escapes', () => {
    const evil = Buffer.concat([Buffer.from([9]), Buffer.from('a.b\\c\n\x00\xffz', 'latin1'), Buffer.from([3]), Buffer.from('com'), Buffer.from([0])]);
    const m = parseDns(dnsMessage({ qname: evil }));
    expect(m.question.name).toBe('a\\.b\\\\c\\010\\000\\255z.com');
    expect(m.question.name).not.toMatch(/[\x00-\x1f\x7f-\uffff]/);
  });

  it('the root name is "."', () => {
    expect(parseDns(dnsMessage({ qname: '.' })).question.name).toBe('.');
  });

  describe('malformed input throws DnsParseError, never anything else', () => {
    it('a pointer loop (to itself, and a two-step cycle)', () => {
      const self = Buffer.concat([Buffer.alloc(12), ptr(12)]);
      expect(() => readName(self, 12)).toThrow(/does not point backwards/);
      // labels at 12 then a pointer back to 12: would loop forever without the rule
      const cycle = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61]), ptr(12)]);
      expect(() => readName(cycle, 12)).toThrow(DnsParseError);
      // 12: pointer to 16; 16: label, pointer to 12 (forward then back)
      const two = Buffer.concat([Buffer.alloc(12), ptr(16), Buffer.from([0, 0]), Buffer.from([1, 0x62]), ptr(12)]);
      expect(() => readName(two, 12)).toThrow(DnsParseError);
      expect(() => parseDns(dnsMessage({ qname: ptr(12) }))).toThrow(DnsParseError);
    });

    it('a pointer chain going backwards terminates', () => {
      // 12: "a" + pointer to 20; 20 is after 12... build backwards chain instead: 20 -> 16 -> 12 -> end
      const b = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0]), Buffer.from([0]), Buffer.from([1, 0x62]), ptr(12), Buffer.from([1, 0x63]), ptr(16)]);
      expect(readName(b, 20)).toEqual({ name: 'c.b.a', next: 24 });
    });

    it('a name longer than 255 bytes', () => {
      const long = name(Array(10).fill('x'.repeat(30)).join('.'));
      expect(() => parseDns(dnsMessage({ qname: long }))).toThrow(/longer than 255/);
    });

    it('extended label types', () => {
      expect(() => parseDns(dnsMessage({ qname: Buffer.from([0x41, 0x61, 0]) }))).toThrow(/label type 0x40/);
      expect(() => parseDns(dnsMessage({ qname: Buffer.from([0x81, 0x61, 0]) }))).toThrow(/label type 0x80/);
    });

    it('truncation anywhere in the header and question', () => {
      const full = dnsMessage({ qname: 'example.com' });
      for (let n = 0; n < full.length; n++) {
        expect(() => parseDns(full.subarray(0, n)), `cut at ${n}`).toThrow(DnsTruncatedError);
      }
      expect(parseDns(full).question.name).toBe('example.com');
    });

    it('truncation anywhere in the answers: an error, or the answers before the cut when the capture was partial', () => {
      const full = dnsMessage({ response: true, answers: [rr({ name: ptr(12), type: 1, data: A('10.0.0.1') }), rr({ name: ptr(12), type: 1, data: A('10.0.0.2') })] });
      const qEnd = 12 + name('example.com').length + 4;
      for (let n = qEnd; n < full.length; n++) {
        expect(() => parseDns(full.subarray(0, n)), `cut at ${n}`).toThrow(DnsTruncatedError);
        const m = parseDns(full.subarray(0, n), true);
        expect(m.incomplete).toBe(true);
        expect(m.answers.length).toBe(n >= qEnd + 16 ? 1 : 0);
      }
    });

    it('no question, wrong A/AAAA lengths, record data running past the end', () => {
      expect(() => parseDns(dnsMessage({ qdcount: 0 }).subarray(0, 12))).toThrow(/no question/);
      expect(() => parseDns(dnsMessage({ response: true, answers: [rr({ name: ptr(12), type: 1, data: Buffer.alloc(5) })] }))).toThrow(/A record of 5 bytes/);
      expect(() => parseDns(dnsMessage({ response: true, answers: [rr({ name: ptr(12), type: 28, data: Buffer.alloc(4) })] }))).toThrow(/AAAA record of 4 bytes/);
      const lie = dnsMessage({ response: true, answers: [rr({ name: ptr(12), type: 1, data: A('1.2.3.4') })] });
      lie.writeUInt16BE(400, lie.length - 6); // rdlength
      expect(() => parseDns(lie)).toThrow(DnsTruncatedError);
      // ancount larger than what is there
      expect(() => parseDns(dnsMessage({ response: true, ancount: 3, answers: [rr({ name: ptr(12), type: 1, data: A('1.2.3.4') })] }))).toThrow(DnsTruncatedError);
    });

    it('a CNAME whose name runs past its record data', () => {
      const bad = rr({ name: ptr(12), type: 5, data: Buffer.from([5, 0x61, 0x62]) });
      expect(() => parseDns(dnsMessage({ response: true, answers: [bad, rr({ name: ptr(12), type: 1, data: A('1.2.3.4') })] }))).toThrow(DnsParseError);
    });

    it('random bytes: only DnsParseError (10,000 inputs)', () => {
      let seed = 12345;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
      const base = dnsMessage({ response: true, answers: [rr({ name: ptr(12), type: 5, data: Buffer.concat([Buffer.from([1, 0x78]), ptr(12)]) }), rr({ name: ptr(12), type: 1, data: A('1.2.3.4') })] });
      for (let i = 0; i < 10_000; i++) {
        const b = i % 2 ? Buffer.from(base) : Buffer.alloc(rnd() % 80);
        if (i % 2) for (let k = 0; k < 1 + (rnd() % 4); k++) b[rnd() % b.length] = rnd() & 0xff;
        else for (let k = 0; k < b.length; k++) b[k] = rnd() & 0xff;
        try {
          const m = parseDns(b, i % 4 === 1);
          expect(m.question.name.length).toBeLessThanOrEqual(4 * 255);
        } catch (e) {
          expect(e).toBeInstanceOf(DnsParseError);
        }
      }
    });
  });
});
