/**
 * A deliberately simple rule-by-rule Sigma interpreter: every rule, every event, walk the
 * condition and selection trees, lower-case values on each comparison. It shares the
 * value predicates with the compiled engine but none of its machinery (no category
 * index, no Aho-Corasick, no gates, no caches).
 *
 * Used as the benchmark baseline and as the oracle in differential tests: the compiled
 * engine must match exactly the same rules as this interpreter on every event.
 */
import { expandPattern, type Cond } from './condition.js';
import { testFieldValue, testKeyword } from './engine.js';
import { FieldMapping, makeGetter } from './mapping.js';
import type { ParsedFilter, ParsedRule, SelNode } from './parser.js';
import type { SigmaEvent, VigilCategory } from './types.js';

export class NaiveEvaluator {
  private readonly rules: { rule: ParsedRule; cats: VigilCategory[]; filters: ParsedFilter[] }[] = [];
  private readonly getters = new Map<string, (ev: SigmaEvent) => unknown>();
  /** `x of pattern` expansions, computed once per condition node */
  private readonly ofCache = new Map<Cond, string[]>();

  constructor(
    rules: ParsedRule[],
    private readonly mapping: FieldMapping = new FieldMapping(),
    filters: ParsedFilter[] = [],
  ) {
    for (const rule of rules) {
      const route = mapping.route(rule.logsource);
      if ('reason' in route) continue;
      this.rules.push({
        rule,
        cats: route.categories,
        filters: filters.filter((f) => f.rules.includes(rule.id) || (rule.name !== undefined && f.rules.includes(rule.name))),
      });
    }
  }

  private get(ev: SigmaEvent, cat: VigilCategory, field: string): unknown {
    const path = this.mapping.field(cat, field);
    let g = this.getters.get(path);
    if (!g) this.getters.set(path, (g = makeGetter(path)));
    return g(ev);
  }

  private sel(n: SelNode, ev: SigmaEvent, cat: VigilCategory): boolean {
    if (n.t !== 'leaf') return n.t === 'and' ? n.items.every((x) => this.sel(x, ev, cat)) : n.items.some((x) => this.sel(x, ev, cat));
    const getField = (f: string): unknown => this.get(ev, cat, f);
    let r: boolean;
    if (n.field === null) {
      const t = (p: (typeof n.preds)[number]): boolean => testKeyword(p, ev, getField);
      r = n.all ? n.preds.every(t) : n.preds.some(t);
    } else {
      const v = this.get(ev, cat, n.field);
      const t = (p: (typeof n.preds)[number]): boolean => testFieldValue(p, v, undefined, getField);
      r = n.all ? n.preds.every(t) : n.preds.some(t);
    }
    return n.neg ? !r : r;
  }

  private cond(c: Cond, sels: Map<string, SelNode>, ev: SigmaEvent, cat: VigilCategory): boolean {
    switch (c.t) {
      case 'id':
        return this.sel(sels.get(c.name)!, ev, cat);
      case 'not':
        return !this.cond(c.item, sels, ev, cat);
      case 'and':
        return c.items.every((x) => this.cond(x, sels, ev, cat));
      case 'or':
        return c.items.some((x) => this.cond(x, sels, ev, cat));
      case 'of': {
        let names = this.ofCache.get(c);
        if (!names) this.ofCache.set(c, (names = expandPattern(c.pattern, [...sels.keys()])));
        const k = names.filter((n) => this.sel(sels.get(n)!, ev, cat)).length;
        return c.n === 'all' ? k === names.length : k >= c.n;
      }
    }
  }

  /** Ids of the rules matching `ev`, in load order. */
  evaluate(ev: SigmaEvent): string[] {
    const out: string[] = [];
    for (const { rule, cats, filters } of this.rules) {
      const cat = ev.category as VigilCategory;
      if (!cats.includes(cat)) continue;
      if (!this.cond(rule.detection.condition, rule.detection.selections, ev, cat)) continue;
      if (filters.some((f) => this.cond(f.detection.condition, f.detection.selections, ev, cat))) continue;
      out.push(rule.id);
    }
    return out;
  }
}
