/**
 * RFC 5424 messages (docs/outputs.md):
 *
 *   <PRI>1 TIMESTAMP HOSTNAME vigil PROCID MSGID [vigil@32473 k="v" …] MSG
 *
 * PRI = facility·8 + severity, the severity from the alert's Sigma level
 * (critical 2, high 3, medium 4, low 5, informational 6; events 6).
 * TIMESTAMP is RFC 3339 in UTC with microseconds. Header fields are
 * PRINTUSASCII (33–126) cut to the RFC's lengths; anything else becomes "_".
 * STRUCTURED-DATA values escape `"`, `\` and `]` with a backslash (RFC 5424
 * §6.3.3) and have control characters replaced by U+FFFD. MSG is the record's
 * JSON; with encoding "ascii" (the default) every non-ASCII character and DEL
 * are \u-escaped, so MSG is plain ASCII and carries no BOM; with "utf8" MSG is
 * the BOM followed by the UTF-8 JSON (§6.4). JSON escapes every control
 * character, so an argv with newlines stays on one line. A message longer
 * than `maxBytes` has its MSG cut (at a character boundary) and says so in
 * the SD parameter truncated="<bytes MSG had>".
 */
import type { SinkRecord } from '../sink.js';

export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type Facility = keyof typeof FACILITIES;

/** Sigma level → syslog severity */
export const SEVERITY: Record<string, number> = { critical: 2, high: 3, medium: 4, low: 5, informational: 6 };

/** The SD-ID: vigil@<enterprise number>; 32473 is the number RFC 5612 reserves for documentation and examples. */
export const SD_ID = 'vigil@32473';

export interface SyslogFormatOptions {
  facility: Facility;
  hostname: string;
  appName: string;
  procId: string;
  encoding: 'ascii' | 'utf8';
  /** a whole message (without framing) at most this many bytes */
  maxBytes: number;
}

const BOM = '\uFEFF';

/** PRINTUSASCII cut to `max`, "-" when empty (the NILVALUE) */
export function headerField(s: string, max: number): string {
  const v = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return v || '-';
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** A PARAM-VALUE: `"`, `\`, `]` escaped; control characters replaced; at most `max` characters. */
export function sdValue(s: string, max = 128): string {
  let v = s.length > max ? s.slice(0, max) : s;
  v = v.replace(LONE_SURROGATE, '\uFFFD');
  return v.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD').replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** RFC 3339, UTC, microseconds: 2026-11-29T23:23:44.123456Z */
export function timestamp(epochMicros: number): string {
  const ms = Math.floor(epochMicros / 1000);
  const us = String(Math.floor(epochMicros) % 1000).padStart(3, '0');
  return new Date(ms).toISOString().replace(/Z$/, `${us}Z`);
}

/** Now, in microseconds since the epoch (finer than Date.now()). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** JSON as plain ASCII: non-ASCII characters and DEL as \uXXXX (still the same JSON value). */
export function asciiJson(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/** The SD parameters of a record: what a SIEM indexes without parsing MSG. */
function params(rec: SinkRecord): Array<[string, string | undefined]> {
  const v = rec.value;
  if (rec.kind === 'alert') {
    const ev = (v.event ?? {}) as Record<string, unknown>;
    return [
      ['kind', 'alert'],
      ['rule_id', str(v.rule_id)],
      ['rule', str(v.rule_title)],
      ['level', str(v.level)],
      ['category', str(ev.category)],
      ['pid', str(ev.ProcessId)],
      ['image', str(ev.Image)],
    ];
  }
  return [
    ['kind', 'event'],
    ['category', str(v.category)],
    ['pid', str(v.ProcessId)],
    ['image', str(v.Image)],
  ];
}

/** One RFC 5424 message (no framing). */
export function formatSyslog(rec: SinkRecord, o: SyslogFormatOptions, epochMicros = nowMicros()): string {
  const sev = rec.kind === 'alert' ? (SEVERITY[String(rec.value.level)] ?? 6) : 6;
  const pri = FACILITIES[o.facility] * 8 + sev;
  const msgid = rec.kind === 'alert' ? 'alert' : headerField(String(rec.value.category ?? 'event'), 32);
  const head = `<${pri}>1 ${timestamp(epochMicros)} ${headerField(o.hostname, 255)} ${headerField(o.appName, 48)} ${headerField(o.procId, 128)} ${msgid} `;
  const sdParams = params(rec)
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, val]) => ` ${k}="${sdValue(val)}"`)
    .join('');
  const body = o.encoding === 'ascii' ? asciiJson(rec.json) : BOM + rec.json;
  let msg = `${head}[${SD_ID}${sdParams}] ${body}`;
  const total = Buffer.byteLength(msg);
  if (total <= o.maxBytes) return msg;
  // cut MSG so that the whole fits, and say how long it was
  const bodyBytes = Buffer.byteLength(body);
  const prefix = `${head}[${SD_ID}${sdParams} truncated="${bodyBytes}"] `;
  const room = o.maxBytes - Buffer.byteLength(prefix);
  if (room <= 0) return prefix.trimEnd(); // header and SD alone are longer: no MSG (still valid)
  // a UTF-8 decoder drops a cut multi-byte tail as U+FFFD: strip it
  const cut = Buffer.from(body).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
  msg = prefix + cut;
  return msg;
}
