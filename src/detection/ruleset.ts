/**
 * RuleSet: a loaded, compiled set of Sigma rules, correlations and filters.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CategoryEngine, type EngineStats } from './engine.js';
import { CorrelationState, DEFAULT_LIMITS, type CorrelationLimits } from './correlation.js';
import { FieldMapping, KNOWN_FIELDS, makeGetter } from './mapping.js';
import { parseRuleFile, type ParsedCorrelation, type ParsedDoc, type ParsedFilter, type ParsedRule, type SelNode } from './parser.js';
import { VIGIL_CATEGORIES, type Alert, type InactiveRule, type RuleError, type SigmaEvent, type VigilCategory } from './types.js';

export interface RuleSetOptions {
  mapping?: FieldMapping;
  placeholders?: Record<string, string[]>;
  correlationLimits?: Partial<CorrelationLimits>;
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

/** Recursively list *.yml / *.yaml files under a path (a file path lists itself). */
export function listRuleFiles(p: string): string[] {
  const st = statSync(p);
  if (st.isFile()) return [p];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const f = join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile() && /\.ya?ml$/i.test(e.name)) out.push(f);
    }
  };
  walk(p);
  return out;
}

export class RuleSet {
  /** every loaded document (rules, correlations, filters), active or not */
  readonly rules: RuleSummary[] = [];
  readonly errors: RuleError[] = [];
  readonly warnings: RuleError[] = [];
  readonly inactive: InactiveRule[] = [];
  readonly stats = { events: 0, alerts: 0, evalErrors: 0, lastError: '' };
  private readonly engines = new Map<string, CategoryEngine>();
  private readonly engineRules = new Map<string, ParsedRule[]>();
  private readonly correlations: { def: ParsedCorrelation; state: CorrelationState }[] = [];
  /** rule id → correlations consuming its matches */
  private readonly consumers = new Map<string, number[]>();
  /** rule ids whose own alerts are suppressed (referenced by a correlation without generate) */
  private readonly silent = new Set<string>();
  private readonly refsOf = new Map<string, string[]>();
  private readonly matchBuf: number[] = [];

  constructor(
    docs: ParsedDoc[],
    errors: RuleError[] = [],
    readonly options: RuleSetOptions = {},
  ) {
    for (const e of errors) (e.severity === 'warning' ? this.warnings : this.errors).push(e);
    const mapping = options.mapping ?? new FieldMapping();
    const rules = docs.filter((d): d is ParsedRule => d.kind === 'rule');
    const filters = docs.filter((d): d is ParsedFilter => d.kind === 'filter');
    const corrs = docs.filter((d): d is ParsedCorrelation => d.kind === 'correlation');

    // duplicate ids: keep the first
    const byId = new Map<string, ParsedDoc>();
    const byName = new Map<string, ParsedDoc>();
    const accepted: ParsedDoc[] = [];
    for (const d of [...rules, ...corrs, ...filters]) {
      const prev = byId.get(d.id);
      if (prev) {
        this.errors.push({ path: d.path, line: d.line, col: d.col, severity: 'error', rule_id: d.id, message: `duplicate rule id '${d.id}' (also in ${prev.path}:${prev.line}); this copy is ignored` });
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
      for (const ref of f.rules) {
        const r = resolve(ref);
        if (!r) {
          this.warnings.push({ path: f.path, line: f.line, col: f.col, severity: 'warning', rule_id: f.id, message: `filter refers to rule '${ref}', which is not loaded` });
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
    }
    for (const c of VIGIL_CATEGORIES) {
      const rs = perCat.get(c);
      if (!rs?.length) continue;
      this.engineRules.set(c, rs);
      this.engines.set(c, new CategoryEngine(c, rs, (r) => filtersOf.get(r.id) ?? [], mapping));
    }

    // correlations
    const limits = { ...DEFAULT_LIMITS, ...options.correlationLimits };
    const fieldGetters = new Map<string, (ev: SigmaEvent) => unknown>();
    const getField = (ev: SigmaEvent, f: string): unknown => {
      let g = fieldGetters.get(f);
      if (!g) fieldGetters.set(f, (g = makeGetter(mapping.field((ev.category as VigilCategory) ?? 'process_creation', f))));
      return g(ev);
    };
    const corrOk = new Map<string, boolean>();
    const checkCorr = (c: ParsedCorrelation, stack: string[]): string | null => {
      if (stack.includes(c.id)) return `correlation cycle: ${[...stack, c.id].join(' → ')}`;
      for (const ref of c.rules) {
        const d = resolve(ref);
        if (!d) return `refers to rule '${ref}', which is not loaded`;
        if (d.kind === 'filter') return `refers to '${ref}', which is a filter`;
        if (d.kind === 'correlation') {
          const e = checkCorr(d, [...stack, c.id]);
          if (e) return e;
        }
      }
      return null;
    };
    for (const c of accepted.filter((d): d is ParsedCorrelation => d.kind === 'correlation')) {
      const err = checkCorr(c, []);
      corrOk.set(c.id, !err);
      if (err) {
        this.errors.push({ path: c.path, line: c.line, col: c.col, severity: 'error', rule_id: c.id, message: `correlation: ${err}` });
        continue;
      }
      const ruleIds = c.rules.map((r) => resolve(r)!.id);
      const state = new CorrelationState(c, ruleIds, new Map(), limits, getField);
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
    const known = new Set(KNOWN_FIELDS[c]);
    const fields = new Set<string>();
    const walk = (n: SelNode): void => {
      if (n.t === 'leaf') {
        if (n.field) fields.add(n.field);
      } else n.items.forEach(walk);
    };
    r.detection.selections.forEach(walk);
    for (const f of fields) {
      const path = mapping.field(c, f);
      if (!known.has(path) && !path.includes('.'))
        this.warnings.push({ path: r.path, line: r.line, col: r.col, severity: 'warning', rule_id: r.id, message: `field '${f}' is not in vigil's ${c} events (map it with a field-mapping file)` });
    }
  }

  /** Parse and compile rule sources. */
  static fromSources(sources: { path: string; text: string }[], opts: RuleSetOptions = {}): RuleSet {
    const docs: ParsedDoc[] = [];
    const errors: RuleError[] = [];
    for (const s of sources) {
      const r = parseRuleFile(s.path, s.text, { placeholders: opts.placeholders ?? {} });
      docs.push(...r.docs);
      errors.push(...r.errors);
    }
    return new RuleSet(docs, errors, opts);
  }

  /** Load rule files or directories (recursively, *.yml/*.yaml). Unreadable paths become errors. */
  static fromPaths(paths: string[], opts: RuleSetOptions = {}): RuleSet {
    const sources: { path: string; text: string }[] = [];
    const errors: RuleError[] = [];
    for (const p of paths) {
      let files: string[];
      try {
        files = listRuleFiles(p);
      } catch (e) {
        errors.push({ path: p, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` });
        continue;
      }
      for (const f of files) {
        try {
          sources.push({ path: f, text: readFileSync(f, 'utf8') });
        } catch (e) {
          errors.push({ path: f, line: 0, col: 0, severity: 'error', message: `cannot read: ${(e as Error).message}` });
        }
      }
    }
    const rs = RuleSet.fromSources(sources, opts);
    rs.errors.unshift(...errors);
    return rs;
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
      let ts: number | undefined;
      const tsOf = (): number => {
        if (ts === undefined) {
          const t = typeof event.timestamp === 'string' ? Date.parse(event.timestamp) : typeof event.timestamp === 'number' ? event.timestamp : NaN;
          ts = Number.isNaN(t) ? Date.now() : t;
        }
        return ts;
      };
      const evTs = typeof event.timestamp === 'string' ? event.timestamp : new Date(tsOf()).toISOString();
      const rules = this.engineRules.get(cat)!;
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
          alerts.push(a);
        }
        if (this.consumers.has(r.id)) this.feedCorrelations(r.id, event, tsOf(), alerts, 0);
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

  /** Memory held by correlation state: groups per correlation id. */
  correlationGroups(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.correlations) out[c.def.id] = c.state.size;
    return out;
  }
}
