/**
 * Attacker-controlled strings (command lines, paths) shown to a human: control
 * characters (terminal escapes, newlines) become visible \xNN escapes.
 */
export function safeText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, Math.max(0, n - 1))}…`;
}

const UNIT_NS = { s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n, d: 86_400_000_000_000n } as const;

const TIME_FORMS = 'a duration ago (30s, 5m, 1h, 2d) or an RFC 3339 time (2026-11-29T10:00:00Z, 2026-11-29T11:00:00.123456789+01:00)';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 time → epoch ns (exact: fractions down to the nanosecond), or
 * undefined when `v` is not one. A date that does not exist (02-30) is refused.
 */
export function parseRfc3339Ns(v: string): bigint | undefined {
  const m = RFC3339.exec(v);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59));
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  const frac = BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  const zone = m[8]!;
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // a leap second (:60) is the last instant of its minute
  const leap = s === 60 ? 999_999_999n : 0n;
  return BigInt(ms) * 1_000_000n + (leap || frac) - BigInt(offsetMin) * 60_000_000_000n;
}

/**
 * A time bound of a query, in epoch ns: a duration ago (`30s`, `5m`, `1h`, `2d`)
 * or an RFC 3339 time. Anything else (a bare number, a date alone, "yesterday")
 * is refused rather than guessed.
 */
export function parseTimeBound(v: string, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): bigint {
  const t = v.trim();
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(t);
  if (m) return nowNs - BigInt(m[1]!) * UNIT_NS[m[2] as keyof typeof UNIT_NS];
  const ns = parseRfc3339Ns(t);
  if (ns !== undefined) return ns;
  const shownV = safeText(v.length > 60 ? `${v.slice(0, 59)}…` : v);
  throw new Error(`not a time: "${shownV}" (use ${TIME_FORMS})`);
}

/** The same forms in epoch ms (rounded down). */
export function parseTimeArg(v: string, now = Date.now()): number {
  const ns = parseTimeBound(v, BigInt(now) * 1_000_000n);
  return Number(ns / 1_000_000n) - (ns % 1_000_000n < 0n ? 1 : 0);
}

/** Epoch ns of an ISO-8601 / RFC 3339 timestamp as vigil writes them (microseconds), or undefined. */
export function timestampNs(ts: unknown): bigint | undefined {
  return typeof ts === 'string' ? parseRfc3339Ns(ts) : undefined;
}
