/**
 * vigil's Sigma detection engine: public API.
 *
 *   const det = createDetector({ ruleDirs: ['/etc/vigil/rules'], watch: true,
 *                                onAlert: (a) => sinks.write(a) });
 *   for each event: det.evaluate(event);   // synchronous, never throws
 *   det.close();
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { FieldMapping } from './mapping.js';
import { RuleSet, type RuleSetOptions } from './ruleset.js';
import { RuleStore, type ReloadInfo } from './store.js';
import type { RuleLimits } from './limits.js';
import type { Alert, RuleError, SigmaEvent } from './types.js';

export type { Alert, CorrelationInfo, InactiveRule, LogSource, RuleError, SigmaEvent, VigilCategory } from './types.js';
export { VIGIL_CATEGORIES } from './types.js';
export { RuleSet, listRuleFiles, type RuleSetOptions, type RuleSummary } from './ruleset.js';
export { RuleStore, treeStamp, type ReloadInfo, type RuleStoreOptions } from './store.js';
export { RULE_LIMITS, type RuleLimits } from './limits.js';
export { walkRules, scanRules } from './scan.js';
export { FieldMapping, KNOWN_FIELDS, type FieldMappingConfig } from './mapping.js';
export { NaiveEvaluator } from './naive.js';
export { parseRuleFile, type ParsedDoc, type ParsedRule, type ParsedCorrelation, type ParsedFilter, type ParseResult } from './parser.js';

/** Load placeholder values for the `expand` modifier: a YAML/JSON map name → list of strings. */
export function loadPlaceholders(path: string): Record<string, string[]> {
  const raw: unknown = parseYaml(readFileSync(path, 'utf8'));
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${path}: placeholders must be a mapping of name → list of values`);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const list = Array.isArray(v) ? v : [v];
    out[k] = list.map((x) => String(x));
  }
  return out;
}

export interface DetectorOptions {
  /** rule directories (or files), loaded recursively (*.yml, *.yaml) */
  ruleDirs: string[];
  /** field-mapping file (YAML/JSON), see docs/detection.md */
  fieldMapping?: string | FieldMapping;
  /** placeholder values for `|expand`, or a YAML/JSON file holding them */
  placeholders?: Record<string, string[]> | string;
  /** watch the directories and reload on change (default false) */
  watch?: boolean;
  debounceMs?: number;
  /** periodic re-scan while watching, ms (default 30,000; 0 = off) */
  rescanMs?: number;
  /** input limits (docs/detection.md, "Limits") */
  limits?: Partial<RuleLimits>;
  /** read and parse reloads in a worker thread when its compiled form exists (default true) */
  worker?: boolean;
  /** the compiled worker script (default: rule-worker.js next to the compiled module) */
  workerPath?: string;
  onAlert?: (alert: Alert) => void;
  /** load errors (at start and on every reload) and warnings */
  onError?: (err: RuleError) => void;
  onReload?: (info: ReloadInfo) => void;
}

export interface Detector {
  /** Evaluate one event; calls onAlert for each alert and returns them. Never throws. */
  evaluate(event: SigmaEvent): Alert[];
  /** the rule set currently in force (replaced on reload) */
  readonly ruleSet: RuleSet;
  readonly store: RuleStore;
  stats(): { events: number; alerts: number; evalErrors: number; rules: number; inactive: number; errors: number };
  close(): void;
}

export function createDetector(opts: DetectorOptions): Detector {
  const mapping = opts.fieldMapping instanceof FieldMapping ? opts.fieldMapping : opts.fieldMapping ? FieldMapping.load(opts.fieldMapping) : new FieldMapping();
  const placeholders = typeof opts.placeholders === 'string' ? loadPlaceholders(opts.placeholders) : (opts.placeholders ?? {});
  const rsOpts: RuleSetOptions = { mapping, placeholders, ...(opts.limits ? { limits: opts.limits } : {}) };
  const store = new RuleStore({ ...rsOpts, dirs: opts.ruleDirs, debounceMs: opts.debounceMs ?? 150, ...(opts.rescanMs !== undefined ? { rescanMs: opts.rescanMs } : {}), ...(opts.worker !== undefined ? { worker: opts.worker } : {}), ...(opts.workerPath ? { workerPath: opts.workerPath } : {}) });
  const report = (rs: RuleSet): void => {
    if (!opts.onError) return;
    for (const e of [...rs.errors, ...rs.warnings]) opts.onError(e);
  };
  report(store.current);
  store.on('reload', (info: ReloadInfo) => {
    if (opts.onError) for (const e of info.errors) opts.onError(e);
    opts.onReload?.(info);
  });
  store.on('error', (e: Error) => opts.onError?.({ path: opts.ruleDirs.join(','), line: 0, col: 0, severity: 'error', message: `watch: ${e.message}` }));
  if (opts.watch) store.watch();
  let events = 0;
  let alerts = 0;
  let evalErrors = 0;
  const onAlert = opts.onAlert;
  return {
    evaluate(event: SigmaEvent): Alert[] {
      events++;
      const out = store.current.evaluate(event);
      if (out.length) {
        alerts += out.length;
        if (onAlert)
          for (const a of out) {
            try {
              onAlert(a);
            } catch {
              evalErrors++;
            }
          }
      }
      return out;
    },
    get ruleSet() {
      return store.current;
    },
    store,
    stats() {
      const rs = store.current;
      return { events, alerts, evalErrors: evalErrors + rs.stats.evalErrors, rules: rs.activeCount, inactive: rs.inactive.length, errors: rs.errors.length };
    },
    close() {
      store.close();
    },
  };
}
