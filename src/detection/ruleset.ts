/**
 * RuleSet: a loaded, compiled set of Sigma rules, correlations and filters.
 */
import { CategoryEngine, type EngineStats } from './engine.js';
import { CorrelationState, DEFAULT_LIMITS, type CorrelationLimits } from './correlation.js';
import { FieldMapping, KNOWN_FIELDS, makeGetter } from './mapping.js';
import { limitMessages, ruleLimits, type RuleLimits } from './limits.js';
import { parseRuleFile, type ParsedCorrelation, type ParsedDoc, type ParsedFilter, type ParsedRule, type SelNode } from './parser.js';
import { scanRules, walkRules } from './scan.js';
import { VIGIL_CATEGORIES, type Alert, type InactiveRule, type RuleError, type SigmaEvent, type VigilCategory } from './types.js';

export interface RuleSetOptions {
  mapping?: FieldMapping;
  placeholders?: Record<string, string[]>;
  correlationLimits?: Partial<CorrelationLimits>;
  /** input limits (docs/detection.md, "Limits"); defaults RULE_LIMITS */
  limits?: Partial<RuleLimits>;
}

export interface RuleSummary {
  id: string;
  name?: string;
  title: string;
  level: string;
  status?: string;
  tags: string[];
  path: string;
  kind: 'rule' | 'correlation' | 'filter';
  /** vigil categories the rule runs on; empty when inactive */
  categories: VigilCategory[];
  active: boolean;
  reason?: string;
}

const EMPTY: Alert[] = [];
Object.freeze(EMPTY);

/**
 * Recursively list *.yml / *.yaml files under a path (a file path lists itself), following
 * symlinked directories and files; throws when the path itself cannot be read.
 */
export function listRuleFiles(p: string): string[] {
  const r = walkRules([p]);
  if (r.errors.length && r.errors[0]!.path === p) throw new Error(r.errors[0]!.message.replace(/^cannot read: /, ''));
  return r.files;
}

/** Documents handled between two yields of the build generator. */
const YIELD_EVERY = 256;

/** A deferred build: RuleSet.build drives it in slices. */
const DEFER = Symbol('defer');

/** Run a generator to completion, giving the event loop a turn every `sliceMs`. */
export async function runSliced(g: Generator<void, unknown, void>, sliceMs = 8): Promise<void> {
  let t = performance.now();
  for (;;) {
    if (g.next().done) return;
    if (performance.now() - t >= sliceMs) {
      await new Promise<void>((r) => setImmediate(r));
      t = performance.now();
    }
  }
}

export class RuleSet {
  /** every loaded document (rules, correlations, filters), active or not */
  readonly rules: RuleSummary[] = [];
  readonly errors: RuleError[] = [];
  readonly warnings: RuleError[] = [];
  readonly inactive: InactiveRule[] = [];
  /**
   * untimed: events that matched a rule feeding a correlation but had no valid timestamp
   * (they are not counted by any correlation: a window needs the event's time);
   * lastUntimed: the correlations the latest such event could not feed.
   */
  readonly stats = { events: 0, alerts: 0, evalErrors: 0, lastError: '', untimed: 0, lastUntimed: [] as string[] };
  /** rule id → the fields its detection reads (for the truncation flag of alerts) */
  private readonly ruleFields = new Map<string, RuleFields>();
  private readonly engines = new Map<string, CategoryEngine>();
  private readonly engineRules = new Map<string, ParsedRule[]>();
  private readonly correlations: { def: ParsedCorrelation; state: CorrelationState }[] = [];
  /** rule id → correlations consuming its matches */
  private readonly consumers = new Map<string, number[]>();
  /** rule ids whose own alerts are suppressed (referenced by a correlation without generate) */
  private readonly silent = new Set<string>();
  private readonly refsOf = new Map<string, string[]>();
  private readonly matchBuf: number[] = [];

  private pending: Generator<void, void, void> | null = null;
  private readonly knownFields: Partial<Record<VigilCategory, Set<string>>> = {};
  private mapping: FieldMapping;

  constructor(
    docs: ParsedDoc[],
    errors: RuleError[] = [],
    readonly options: RuleSetOptions = {},
    defer?: typeof DEFER,
  ) {
    this.mapping = options.mapping ?? new FieldMapping();
    const g = this.steps(docs, errors);
    if (defer === DEFER) this.pending = g;
    else while (!g.next().done);
  }

  /**
   * Compile without stalling the event loop: the work is cut in slices of `sliceMs`
   * between which other callbacks (events) run. The set is usable once the promise
   * resolves; swap it in then.
   */
  static async build(docs: ParsedDoc[], errors: RuleError[] = [], options: RuleSetOptions = {}, sliceMs = 8): Promise<RuleSet> {
    const rs = new RuleSet(docs, errors, options, DEFER);
    await runSliced(rs.pending!, sliceMs);
    rs.pending = null;
    return rs;
  }

  private *steps(allDocs: ParsedDoc[], errors: RuleError[]): Generator<void, void, void> {
    const options = this.options;
    for (const e of errors) (e.severity === 'warning' ? this.warnings : this.errors).push(e);
    const mapping = this.mapping;
    const limits = ruleLimits(options.limits);
    let docs = allDocs;
    if (docs.length > limits.maxRules) {
      docs = allDocs.slice(0, limits.maxRules);
      const dropped = new Map<string, ParsedDoc[]>();
      for (const d of allDocs.slice(limits.maxRules)) {
        const a = dropped.get(d.path) ?? [];
        a.push(d);
        dropped.set(d.path, a);
      }
      for (const [path, ds] of dropped)
        this.errors.push({ path, line: ds[0]!.line, col: ds[0]!.col, severity: 'error', rule_id: ds[0]!.id, message: limitMessages.rules(limits.maxRules, ds.length) });
    }
    const rules = docs.filter((d): d is ParsedRule => d.kind === 'rule');
    const filters = docs.filter((d): d is ParsedFilter => d.kind === 'filter');
    const corrs = docs.filter((d): d is ParsedCorrelation => d.kind === 'correlation');

    // duplicate ids: keep the first
    const byId = new Map<string, ParsedDoc>();
    const byName = new Map<string, ParsedDoc>();
    const accepted: ParsedDoc[] = [];
    let work = 0;
    for (const d of [...rules, ...corrs, ...filters]) {
      if (++work % YIELD_EVERY === 0) yield;
      const prev = byId.get(d.id);
      if (prev) {
        this.errors.push({ path: d.path, line: d.idAt.line, col: d.idAt.col, severity: 'error', rule_id: d.id, message: `duplicate rule id '${d.id}' (also in ${prev.path}:${prev.idAt.line}:${prev.idAt.col}); this copy is ignored` });
        continue;
      }
      byId.set(d.id, d);
      if (d.name) byName.set(d.name, d);
      accepted.push(d);
    }
    const resolve = (ref: string): ParsedDoc | undefined => byId.get(ref) ?? byName.get(ref);

    // filters → rules they name
    const filtersOf = new Map<string, ParsedFilter[]>();
    for (const f of accepted.filter((d): d is ParsedFilter => d.kind === 'filter')) {
      if (++work % YIELD_EVERY === 0) yield;
      for (const [i, ref] of f.rules.entries()) {
        const r = resolve(ref);
        if (!r) {
          const at = f.rulesAt[i] ?? f;
          this.warnings.push({ path: f.path, line: at.line, col: at.col, severity: 'warning', rule_id: f.id, message: `filter refers to rule '${ref}', which is not loaded` });
          continue;
        }
        const a = filtersOf.get(r.id) ?? [];
        a.push(f);
        filtersOf.set(r.id, a);
      }
      this.rules.push(this.summary(f, [], true));
    }

    // route rules
    const perCat = new Map<VigilCategory, ParsedRule[]>();
    for (const r of accepted.filter((d): d is ParsedRule => d.kind === 'rule')) {
      if (++work % YIELD_EVERY === 0) yield;
      const route = mapping.route(r.logsource);
      this.refsOf.set(r.id, r.name ? [r.id, r.name] : [r.id]);
      if ('reason' in route) {
        this.inactive.push({ path: r.path, rule_id: r.id, title: r.title, reason: route.reason });
        this.rules.push(this.summary(r, [], false, route.reason));
        continue;
      }
      for (const c of route.categories) {
        const a = perCat.get(c) ?? [];
        a.push(r);
        perCat.set(c, a);
        this.checkFields(r, c, mapping);
      }
      this.rules.push(this.summary(r, route.categories, true));
      this.ruleFields.set(r.id, fieldsOf(r));
    }
    yield;
    for (const c of VIGIL_CATEGORIES) {
      const rs = perCat.get(c);
      if (!rs?.length) continue;
      const eng = new CategoryEngine(c, rs, (r) => filtersOf.get(r.id) ?? [], mapping, true);
      yield* eng.compile(rs, (r) => filtersOf.get(r.id) ?? []);
      this.engineRules.set(c, rs);
      this.engines.set(c, eng);
    }

    // correlations
    const corrLimits = { ...DEFAULT_LIMITS, ...options.correlationLimits };
    const fieldGetters = new Map<string, (ev: SigmaEvent) => unknown>();
    const getField = (ev: SigmaEvent, f: string): unknown => {
      let g = fieldGetters.get(f);
      if (!g) fieldGetters.set(f, (g = makeGetter(mapping.field((ev.category as VigilCategory) ?? 'process_creation', f))));
      return g(ev);
    };
    const corrOk = new Map<string, boolean>();
    /** problems of a correlation: [message, index of the `rules` entry it concerns] */
    const checkCorr = (c: ParsedCorrelation, stack: string[]): [string, number][] => {
      if (stack.includes(c.id)) return [[`correlation cycle: ${[...stack, c.id].join(' → ')}`, -1]];
      const out: [string, number][] = [];
      c.rules.forEach((ref, i) => {
        const d = resolve(ref);
        if (!d) out.push([`refers to rule '${ref}', which is not loaded`, i]);
        else if (d.kind === 'filter') out.push([`refers to '${ref}', which is a filter`, i]);
        else if (d.kind === 'correlation') for (const [m] of checkCorr(d, [...stack, c.id])) out.push([m, i]);
      });
      return out;
    };
    for (const c of accepted.filter((d): d is ParsedCorrelation => d.kind === 'correlation')) {
      if (++work % YIELD_EVERY === 0) yield;
      const errs = checkCorr(c, []);
      corrOk.set(c.id, !errs.length);
      if (errs.length) {
        for (const [m, i] of errs) {
          const at = c.rulesAt[i] ?? c;
          this.errors.push({ path: c.path, line: at.line, col: at.col, severity: 'error', rule_id: c.id, message: `correlation: ${m}` });
        }
        continue;
      }
      const ruleIds = c.rules.map((r) => resolve(r)!.id);
      const state = new CorrelationState(c, ruleIds, new Map(), corrLimits, getField);
      // refs by which rules are known to this correlation (its own names + ids)
      c.rules.forEach((ref, i) => {
        const id = ruleIds[i]!;
        const known = this.refsOf.get(id) ?? [id];
        if (!known.includes(ref)) known.push(ref);
        this.refsOf.set(id, known);
      });
      const ci = this.correlations.length;
      this.correlations.push({ def: c, state });
      this.refsOf.set(c.id, c.name ? [c.id, c.name] : [c.id]);
      for (const id of new Set(ruleIds)) {
        const a = this.consumers.get(id) ?? [];
        a.push(ci);
        this.consumers.set(id, a);
        if (!c.generate) this.silent.add(id);
      }
      this.rules.push(this.summary(c, [], true));
    }
  }

  private summary(d: ParsedDoc, categories: VigilCategory[], active: boolean, reason?: string): RuleSummary {
    const s: RuleSummary = { id: d.id, title: d.title, level: d.level, tags: d.tags, path: d.path, kind: d.kind, categories, active };
    if (d.name) s.name = d.name;
    if (d.status) s.status = d.status;
    if (reason) s.reason = reason;
    return s;
  }

  private checkFields(r: ParsedRule, c: VigilCategory, mapping: FieldMapping): void {
    const known = (this.knownFields[c] ??= new Set(KNOWN_FIELDS[c]));
    for (const f of fieldsOf(r).fields) {
      const path = mapping.field(c, f);
      const at = r.fieldAt[f] ?? r;
      if (!known.has(path) && !path.includes('.'))
        this.warnings.push({ path: r.path, line: at.line, col: at.col, severity: 'warning', rule_id: r.id, message: `field '${f}' is not in vigil's ${c} events (map it with a field-mapping file)` });
    }
  }

  /** Parse and compile rule sources (the size limits apply as to files). */
  static fromSources(sources: { path: string; text: string }[], opts: RuleSetOptions = {}): RuleSet {
    const limits = ruleLimits(opts.limits);
    const docs: ParsedDoc[] = [];
    const errors: RuleError[] = [];
    let total = 0;
    for (const s of sources) {
      const size = Buffer.byteLength(s.text);
      const refuse = (message: string): void => void errors.push({ path: s.path, line: 0, col: 0, severity: 'error', message });
      if (size > limits.maxFileBytes) refuse(limitMessages.file(size, limits));
      else if (total + size > limits.maxTotalBytes) refuse(limitMessages.total(size, limits));
      else {
        total += size;
        const r = parseRuleFile(s.path, s.text, { placeholders: opts.placeholders ?? {}, limits });
        docs.push(...r.docs);
        errors.push(...r.errors);
      }
    }
    return new RuleSet(docs, errors, opts);
  }

  /**
   * Load rule files or directories (recursively, *.yml/*.yaml, following symlinks).
   * Missing or unreadable paths, and files over the limits, become errors.
   */
  static fromPaths(paths: string[], opts: RuleSetOptions = {}): RuleSet {
    const r = scanRules(paths, new Map(), { placeholders: opts.placeholders ?? {}, ...(opts.limits ? { limits: opts.limits } : {}) });
    const docs: ParsedDoc[] = [];
    const errors: RuleError[] = [...r.errors];
    for (const f of r.files) {
      docs.push(...(f.parsed?.docs ?? []));
      errors.push(...(f.parsed?.errors ?? []));
    }
    return new RuleSet(docs, errors, opts);
  }

  static fromFiles(files: string[], opts: RuleSetOptions = {}): RuleSet {
    return RuleSet.fromPaths(files, opts);
  }
  static fromDirs(dirs: string[], opts: RuleSetOptions = {}): RuleSet {
    return RuleSet.fromPaths(dirs, opts);
  }

  /** Number of rules that can fire on vigil events. */
  get activeCount(): number {
    let n = 0;
    for (const rs of this.engineRules.values()) n += rs.length;
    return n;
  }

  engineStats(): Record<string, EngineStats> {
    const out: Record<string, EngineStats> = {};
    for (const [c, e] of this.engines) out[c] = e.stats;
    return out;
  }

  /**
   * Evaluate one event: every matching rule yields an alert (and correlations fed by the
   * match may fire too). Never throws; evaluation failures are counted in `stats`.
   */
  evaluate(event: SigmaEvent): Alert[] {
    this.stats.events++;
    try {
      const cat = event.category;
      if (typeof cat !== 'string') return EMPTY;
      const eng = this.engines.get(cat);
      if (!eng) return EMPTY;
      const buf = this.matchBuf;
      buf.length = 0;
      eng.match(event, buf);
      if (!buf.length) return EMPTY;
      const alerts: Alert[] = [];
      const ts = eventTime(event.timestamp);
      const evTs = ts === null ? new Date().toISOString() : typeof event.timestamp === 'string' ? event.timestamp : new Date(ts).toISOString();
      const truncated = truncatedFields(event);
      const rules = this.engineRules.get(cat)!;
      let untimedFor: string[] | null = null;
      for (const idx of buf) {
        const r = rules[idx]!;
        if (!this.silent.has(r.id)) {
          const a: Alert = {
            rule_id: r.id,
            rule_title: r.title,
            level: r.level,
            tags: r.tags,
            matched: eng.matchedSelections(idx),
            event,
            rule_path: r.path,
            timestamp: evTs,
          };
          if (r.status) a.status = r.status;
          if (r.description) a.description = r.description;
          if (ts === null) a.untimed = true;
          if (truncated) {
            const t = this.truncatedFor(r.id, truncated, cat as VigilCategory);
            if (t.length) a.truncated = t;
          }
          alerts.push(a);
        }
        if (this.consumers.has(r.id)) {
          if (ts === null) {
            untimedFor ??= [];
            for (const ci of this.consumers.get(r.id)!) untimedFor.push(this.correlations[ci]!.def.id);
          } else this.feedCorrelations(r.id, event, ts, alerts, 0);
        }
      }
      if (untimedFor) {
        this.stats.untimed++;
        this.stats.lastUntimed = [...new Set(untimedFor)];
      }
      this.stats.alerts += alerts.length;
      return alerts.length ? alerts : EMPTY;
    } catch (e) {
      this.stats.evalErrors++;
      this.stats.lastError = (e as Error)?.message ?? String(e);
      return EMPTY;
    }
  }

  private feedCorrelations(id: string, event: SigmaEvent, ts: number, alerts: Alert[], depth: number): void {
    if (depth > 16) return;
    const refs = this.refsOf.get(id) ?? [id];
    for (const ci of this.consumers.get(id) ?? []) {
      const { def, state } = this.correlations[ci]!;
      const info = state.feed(refs, event, ts);
      if (!info) continue;
      if (!this.silent.has(def.id)) {
        const a: Alert = {
          rule_id: def.id,
          rule_title: def.title,
          level: def.level,
          tags: def.tags,
          matched: def.rules,
          event,
          rule_path: def.path,
          timestamp: info.last_timestamp,
          correlation: info,
        };
        if (def.status) a.status = def.status;
        if (def.description) a.description = def.description;
        alerts.push(a);
      }
      if (this.consumers.has(def.id)) this.feedCorrelations(def.id, event, ts, alerts, depth + 1);
    }
  }

  /** The fields of rule `id` among the event's truncated fields. */
  private truncatedFor(id: string, truncated: string[], cat: VigilCategory): string[] {
    const rf = this.ruleFields.get(id);
    if (!rf) return [];
    if (rf.keywords) return truncated;
    const out: string[] = [];
    for (const t of truncated) {
      const base = t.split(':')[0]!;
      for (const f of rf.fields) {
        const p = this.mapping.field(cat, f);
        if (base === f || base === p || base.startsWith(f + '.') || base.startsWith(p + '.')) {
          out.push(t);
          break;
        }
      }
    }
    return out;
  }

  /** Memory held by correlation state: groups per correlation id. */
  correlationGroups(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.correlations) out[c.def.id] = c.state.size;
    return out;
  }
}

interface RuleFields {
  fields: string[];
  /** a keyword selection reads every field */
  keywords: boolean;
}

/** The fields a rule's detection reads (and whether it searches keywords). */
function fieldsOf(r: ParsedRule): RuleFields {
  const fields = new Set<string>();
  let keywords = false;
  const walk = (n: SelNode): void => {
    if (n.t === 'leaf') {
      if (n.field) fields.add(n.field);
      else keywords = true;
    } else n.items.forEach(walk);
  };
  r.detection.selections.forEach(walk);
  return { fields: [...fields], keywords };
}

/** An event's time in ms since the epoch (ISO-8601 string or epoch ms), or null. */
export function eventTime(t: unknown): number | null {
  const v = typeof t === 'string' ? Date.parse(t) : typeof t === 'number' ? t : NaN;
  return Number.isFinite(v) ? v : null;
}

/** The event's `vigil.truncated` list (fields its sensor cut short), or null. */
function truncatedFields(ev: SigmaEvent): string[] | null {
  const v = ev.vigil;
  if (!v || typeof v !== 'object') return null;
  const t = (v as Record<string, unknown>).truncated;
  if (!Array.isArray(t) || !t.length) return null;
  return t.filter((x): x is string => typeof x === 'string');
}
