/**
 * A DNS message parser for what the kernel captured (RFC 1035): header, the
 * question, and the answer section (A, AAAA, CNAME/NS/PTR names; other types
 * kept as their number). Every byte is attacker-controlled: lengths are
 * checked, compression pointers must point before the labels that use them
 * (so they cannot loop), names are limited to 255 bytes, and label bytes that
 * are not plain printable ASCII are shown in the presentation format (\DDD,
 * \. and \\), so a name can never carry a control character or a fake dot.
 * Failures throw DnsParseError (DnsTruncatedError when the bytes ran out).
 */
import { formatIpv4, formatIpv6 } from './ip.js';

export class DnsParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsParseError';
  }
}

/** The message ended before a field it announced. */
export class DnsTruncatedError extends DnsParseError {}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsAnswer {
  name: string;
  type: number;
  ttl: number;
  /** A/AAAA: the address; CNAME/NS/PTR: the name; other types: "" */
  data: string;
}

export interface DnsMessage {
  id: number;
  response: boolean;
  opcode: number;
  rcode: number;
  /** the TC bit: the server cut the answer (the client retries over TCP) */
  tc: boolean;
  question: DnsQuestion;
  answers: DnsAnswer[];
  /** the capture ended inside the answer section: answers holds those before the cut */
  incomplete: boolean;
}

export const DnsType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, SVCB: 64, HTTPS: 65, ANY: 255 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(DnsType).map(([k, v]) => [v, k]));
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

export function typeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `TYPE${t}`;
}

export function rcodeName(r: number): string {
  return RCODE_NAMES[r] ?? `RCODE${r}`;
}

const MAX_NAME = 255;
const MAX_ANSWERS = 64;

/** One label in presentation format. */
function label(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${c.toString().padStart(3, '0')}`;
  }
  return s;
}

/** Read a (possibly compressed) name at off; returns it and the offset after it in place. */
export function readName(b: Uint8Array, off: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = off;
  let segStart = off;
  let next = -1;
  let wire = 1;
  for (;;) {
    if (pos >= b.length) throw new DnsTruncatedError(`name at ${off} runs past the end`);
    const len = b[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= b.length) throw new DnsTruncatedError(`compression pointer at ${pos} runs past the end`);
      const target = ((len & 0x3f) << 8) | b[pos + 1]!;
      // strictly before the labels being read: every jump goes further back, so no loop
      if (target >= segStart) throw new DnsParseError(`compression pointer at ${pos} to ${target} does not point backwards`);
      if (next < 0) next = pos + 2;
      pos = target;
      segStart = target;
      continue;
    }
    if (len & 0xc0) throw new DnsParseError(`label type 0x${(len & 0xc0).toString(16)} at ${pos} is not supported`);
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if (pos + 1 + len > b.length) throw new DnsTruncatedError(`label at ${pos} runs past the end`);
    wire += len + 1;
    if (wire > MAX_NAME) throw new DnsParseError(`name at ${off} is longer than ${MAX_NAME} bytes`);
    labels.push(label(b, pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.length ? labels.join('.') : '.', next };
}

function u16(b: Uint8Array, off: number): number {
  if (off + 2 > b.length) throw new DnsTruncatedError(`field at ${off} runs past the end`);
  return (b[off]! << 8) | b[off + 1]!;
}

function u32(b: Uint8Array, off: number): number {
  return u16(b, off) * 65536 + u16(b, off + 2);
}

/**
 * Parse one DNS message. `partial`: the bytes are the head of a longer message
 * (the kernel keeps at most 512): running out inside the answers then gives the
 * answers before the cut (incomplete: true) instead of an error.
 */
export function parseDns(b: Uint8Array, partial = false): DnsMessage {
  if (b.length < 12) throw new DnsTruncatedError(`message of ${b.length} bytes is shorter than the 12-byte header`);
  const id = u16(b, 0);
  const flags = u16(b, 2);
  const qd = u16(b, 4);
  const an = u16(b, 6);
  if (qd === 0) throw new DnsParseError('no question');
  const q = readName(b, 12);
  const question: DnsQuestion = { name: q.name, type: u16(b, q.next), class: u16(b, q.next + 2) };
  let pos = q.next + 4;
  // further questions (qdcount > 1 is not used in practice): skip them
  for (let i = 1; i < qd; i++) pos = readName(b, pos).next + 4;
  const msg: DnsMessage = {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    tc: (flags & 0x0200) !== 0,
    rcode: flags & 0xf,
    question,
    answers: [],
    incomplete: false,
  };
  const n = Math.min(an, MAX_ANSWERS);
  try {
    for (let i = 0; i < n; i++) {
      const nm = readName(b, pos);
      const type = u16(b, nm.next);
      const ttl = u32(b, nm.next + 4);
      const rdlen = u16(b, nm.next + 8);
      const rd = nm.next + 10;
      if (rd + rdlen > b.length) throw new DnsTruncatedError(`record data at ${rd} runs past the end`);
      let data = '';
      if (type === DnsType.A) {
        if (rdlen !== 4) throw new DnsParseError(`A record of ${rdlen} bytes`);
        data = formatIpv4(b, rd);
      } else if (type === DnsType.AAAA) {
        if (rdlen !== 16) throw new DnsParseError(`AAAA record of ${rdlen} bytes`);
        data = formatIpv6(b, rd);
      } else if (type === DnsType.CNAME || type === DnsType.NS || type === DnsType.PTR) {
        const t = readName(b.subarray(0, rd + rdlen), rd);
        data = t.name;
      }
      msg.answers.push({ name: nm.name, type, ttl, data });
      pos = rd + rdlen;
    }
  } catch (e) {
    if (!(partial && e instanceof DnsTruncatedError)) throw e;
    msg.incomplete = true;
  }
  return msg;
}

/**
 * QueryResults as Sysmon writes it: "type:  5 alias;" for a CNAME,
 * "::ffff:a.b.c.d;" for an A record, the address for AAAA; "-" when empty.
 */
export function queryResults(answers: readonly DnsAnswer[]): string {
  let s = '';
  for (const a of answers) {
    if (a.type === DnsType.A) s += `::ffff:${a.data};`;
    else if (a.type === DnsType.AAAA) s += `${a.data};`;
    else if (a.data) s += `type:  ${a.type} ${a.data};`;
    else s += `type:  ${a.type};`;
  }
  return s || '-';
}

/** QueryStatus as Windows reports it: 0, or 9000 + the response code (9003 = NXDOMAIN). */
export function queryStatus(rcode: number): string {
  return rcode === 0 ? '0' : String(9000 + rcode);
}

/** QueryStatus of a query that got no answer (ERROR_TIMEOUT). */
export const STATUS_NO_RESPONSE = '1460';
