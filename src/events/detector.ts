/**
 * What the pipeline needs of a detector (src/detection implements it): defined
 * here, below both, so detection does not import the agent.
 */
export interface Detector {
  /** alerts for one event; must not throw */
  evaluate(event: Record<string, unknown>): Array<Record<string, unknown>>;
  close?(): void | Promise<void>;
  stats?(): Record<string, number>;
  /** the rule set in force: active rules, rules without an event source, errors by file (the local API's /api/rules) */
  health?(): RuleHealth;
  /** sampled evaluation times (one evaluation in `sampleEvery`), as histogram buckets in seconds */
  evalTimes?(): EvalTimes;
}

export interface RuleHealth {
  active: number;
  rules: Array<{ id: string; title: string; level: string; path: string }>;
  inactive: Array<{ id: string; title: string; path: string; reason: string }>;
  files_with_errors: Array<{ path: string; errors: Array<{ line: number; col: number; severity: string; message: string }> }>;
}

export interface EvalTimes {
  /** upper bounds, seconds, ascending */
  buckets: readonly number[];
  /** observations per bucket (not cumulative); one more slot for +Inf */
  counts: readonly number[];
  sum: number;
  count: number;
  sampleEvery: number;
}
