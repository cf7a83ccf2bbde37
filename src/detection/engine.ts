/**
 * The compiled Sigma engine.
 *
 * Rules are routed by logsource to one engine per vigil event category, so an event only
 * meets rules that can match it. Within a category:
 *  - every case-insensitive literal (equals/startswith/endswith/contains) of every rule
 *    is registered once per field in an Aho-Corasick automaton; one scan of the field
 *    answers all of them (shared literals across rules are matched once);
 *  - each rule's condition compiles to closures over those hits and over direct
 *    predicates (regex, numbers, CIDR, wildcards, cased...);
 *  - each rule gets a "gate": a set of literal hits at least one of which must be present
 *    for the rule to possibly match (derived from its condition). Only gated-in rules,
 *    plus the few rules without a gate, are evaluated for an event.
 */
import { AhoCorasick, F_CT, F_EQ, F_EW, F_SW, HitSet } from './aho.js';
import { expandPattern, type Cond } from './condition.js';
import { FieldMapping, makeGetter } from './mapping.js';
import type { ParsedFilter, ParsedRule, SelLeaf, SelNode } from './parser.js';
import type { SigmaEvent, VigilCategory } from './types.js';
import { testScalar, toStr, type ValuePred } from './values.js';

const MODE_MASK = { eq: F_EQ, sw: F_SW, ew: F_EW, ct: F_CT } as const;

/** Per-event evaluation context. */
export class Ctx {
  ev: SigmaEvent = {};
  gen = 1;
  readonly valGen: Int32Array;
  readonly vals: unknown[];
  readonly lowGen: Int32Array;
  readonly lows: (string | undefined)[];
  constructor(
    readonly hs: HitSet,
    private readonly getters: ((ev: SigmaEvent) => unknown)[],
    readonly getField: (name: string) => unknown,
  ) {
    const n = getters.length;
    this.valGen = new Int32Array(n);
    this.vals = new Array<unknown>(n);
    this.lowGen = new Int32Array(n);
    this.lows = new Array<string | undefined>(n);
  }
  reset(ev: SigmaEvent): void {
    this.ev = ev;
    this.gen = (this.gen + 1) | 0;
    if (this.gen === 0) {
      this.valGen.fill(0);
      this.lowGen.fill(0);
      this.gen = 1;
    }
  }
  val(slot: number): unknown {
    if (this.valGen[slot] === this.gen) return this.vals[slot];
    const v = this.getters[slot]!(this.ev);
    this.valGen[slot] = this.gen;
    this.vals[slot] = v;
    return v;
  }
  low(slot: number): string | undefined {
    if (this.lowGen[slot] === this.gen) return this.lows[slot];
    const v = this.val(slot);
    const s = typeof v === 'string' ? v.toLowerCase() : toStr(v);
    this.lowGen[slot] = this.gen;
    this.lows[slot] = s;
    return s;
  }
}

type Fn = (c: Ctx) => boolean;
interface GateEntry {
  pid: number;
  mask: number;
  len: number;
}
type Gate = GateEntry[] | null;

export interface CompiledRule {
  idx: number;
  rule: ParsedRule;
  fn: Fn;
  selections: [string, Fn][];
  gated: boolean;
}

/** Test a predicate against a field value: scalars directly, arrays by any element. */
export function testFieldValue(p: ValuePred, v: unknown, lower: string | undefined, getField: (n: string) => unknown): boolean {
  if (p.k === 'null' || p.k === 'exists') return testScalar(p, v, undefined, getField);
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (x !== null && typeof x !== 'object' && testScalar(p, x, undefined, getField)) return true;
    return false;
  }
  if (typeof v === 'object') return false;
  return testScalar(p, v, lower, getField);
}

/** Keyword search: does any scalar value anywhere in the event (depth ≤ 4) satisfy p? */
export function testKeyword(p: ValuePred, ev: unknown, getField: (n: string) => unknown, depth = 0): boolean {
  if (ev === null || ev === undefined) return false;
  if (typeof ev !== 'object') return testScalar(p, ev, undefined, getField);
  if (depth > 4) return false;
  if (Array.isArray(ev)) {
    for (const x of ev) if (testKeyword(p, x, getField, depth + 1)) return true;
    return false;
  }
  for (const k in ev) if (testKeyword(p, (ev as Record<string, unknown>)[k], getField, depth + 1)) return true;
  return false;
}

class Builder {
  readonly slots = new Map<string, number>();
  readonly getters: ((ev: SigmaEvent) => unknown)[] = [];
  /** slot → literal → pid */
  readonly lits = new Map<number, Map<string, number>>();
  npids = 0;

  constructor(
    readonly category: VigilCategory,
    readonly mapping: FieldMapping,
  ) {}

  slot(sigmaField: string): number {
    const path = this.mapping.field(this.category, sigmaField);
    let s = this.slots.get(path);
    if (s === undefined) {
      s = this.getters.length;
      this.slots.set(path, s);
      this.getters.push(makeGetter(path));
    }
    return s;
  }

  pid(slot: number, text: string): number {
    let m = this.lits.get(slot);
    if (!m) this.lits.set(slot, (m = new Map()));
    let p = m.get(text);
    if (p === undefined) m.set(text, (p = this.npids++));
    return p;
  }
}

interface Compiled {
  fn: Fn;
  gate: Gate;
}

function gateScore(g: GateEntry[]): number {
  let s = 0;
  for (const e of g) s += e.len >= 5 ? 1 : e.len === 4 ? 2 : e.len === 3 ? 4 : 25;
  return s;
}

function andFns(fns: Fn[]): Fn {
  if (fns.length === 1) return fns[0]!;
  if (fns.length === 2) {
    const [a, b] = fns as [Fn, Fn];
    return (c) => a(c) && b(c);
  }
  return (c) => {
    for (let i = 0; i < fns.length; i++) if (!fns[i]!(c)) return false;
    return true;
  };
}
function orFns(fns: Fn[]): Fn {
  if (fns.length === 1) return fns[0]!;
  if (fns.length === 2) {
    const [a, b] = fns as [Fn, Fn];
    return (c) => a(c) || b(c);
  }
  return (c) => {
    for (let i = 0; i < fns.length; i++) if (fns[i]!(c)) return true;
    return false;
  };
}
function andGate(gs: Gate[]): Gate {
  let best: Gate = null;
  for (const g of gs) if (g && (!best || gateScore(g) < gateScore(best))) best = g;
  return best;
}
function orGate(gs: Gate[]): Gate {
  const out: GateEntry[] = [];
  for (const g of gs) {
    if (!g) return null;
    for (const e of g) out.push(e);
  }
  return out;
}

/** Predicates compiled between two yields of the compile generators. */
const COMPILE_STEP = 1024;

function* compileLeaf(b: Builder, leaf: SelLeaf): Generator<void, Compiled, void> {
  const { preds, all, neg } = leaf;
  if (leaf.field === null) {
    const fns: Fn[] = preds.map((p) => (c: Ctx) => testKeyword(p, c.ev, c.getField));
    const f = all ? andFns(fns) : orFns(fns);
    return { fn: neg ? (c) => !f(c) : f, gate: null };
  }
  const slot = b.slot(leaf.field);
  const fns: Fn[] = [];
  const gates: Gate[] = [];
  // a gate literal: at most GATE_CHARS of it (any part of a literal occurs where it does)
  const gateOn = (text: string): GateEntry[] => {
    const g = text.length > AC_MAX_LITERAL ? text.slice(0, GATE_CHARS) : text;
    return [{ pid: b.pid(slot, g), mask: F_CT, len: g.length }];
  };
  for (let i = 0; i < preds.length; i++) {
    const p = preds[i]!;
    if (i % COMPILE_STEP === COMPILE_STEP - 1) yield;
    if (p.k === 'lit' && !p.cased && p.text !== '' && p.text.length <= AC_MAX_LITERAL) {
      const pid = b.pid(slot, p.text);
      const mask = MODE_MASK[p.mode];
      fns.push((c) => c.hs.hitGen[pid] === c.hs.gen && (c.hs.flags[pid]! & mask) !== 0);
      gates.push([{ pid, mask, len: p.text.length }]);
      continue;
    }
    if (p.k === 'lit' && p.text !== '') gates.push(gateOn(p.cased ? p.text.toLowerCase() : p.text));
    else if (p.k === 'wild' && p.gate) gates.push(gateOn(p.gate));
    else gates.push(null);
    fns.push((c) => testFieldValue(p, c.val(slot), c.low(slot), c.getField));
  }
  const f = all ? andFns(fns) : orFns(fns);
  if (neg) return { fn: (c) => !f(c), gate: null };
  return { fn: f, gate: all ? andGate(gates) : orGate(gates) };
}

function* compileSel(b: Builder, n: SelNode): Generator<void, Compiled, void> {
  if (n.t === 'leaf') return yield* compileLeaf(b, n);
  const parts: Compiled[] = [];
  for (let i = 0; i < n.items.length; i++) {
    parts.push(yield* compileSel(b, n.items[i]!));
    if (i % COMPILE_STEP === COMPILE_STEP - 1) yield;
  }
  if (n.t === 'and') return { fn: andFns(parts.map((p) => p.fn)), gate: andGate(parts.map((p) => p.gate)) };
  return { fn: orFns(parts.map((p) => p.fn)), gate: orGate(parts.map((p) => p.gate)) };
}

function compileCond(c: Cond, sels: Map<string, Compiled>): Compiled {
  switch (c.t) {
    case 'id':
      return sels.get(c.name)!;
    case 'not': {
      const x = compileCond(c.item, sels);
      return { fn: (ctx) => !x.fn(ctx), gate: null };
    }
    case 'and':
    case 'or': {
      const parts = c.items.map((x) => compileCond(x, sels));
      return c.t === 'and'
        ? { fn: andFns(parts.map((p) => p.fn)), gate: andGate(parts.map((p) => p.gate)) }
        : { fn: orFns(parts.map((p) => p.fn)), gate: orGate(parts.map((p) => p.gate)) };
    }
    case 'of': {
      const names = expandPattern(c.pattern, [...sels.keys()]);
      const parts = names.map((n) => sels.get(n)!);
      if (c.n === 'all') return { fn: andFns(parts.map((p) => p.fn)), gate: andGate(parts.map((p) => p.gate)) };
      if (c.n === 1) return { fn: orFns(parts.map((p) => p.fn)), gate: orGate(parts.map((p) => p.gate)) };
      const need = c.n;
      const fns = parts.map((p) => p.fn);
      return {
        fn: (ctx) => {
          let k = 0;
          for (const f of fns) if (f(ctx) && ++k >= need) return true;
          return false;
        },
        gate: orGate(parts.map((p) => p.gate)),
      };
    }
  }
}

/** Compile the detection of a rule (with meta filters applied) for one category. */
function* compileRule(b: Builder, rule: ParsedRule, filters: ParsedFilter[]): Generator<void, { fn: Fn; gate: Gate; selections: [string, Fn][] }, void> {
  const sels = new Map<string, Compiled>();
  for (const [name, node] of rule.detection.selections) sels.set(name, yield* compileSel(b, node));
  const main = compileCond(rule.detection.condition, sels);
  let fn = main.fn;
  for (const f of filters) {
    const fsels = new Map<string, Compiled>();
    for (const [name, node] of f.detection.selections) fsels.set(name, yield* compileSel(b, node));
    const fc = compileCond(f.detection.condition, fsels).fn;
    const prev = fn;
    fn = (c) => prev(c) && !fc(c);
  }
  return { fn, gate: main.gate, selections: [...sels].map(([n, c]) => [n, c.fn]) };
}

export interface EngineStats {
  rules: number;
  gated: number;
  patterns: number;
  automatons: number;
  states: number;
}

/**
 * Literals longer than this are not put into the automaton whole: they are tested
 * directly on the field value, gated by their first GATE_CHARS characters (which must
 * occur wherever the literal occurs). Keeps the automaton small for long values.
 */
export const AC_MAX_LITERAL = 256;
const GATE_CHARS = 64;

/** All rules of one vigil category, compiled. */
export class CategoryEngine {
  readonly rules: CompiledRule[] = [];
  private readonly acs: { slot: number; ac: AhoCorasick }[] = [];
  /** pid → [ruleIdx, mask] pairs flattened */
  private gateIdx: Int32Array[] = [];
  private readonly ungated: number[] = [];
  private ctx!: Ctx;
  private hs!: HitSet;
  private candGen!: Int32Array;
  private readonly cand: number[] = [];
  private readonly getterCache = new Map<string, (ev: SigmaEvent) => unknown>();
  stats!: EngineStats;

  constructor(
    readonly category: VigilCategory,
    rules: ParsedRule[],
    filtersFor: (r: ParsedRule) => ParsedFilter[],
    private readonly mapping: FieldMapping,
    /** build later with compile() (in slices) instead of now */
    deferred = false,
  ) {
    if (!deferred) {
      const g = this.compile(rules, filtersFor);
      while (!g.next().done);
    }
  }

  /** Compile the rules; yields between rules and inside automaton construction. */
  *compile(rules: ParsedRule[], filtersFor: (r: ParsedRule) => ParsedFilter[]): Generator<void, void, void> {
    const { category, mapping } = this;
    const b = new Builder(category, mapping);
    const gates: Gate[] = [];
    for (let idx = 0; idx < rules.length; idx++) {
      const rule = rules[idx]!;
      const c = yield* compileRule(b, rule, filtersFor(rule));
      this.rules.push({ idx, rule, fn: c.fn, selections: c.selections, gated: !!c.gate && c.gate.length > 0 });
      gates.push(c.gate && c.gate.length ? c.gate : null);
      yield;
    }
    this.hs = new HitSet(Math.max(1, b.npids));
    let states = 0;
    for (const [slot, m] of b.lits) {
      const ac = yield* AhoCorasick.build([...m.keys()], [...m.values()]);
      states += ac.states;
      this.acs.push({ slot, ac });
    }
    const byPid: number[][] = [];
    for (let i = 0; i < b.npids; i++) {
      byPid.push([]);
      if (i % COMPILE_STEP === 0) yield;
    }
    yield;
    let work = 0;
    for (let ri = 0; ri < gates.length; ri++) {
      const g = gates[ri];
      if (!g) {
        this.ungated.push(ri);
        continue;
      }
      const seen = new Set<number>();
      for (const e of g) {
        const k = e.pid * 16 + e.mask;
        if (seen.has(k)) continue;
        seen.add(k);
        byPid[e.pid]!.push(ri, e.mask);
        if (++work % COMPILE_STEP === 0) yield;
      }
      if (++work % COMPILE_STEP === 0) yield;
    }
    this.gateIdx = [];
    for (let i = 0; i < byPid.length; i++) {
      this.gateIdx.push(Int32Array.from(byPid[i]!));
      if (i % 256 === 255) yield;
    }
    this.candGen = new Int32Array(rules.length);
    const getField = (name: string): unknown => {
      let g = this.getterCache.get(name);
      if (!g) this.getterCache.set(name, (g = makeGetter(mapping.field(category, name))));
      return g(this.ctx.ev);
    };
    this.ctx = new Ctx(this.hs, b.getters, getField);
    this.stats = {
      rules: rules.length,
      gated: rules.length - this.ungated.length,
      patterns: b.npids,
      automatons: this.acs.length,
      states,
    };
  }

  /** Indices (into this.rules) of the rules that match `ev`, in rule order. */
  match(ev: SigmaEvent, out: number[]): void {
    const ctx = this.ctx;
    const hs = this.hs;
    ctx.reset(ev);
    hs.next();
    for (let i = 0; i < this.acs.length; i++) {
      const { slot, ac } = this.acs[i]!;
      const v = ctx.val(slot);
      if (v === undefined || v === null) continue;
      if (typeof v === 'string') ac.scan(ctx.low(slot)!, hs);
      else if (Array.isArray(v)) {
        for (const x of v) {
          const s = typeof x === 'string' ? x.toLowerCase() : toStr(x);
          if (s !== undefined) ac.scan(s, hs);
        }
      } else {
        const s = toStr(v);
        if (s !== undefined) ac.scan(s, hs);
      }
    }
    // candidates: rules whose gate literal was hit, plus ungated rules
    const gen = hs.gen;
    const cand = this.cand;
    cand.length = 0;
    const list = hs.list;
    for (let i = 0; i < list.length; i++) {
      const pid = list[i]!;
      const gi = this.gateIdx[pid]!;
      if (gi.length === 0) continue;
      const f = hs.flags[pid]!;
      for (let k = 0; k < gi.length; k += 2) {
        const ri = gi[k]!;
        if (this.candGen[ri] !== gen && (f & gi[k + 1]!) !== 0) {
          this.candGen[ri] = gen;
          cand.push(ri);
        }
      }
    }
    const ug = this.ungated;
    for (let i = 0; i < ug.length; i++) cand.push(ug[i]!);
    if (cand.length > 1) cand.sort((a, b) => a - b);
    for (let i = 0; i < cand.length; i++) {
      const r = this.rules[cand[i]!]!;
      if (r.fn(ctx)) out.push(r.idx);
    }
  }

  /** Names of the selections of rule `idx` that are true for the event last passed to match(). */
  matchedSelections(idx: number): string[] {
    const out: string[] = [];
    for (const [n, f] of this.rules[idx]!.selections) {
      try {
        if (f(this.ctx)) out.push(n);
      } catch {
        /* ignore */
      }
    }
    return out;
  }
}
