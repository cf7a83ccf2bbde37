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

/** "10m" / "2h" / "30s" / "1d" ago, or an ISO date → epoch ms */
export function parseTimeArg(v: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim());
  if (m) return now - Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`not a time: "${v}" (use 10m, 2h, 1d or an ISO-8601 date)`);
  return t;
}
