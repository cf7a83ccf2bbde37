/**
 * Sigma value semantics: wildcard strings with the spec's escaping rules, the modifier
 * chain, and the value predicates both evaluators (compiled and naive) share.
 *
 * A field value in a rule is turned into one or more ValuePred objects at load time;
 * everything that can fail (bad regex, bad CIDR, unknown modifier, unknown placeholder)
 * fails here, so a rule is either fully understood or refused with a message.
 */
import { isIP } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';

// Backtracking regexes are bounded: after this many backtracks V8 re-runs the match on
// its linear-time engine. Rules come from users; a catastrophic pattern must not stall
// the event loop. (Flags apply to regexes compiled after this point.)
try {
  v8.setFlagsFromString('--enable-experimental-regexp-engine');
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  v8.setFlagsFromString('--regexp-backtracks-before-fallback=20000');
} catch {
  /* older engines: the static checks below still apply */
}

/**
 * Regexes V8's linear-time engine can run are evaluated on the whole value: up to
 * RE_BACKTRACK_MAX characters on the (usually faster) backtracking engine, longer values
 * on the linear engine, whose time grows linearly with the value (the backtracking
 * engine can be quadratic: `a.*b` on 64 KiB of `a` took 7.7 s).
 */
export const RE_BACKTRACK_MAX = 1024;
/**
 * Other regexes (backreferences, lookarounds) search the first MAX_RE_INPUT characters of
 * a longer value, and each match found there is confirmed on the whole value at the same
 * position (so `$`, `\b` and lookaheads never match at the cut); at most RE_CONFIRM_MAX
 * candidates are tried. A match lying beyond the cut is not found.
 */
export const MAX_RE_INPUT = 65_536;
export const RE_CONFIRM_MAX = 16;

// ---------------------------------------------------------------------------------
// Wildcard strings

export const STAR = 0;
export const QMARK = 1;
/** A Sigma string: literal text and wildcard tokens. */
export type Part = string | typeof STAR | typeof QMARK;

/**
 * Parse a Sigma string value. `*` and `?` are wildcards; a backslash escapes `*`, `?`
 * and a backslash; any other backslash is literal (spec v2: `\a` is `\a`, `\\*` is a
 * backslash followed by a wildcard, `\\\*` is a backslash and a literal star).
 */
export function parseWildcards(s: string): Part[] {
  const out: Part[] = [];
  let acc = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      const n = s[i + 1];
      if (n === '*' || n === '?' || n === '\\') {
        acc += n;
        i++;
      } else {
        acc += '\\';
      }
    } else if (c === '*' || c === '?') {
      if (acc) out.push(acc);
      acc = '';
      out.push(c === '*' ? STAR : QMARK);
    } else {
      acc += c;
    }
  }
  if (acc) out.push(acc);
  return out;
}

export function plain(parts: Part[]): string | null {
  let s = '';
  for (const p of parts) {
    if (typeof p !== 'string') return null;
    s += p;
  }
  return s;
}

function normalizeParts(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (typeof p === 'string') {
      if (!p) continue;
      if (typeof last === 'string') out[out.length - 1] = last + p;
      else out.push(p);
    } else if (p === STAR && last === STAR) {
      continue;
    } else out.push(p);
  }
  return out;
}

/**
 * Wildcard match without regexes: the classic greedy algorithm with backtracking to
 * the last star; O(n*m) worst case, no catastrophic blow-up.
 */
export function globMatch(pat: Part[], s: string): boolean {
  // flatten to code units: -1 star, -2 qmark
  const p: number[] = [];
  for (const x of pat) {
    if (x === STAR) p.push(-1);
    else if (x === QMARK) p.push(-2);
    else for (let i = 0; i < x.length; i++) p.push(x.charCodeAt(i));
  }
  return globCodes(p, s);
}

export function globCodes(p: number[] | Int32Array, s: string): boolean {
  let si = 0;
  let pi = 0;
  let starP = -1;
  let starS = 0;
  const n = s.length;
  const m = p.length;
  while (si < n) {
    if (pi < m && (p[pi] === -2 || p[pi] === s.charCodeAt(si))) {
      si++;
      pi++;
    } else if (pi < m && p[pi] === -1) {
      starP = pi++;
      starS = si;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else return false;
  }
  while (pi < m && p[pi] === -1) pi++;
  return pi === m;
}

export function partsToCodes(pat: Part[]): Int32Array {
  const p: number[] = [];
  for (const x of pat) {
    if (x === STAR) p.push(-1);
    else if (x === QMARK) p.push(-2);
    else for (let i = 0; i < x.length; i++) p.push(x.charCodeAt(i));
  }
  return Int32Array.from(p);
}

// ---------------------------------------------------------------------------------
// Value predicates

export type LitMode = 'eq' | 'sw' | 'ew' | 'ct';
export type NumOp = 'eq' | 'lt' | 'lte' | 'gt' | 'gte';
export type TimePart = 'minute' | 'hour' | 'day' | 'week' | 'month' | 'year';

export type ValuePred =
  /** literal string comparison; `text` is lower-cased unless `cased` */
  | { k: 'lit'; mode: LitMode; text: string; cased: boolean }
  /** wildcard pattern (anchored); compared to the lower-cased value unless `cased` */
  | { k: 'wild'; codes: Int32Array; cased: boolean; gate: string; src: string }
  /** `lin`: the same regex on V8's linear engine (null: it cannot run it); set at first use */
  | { k: 're'; re: RegExp; src: string; lin?: RegExp | null; scan?: RegExp; at?: RegExp }
  | { k: 'num'; op: NumOp; n: number; time?: TimePart }
  /** a YAML number without modifiers: numeric equality, or string equality with its text */
  | { k: 'numeq'; n: number; text: string }
  | { k: 'bool'; b: boolean }
  | { k: 'null' }
  | { k: 'exists'; want: boolean }
  | { k: 'cidr'; v6: boolean; addr: bigint; mask: bigint; src: string }
  | { k: 'fieldref'; field: string; mode: LitMode; cased: boolean };

export function toStr(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(v);
    default:
      return undefined;
  }
}

export function toNum(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const t = v.trim();
    if (!t) return undefined;
    const n = Number(t);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function cmp(op: NumOp, a: number, b: number): boolean {
  switch (op) {
    case 'eq':
      return a === b;
    case 'lt':
      return a < b;
    case 'lte':
      return a <= b;
    case 'gt':
      return a > b;
    case 'gte':
      return a >= b;
  }
}

export function litTest(mode: LitMode, s: string, text: string): boolean {
  switch (mode) {
    case 'eq':
      return s === text;
    case 'sw':
      return s.startsWith(text);
    case 'ew':
      return s.endsWith(text);
    case 'ct':
      return s.includes(text);
  }
}

function timePart(v: unknown, part: TimePart): number | undefined {
  let d: Date;
  if (typeof v === 'number') d = new Date(v);
  else if (typeof v === 'string') d = new Date(v);
  else if (v instanceof Date) d = v;
  else return undefined;
  const t = d.getTime();
  if (Number.isNaN(t)) return undefined;
  switch (part) {
    case 'minute':
      return d.getUTCMinutes();
    case 'hour':
      return d.getUTCHours();
    case 'day':
      return d.getUTCDate();
    case 'month':
      return d.getUTCMonth() + 1;
    case 'year':
      return d.getUTCFullYear();
    case 'week': {
      // ISO-8601 week number
      const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
      const day = x.getUTCDay() || 7;
      x.setUTCDate(x.getUTCDate() + 4 - day);
      const y0 = Date.UTC(x.getUTCFullYear(), 0, 1);
      return Math.ceil(((x.getTime() - y0) / 86_400_000 + 1) / 7);
    }
  }
}

/**
 * Test one predicate against one scalar field value (arrays are handled by the caller:
 * any element). `lower` is the lower-cased string form when the caller has it cached.
 * `getField` resolves `fieldref` targets.
 */
export function testScalar(
  p: ValuePred,
  v: unknown,
  lower: string | undefined,
  getField: (name: string) => unknown,
): boolean {
  switch (p.k) {
    case 'lit': {
      if (p.cased) {
        const s = toStr(v);
        return s !== undefined && litTest(p.mode, s, p.text);
      }
      const s = lower ?? toStr(v)?.toLowerCase();
      return s !== undefined && litTest(p.mode, s, p.text);
    }
    case 'wild': {
      const s = p.cased ? toStr(v) : (lower ?? toStr(v)?.toLowerCase());
      return s !== undefined && globCodes(p.codes, s);
    }
    case 're': {
      const s = toStr(v);
      if (s === undefined) return false;
      return testRegex(p, s);
    }
    case 'num': {
      const n = p.time ? timePart(v, p.time) : toNum(v);
      return n !== undefined && cmp(p.op, n, p.n);
    }
    case 'numeq': {
      if (typeof v === 'number') return v === p.n;
      if (typeof v === 'bigint') return Number(v) === p.n;
      if (typeof v === 'string') return v === p.text || (v.trim() !== '' && Number(v) === p.n);
      return false;
    }
    case 'bool': {
      if (typeof v === 'boolean') return v === p.b;
      const s = toStr(v);
      return s !== undefined && s.toLowerCase() === String(p.b);
    }
    case 'cidr': {
      const s = toStr(v);
      if (s === undefined) return false;
      return cidrContains(p, s);
    }
    case 'fieldref': {
      const o = getField(p.field);
      const values = Array.isArray(o) ? o : [o];
      let s = toStr(v);
      if (s === undefined) return false;
      if (!p.cased) s = s.toLowerCase();
      for (const ov of values) {
        let t = toStr(ov);
        if (t === undefined) continue;
        if (!p.cased) t = t.toLowerCase();
        if (litTest(p.mode, s, t)) return true;
      }
      return false;
    }
    case 'null':
      return v === null || v === undefined;
    case 'exists':
      return (v !== undefined) === p.want;
  }
}

/** A `re` predicate on a whole value (see RE_BACKTRACK_MAX and MAX_RE_INPUT). */
export function testRegex(p: Extract<ValuePred, { k: 're' }>, s: string): boolean {
  if (s.length <= RE_BACKTRACK_MAX) {
    p.re.lastIndex = 0;
    return p.re.test(s);
  }
  if (p.lin === undefined) p.lin = linearRegex(p.re);
  if (p.lin) {
    p.lin.lastIndex = 0;
    return p.lin.test(s);
  }
  if (s.length <= MAX_RE_INPUT) {
    p.re.lastIndex = 0;
    return p.re.test(s);
  }
  // candidates in the first MAX_RE_INPUT characters, each confirmed on the whole value
  const flags = p.re.flags.replace(/[gy]/g, '');
  const scan = (p.scan ??= new RegExp(p.re.source, flags + 'g'));
  const at = (p.at ??= new RegExp(p.re.source, flags + 'y'));
  const head = s.slice(0, MAX_RE_INPUT);
  scan.lastIndex = 0;
  for (let k = 0; k < RE_CONFIRM_MAX; k++) {
    const m = scan.exec(head);
    if (!m) return false;
    at.lastIndex = m.index;
    if (at.test(s)) return true;
    scan.lastIndex = m.index + 1;
  }
  return false;
}

function linearRegex(re: RegExp): RegExp | null {
  try {
    return new RegExp(re.source, re.flags.replace(/[gy]/g, '') + 'l');
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------
// IP / CIDR

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    n = n * 256 + o;
  }
  return n;
}

export function parseIPv6(s: string): bigint | undefined {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (isIP(s) !== 6) return undefined;
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  const toGroups = (x: string): number[] | undefined => {
    if (!x) return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (g.includes('.')) {
        const v4 = parseIPv4(g);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = toGroups(head);
  const t = toGroups(tail);
  if (!h || !t) return undefined;
  const groups = dbl >= 0 ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  if (groups.length !== 8) return undefined;
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

export function parseCidr(src: string): { v6: boolean; addr: bigint; mask: bigint } | string {
  const [ip, bitsS, extra] = src.trim().split('/');
  if (extra !== undefined || ip === undefined) return `invalid CIDR '${src}'`;
  const v4 = parseIPv4(ip);
  if (v4 !== undefined) {
    const bits = bitsS === undefined ? 32 : Number(bitsS);
    if (!/^\d+$/.test(bitsS ?? '32') || bits > 32) return `invalid IPv4 prefix length in '${src}'`;
    const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(32 - bits);
    return { v6: false, addr: BigInt(v4) & mask, mask };
  }
  const v6 = parseIPv6(ip);
  if (v6 !== undefined) {
    const bits = bitsS === undefined ? 128 : Number(bitsS);
    if (!/^\d+$/.test(bitsS ?? '128') || bits > 128) return `invalid IPv6 prefix length in '${src}'`;
    const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
    return { v6: true, addr: v6 & mask, mask };
  }
  return `invalid CIDR '${src}' (not an IPv4 or IPv6 network)`;
}

function cidrContains(p: { v6: boolean; addr: bigint; mask: bigint }, s: string): boolean {
  s = s.trim();
  if (!p.v6) {
    let v4 = parseIPv4(s);
    if (v4 === undefined) {
      // IPv4-mapped IPv6 (::ffff:a.b.c.d) matches IPv4 networks
      const v6 = s.includes(':') ? parseIPv6(s) : undefined;
      if (v6 === undefined || v6 >> 32n !== 0xffffn) return false;
      v4 = Number(v6 & 0xffffffffn);
    }
    return (BigInt(v4) & p.mask) === p.addr;
  }
  const v6 = parseIPv6(s);
  return v6 !== undefined && (v6 & p.mask) === p.addr;
}

// ---------------------------------------------------------------------------------
// Regular expressions (`|re`)

/**
 * Translate a PCRE-flavoured Sigma regex to a JavaScript RegExp. Leading inline flag
 * groups like `(?i)` become RegExp flags; `(?P<n>` named groups and `\A`/`\Z` anchors are
 * rewritten; constructs JavaScript cannot express (inline flags mid-pattern, possessive
 * quantifiers, atomic groups) are refused with a message.
 */
export function translateRegex(src: string, subFlags: string, opts: { probe?: boolean } = {}): RegExp | string {
  let flags = new Set(subFlags.split(''));
  let body = src;
  for (;;) {
    const m = /^\(\?([imsx]+)\)/.exec(body);
    if (!m) break;
    for (const f of m[1]!) flags.add(f);
    body = body.slice(m[0].length);
  }
  if (flags.has('x')) return `regex flag 'x' (extended) is not supported`;
  if (/\(\?[imsx-]+[:)]/.test(body.replace(/\\./g, '')))
    return `inline regex flags inside the pattern (e.g. '(?i)' after the start) are not supported in JavaScript; move them to the start or use the |re|i sub-modifier`;
  if (/\(\?>/.test(body.replace(/\\./g, ''))) return `atomic groups '(?>...)' are not supported`;
  if (/(?:[*+?}])\+/.test(body.replace(/\\./g, '').replace(/\[[^\]]*\]/g, '')))
    return `possessive quantifiers (e.g. '*+', '++') are not supported`;
  body = body
    .replace(/\(\?P<([A-Za-z_]\w*)>/g, '(?<$1>')
    .replace(/\(\?P=([A-Za-z_]\w*)\)/g, '\\k<$1>')
    .replace(/(^|[^\\])((?:\\\\)*)\\A/g, '$1$2^')
    .replace(/(^|[^\\])((?:\\\\)*)\\[zZ]/g, '$1$2$');
  const jsFlags = [...flags].filter((f) => 'ims'.includes(f)).join('');
  let re: RegExp;
  try {
    re = new RegExp(body, jsFlags);
  } catch (e) {
    return `invalid regular expression /${src}/: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  // Regexes V8's linear-time engine accepts are bounded by the backtrack fallback.
  let linear = false;
  try {
    new RegExp(body, jsFlags + 'l');
    linear = true;
  } catch {
    /* backreferences, lookarounds, large counted repetitions... */
  }
  if (!linear) {
    const danger = catastrophic(body);
    if (danger) return danger;
    if (opts.probe !== false && !probe(re, body)) return `regex /${src}/ backtracks catastrophically on adversarial input; rewrite it`;
  }
  return re;
}

/** Run the regex on adversarial inputs under a time limit; false when it blows up. */
function probe(re: RegExp, body: string): boolean {
  const chars = new Set(['a', 'x', ' ', '0', '-', '/']);
  for (const c of body.replace(/\\./g, '')) if (/[\w \/.-]/.test(c)) chars.add(c);
  const inputs: string[] = [];
  for (const c of chars) inputs.push(c.repeat(2000) + '!', c.repeat(2000) + '\n');
  const lits = body.replace(/\\.|[\[\](){}*+?|^$]/g, '');
  if (lits) inputs.push(lits.repeat(Math.ceil(2000 / lits.length)) + '!');
  // one context for every probe: making a context costs more than most probes
  const ctx = (probeCtx ??= { context: vm.createContext({ re: null, inputs: null }), script: new vm.Script('for (const s of inputs) { re.lastIndex = 0; re.test(s); }') });
  ctx.context.re = re;
  ctx.context.inputs = inputs;
  try {
    ctx.script.runInContext(ctx.context, { timeout: 200 });
    return true;
  } catch {
    return false;
  } finally {
    ctx.context.re = null;
    ctx.context.inputs = null;
  }
}
let probeCtx: { context: vm.Context; script: vm.Script } | null = null;

/**
 * Reject regexes whose worst case cannot be bounded: nested unbounded quantifiers
 * (e.g. `(a+)+`) combined with backreferences or lookarounds, which V8's linear-time
 * fallback engine cannot run. Other nested quantifiers are bounded by that fallback.
 */
function catastrophic(body: string): string | null {
  // star height: does a group containing an unbounded quantifier carry an unbounded quantifier?
  const stack: boolean[] = [];
  let inner = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      while (i < body.length && body[i] !== ']') i += body[i] === '\\' ? 2 : 1;
      continue;
    }
    if (c === '(') {
      stack.push(inner);
      inner = false;
    } else if (c === ')') {
      const had = inner;
      inner = stack.pop() ?? false;
      const q = body.slice(i + 1, i + 12);
      const unbounded = /^(?:[*+]|\{\d*,\})/.test(q);
      const counted = /^\{\d+(,\d*)?\}/.test(q);
      if (had && (unbounded || counted))
        return `regex nests an unbounded quantifier inside a repeated group (catastrophic backtracking) in a pattern V8 cannot run in linear time; rewrite it`;
      if (had || unbounded) inner = true;
    } else if (c === '*' || c === '+' || (c === '{' && /^\{\d*,\}/.test(body.slice(i)))) {
      inner = true;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------
// Modifier chain

export const KNOWN_MODIFIERS = new Set([
  'contains', 'startswith', 'endswith', 'all', 'exists', 'cased', 'neq', 'windash',
  're', 'i', 'm', 's', 'base64', 'base64offset', 'utf16le', 'utf16be', 'utf16', 'wide',
  'lt', 'lte', 'gt', 'gte', 'minute', 'hour', 'day', 'week', 'month', 'year', 'cidr',
  'expand', 'fieldref',
]);

export interface ModSpec {
  mods: string[];
  match: 'eq' | 'contains' | 'startswith' | 'endswith';
  all: boolean;
  cased: boolean;
  neq: boolean;
  re: boolean;
  reFlags: string;
  numOp?: NumOp;
  time?: TimePart;
  cidr: boolean;
  exists: boolean;
  fieldref: boolean;
  /** value transforms in rule order: windash, expand, utf16*, base64, base64offset */
  transforms: string[];
}

/** Validate a modifier list; returns the spec or an error message. */
export function parseModifiers(mods: string[]): ModSpec | string {
  const spec: ModSpec = {
    mods,
    match: 'eq',
    all: false,
    cased: false,
    neq: false,
    re: false,
    reFlags: '',
    cidr: false,
    exists: false,
    fieldref: false,
    transforms: [],
  };
  for (const m of mods) {
    if (!KNOWN_MODIFIERS.has(m)) return `unknown modifier '${m}'`;
    switch (m) {
      case 'contains':
      case 'startswith':
      case 'endswith':
        if (spec.match !== 'eq') return `modifiers '${spec.match}' and '${m}' cannot be combined`;
        spec.match = m;
        break;
      case 'all':
        spec.all = true;
        break;
      case 'cased':
        spec.cased = true;
        break;
      case 'neq':
        spec.neq = true;
        break;
      case 'exists':
        spec.exists = true;
        break;
      case 're':
        spec.re = true;
        break;
      case 'i':
      case 'm':
      case 's':
        if (!spec.re) return `regex sub-modifier '${m}' must follow 're'`;
        spec.reFlags += m;
        break;
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        if (spec.numOp) return `modifiers '${spec.numOp}' and '${m}' cannot be combined`;
        spec.numOp = m;
        break;
      case 'minute':
      case 'hour':
      case 'day':
      case 'week':
      case 'month':
      case 'year':
        if (spec.time) return `modifiers '${spec.time}' and '${m}' cannot be combined`;
        spec.time = m;
        break;
      case 'cidr':
        spec.cidr = true;
        break;
      case 'fieldref':
        spec.fieldref = true;
        break;
      case 'wide':
        spec.transforms.push('utf16le');
        break;
      default:
        spec.transforms.push(m);
    }
  }
  const kinds = [spec.re, spec.cidr, spec.exists, !!spec.numOp || !!spec.time, spec.fieldref].filter(Boolean).length;
  if (kinds > 1) return `modifiers ${mods.join('|')} cannot be combined`;
  if ((spec.re || spec.cidr || spec.exists || spec.numOp || spec.time) && spec.match !== 'eq')
    return `'${spec.match}' cannot be combined with ${spec.re ? 're' : spec.cidr ? 'cidr' : spec.exists ? 'exists' : 'numeric/time'} modifiers`;
  if ((spec.re || spec.cidr || spec.exists || spec.numOp || spec.time || spec.fieldref) && spec.transforms.length)
    return `encoding modifiers (${spec.transforms.join(', ')}) cannot be combined with ${mods.join('|')}`;
  if (spec.exists && (spec.all || spec.neq || spec.cased)) return `'exists' cannot be combined with other modifiers`;
  const b64 = spec.transforms.findIndex((t) => t === 'base64' || t === 'base64offset');
  const enc = spec.transforms.findIndex((t) => t.startsWith('utf16'));
  if (enc >= 0 && b64 >= 0 && enc > b64) return `utf16 encoding modifiers must come before base64/base64offset`;
  if (spec.transforms.filter((t) => t === 'base64' || t === 'base64offset').length > 1)
    return `only one of base64/base64offset may be used`;
  return spec;
}

export interface ValueContext {
  placeholders: Record<string, string[]>;
  /**
   * false: skip the run-time probe of regexes V8 cannot run in linear time (200 ms each);
   * the parser passes false once a rule already has an error, as it is refused anyway
   */
  probe?: boolean;
}

const DASHES = ['-', '/', '\u2013', '\u2014', '\u2015'];
const DASH_RE = /(?<![\p{L}\p{N}_])[-/\u2013\u2014\u2015](?=[\p{L}\p{N}_])/gu;

function windash(parts: Part[]): Part[][] | string {
  // collect positions (part index, char index) of dashes that start a flag
  let combos: Part[][] = [[]];
  let total = 1;
  for (let pi = 0; pi < parts.length; pi++) {
    const p = parts[pi]!;
    if (typeof p !== 'string') {
      for (const c of combos) c.push(p);
      continue;
    }
    const hits: number[] = [];
    DASH_RE.lastIndex = 0;
    for (let m = DASH_RE.exec(p); m; m = DASH_RE.exec(p)) hits.push(m.index);
    if (!hits.length) {
      for (const c of combos) c.push(p);
      continue;
    }
    total *= DASHES.length ** hits.length;
    if (total > 4096) return `windash expansion of this value exceeds 4096 variants`;
    let variants = [''];
    let last = 0;
    for (const h of hits) {
      const seg = p.slice(last, h);
      variants = variants.flatMap((v) => DASHES.map((d) => v + seg + d));
      last = h + 1;
    }
    variants = variants.map((v) => v + p.slice(last));
    combos = combos.flatMap((c) => variants.map((v) => [...c, v]));
  }
  return combos.map(normalizeParts);
}

function expand(parts: Part[], ctx: ValueContext): Part[][] | string {
  let combos: Part[][] = [[]];
  for (const p of parts) {
    if (typeof p !== 'string' || !p.includes('%')) {
      for (const c of combos) c.push(p);
      continue;
    }
    const segs = p.split(/(%[A-Za-z0-9_.-]+%)/);
    for (const seg of segs) {
      const m = /^%([A-Za-z0-9_.-]+)%$/.exec(seg);
      if (!m) {
        for (const c of combos) c.push(seg);
        continue;
      }
      const vals = ctx.placeholders[m[1]!];
      if (!vals) return `placeholder '%${m[1]}%' is not defined (configure it with --placeholders)`;
      if (!vals.length) return `placeholder '%${m[1]}%' expands to an empty list`;
      combos = combos.flatMap((c) => vals.map((v) => [...c, ...parseWildcards(v)]));
      if (combos.length > 4096) return `placeholder expansion exceeds 4096 variants`;
    }
  }
  return combos.map(normalizeParts);
}

function utf16(s: string, kind: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  if (kind === 'utf16le') return le;
  const be = Buffer.alloc(le.length);
  for (let i = 0; i + 1 < le.length; i += 2) {
    be[i] = le[i + 1]!;
    be[i + 1] = le[i]!;
  }
  if (kind === 'utf16be') return be;
  return Buffer.concat([Buffer.from([0xff, 0xfe]), le]); // utf16 with BOM (little endian)
}

/** The three base64 forms of `b` at byte offsets 0, 1, 2 of an enclosing string (pySigma's scheme). */
export function base64Offsets(b: Buffer): string[] {
  const starts = [0, 2, 3];
  const ends = [0, -3, -2];
  const out: string[] = [];
  for (let i = 0; i < 3; i++) {
    const enc = Buffer.concat([Buffer.alloc(i, 0x20), b]).toString('base64');
    const end = ends[(b.length + i) % 3]!;
    out.push(enc.slice(starts[i], end === 0 ? undefined : end));
  }
  return out;
}

type Raw = string | number | boolean | null;

/**
 * Turn one YAML scalar of a field (with its validated modifier spec) into predicates
 * (an encoding modifier can turn one value into several, OR-ed).
 */
export function compileValue(raw: Raw, spec: ModSpec, ctx: ValueContext): ValuePred[] | string {
  if (spec.exists) {
    if (typeof raw === 'boolean') return [{ k: 'exists', want: raw }];
    if (raw === 'true' || raw === 'false') return [{ k: 'exists', want: raw === 'true' }];
    return `'exists' needs a boolean value (true or false)`;
  }
  if (raw === null) {
    if (spec.mods.length && !(spec.mods.length === 1 && spec.neq)) return `a null value cannot take modifiers (${spec.mods.join('|')})`;
    return [{ k: 'null' }];
  }
  if (spec.numOp || spec.time) {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() && Number.isFinite(Number(raw)) ? Number(raw) : NaN;
    if (Number.isNaN(n)) return `'${spec.numOp ?? spec.time}' needs a numeric value, got '${String(raw)}'`;
    const p: ValuePred = { k: 'num', op: spec.numOp ?? 'eq', n };
    if (spec.time) p.time = spec.time;
    return [p];
  }
  if (spec.cidr) {
    const c = parseCidr(String(raw));
    if (typeof c === 'string') return c;
    return [{ k: 'cidr', ...c, src: String(raw) }];
  }
  if (spec.re) {
    if (typeof raw !== 'string') return `'re' needs a string value`;
    const re = translateRegex(raw, spec.reFlags, { probe: ctx.probe !== false });
    if (typeof re === 'string') return re;
    return [{ k: 're', re, src: raw }];
  }
  if (spec.fieldref) {
    if (typeof raw !== 'string' || !raw) return `'fieldref' needs a field name`;
    const mode: LitMode = spec.match === 'contains' ? 'ct' : spec.match === 'startswith' ? 'sw' : spec.match === 'endswith' ? 'ew' : 'eq';
    return [{ k: 'fieldref', field: raw, mode, cased: spec.cased }];
  }
  if (spec.mods.length === 0 || (spec.mods.every((m) => m === 'neq' || m === 'all'))) {
    if (typeof raw === 'number') return [{ k: 'numeq', n: raw, text: String(raw) }];
    if (typeof raw === 'boolean') return [{ k: 'bool', b: raw }];
  }
  // string semantics
  let variants: Part[][] = [parseWildcards(String(raw))];
  let bytes: Buffer[] | null = null;
  let encoded: string[] | null = null; // base64 output: plain literal strings
  for (const t of spec.transforms) {
    if (t === 'windash' || t === 'expand') {
      if (bytes || encoded) return `'${t}' must come before encoding modifiers`;
      const next: Part[][] = [];
      for (const v of variants) {
        const r = t === 'windash' ? windash(v) : expand(v, ctx);
        if (typeof r === 'string') return r;
        next.push(...r);
      }
      variants = next;
    } else if (t.startsWith('utf16')) {
      const strs = variants.map(plain);
      if (strs.some((s) => s === null)) return `'${t}' cannot encode wildcards; escape '*' and '?' in the value`;
      bytes = (strs as string[]).map((s) => utf16(s, t));
    } else {
      // base64 / base64offset
      if (!bytes) {
        const strs = variants.map(plain);
        if (strs.some((s) => s === null)) return `'${t}' cannot encode wildcards; escape '*' and '?' in the value`;
        bytes = (strs as string[]).map((s) => Buffer.from(s, 'utf8'));
      }
      encoded = t === 'base64' ? bytes.map((b) => b.toString('base64')) : bytes.flatMap(base64Offsets);
      bytes = null;
    }
  }
  if (encoded) variants = encoded.map((s) => (s ? [s] : []));
  else if (bytes) variants = bytes.map((b) => [b.toString('latin1')]);
  const preds: ValuePred[] = [];
  for (let v of variants) {
    if (spec.match === 'contains' || spec.match === 'endswith') v = [STAR, ...v];
    if (spec.match === 'contains' || spec.match === 'startswith') v = [...v, STAR];
    preds.push(partsToPred(normalizeParts(v), spec.cased));
  }
  return preds;
}

/** Build the fastest predicate for a wildcard string. */
export function partsToPred(parts: Part[], cased: boolean): ValuePred {
  const lc = (s: string): string => (cased ? s : s.toLowerCase());
  const lp = parts.map((p) => (typeof p === 'string' ? lc(p) : p));
  const n = lp.length;
  const first = lp[0];
  const last = lp[n - 1];
  // literal forms: "x", "x*", "*x", "*x*"
  if (n === 1 && typeof first === 'string') return { k: 'lit', mode: 'eq', text: first, cased };
  if (n === 0) return { k: 'lit', mode: 'eq', text: '', cased };
  if (n === 1 && first === STAR) return { k: 'lit', mode: 'ct', text: '', cased };
  if (n === 2 && typeof first === 'string' && last === STAR) return { k: 'lit', mode: 'sw', text: first, cased };
  if (n === 2 && first === STAR && typeof last === 'string') return { k: 'lit', mode: 'ew', text: last, cased };
  if (n === 3 && first === STAR && last === STAR && typeof lp[1] === 'string') return { k: 'lit', mode: 'ct', text: lp[1], cased };
  let gate = '';
  for (const p of lp) if (typeof p === 'string' && p.length > gate.length) gate = p;
  const src = lp.map((p) => (p === STAR ? '*' : p === QMARK ? '?' : p)).join('');
  return { k: 'wild', codes: partsToCodes(lp), cased, gate: cased ? gate.toLowerCase() : gate, src };
}
