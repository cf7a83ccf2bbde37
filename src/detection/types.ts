/**
 * Shared types of the Sigma detection engine.
 */

/** A problem found while loading a rule file. `line`/`col` are 1-based. */
export interface RuleError {
  path: string;
  line: number;
  col: number;
  message: string;
  /** 'error' refuses the rule (or file); 'warning' loads it anyway. */
  severity: 'error' | 'warning';
  rule_id?: string;
}

/** A rule that loaded fine but has no vigil event source (e.g. `service: auditd`). */
export interface InactiveRule {
  path: string;
  rule_id: string;
  title: string;
  reason: string;
}

export interface CorrelationInfo {
  type: string;
  /** group-by field values of the group that fired */
  group: Record<string, unknown>;
  /** number of events (event_count), distinct values (value_count), rules seen (temporal*) */
  count: number;
  /** ids of the rules whose matches made the correlation fire */
  rules: string[];
  first_timestamp: string;
  last_timestamp: string;
}

/** One rule firing on one event (or one correlation firing on a group of events). */
export interface Alert {
  rule_id: string;
  rule_title: string;
  level: string;
  tags: string[];
  status?: string;
  description?: string;
  /** names of the detection identifiers (selections) that were true for this event */
  matched: string[];
  /** the event that made the rule fire (for a correlation: the last event) */
  event: Record<string, unknown>;
  rule_path: string;
  /** the event's timestamp (ISO-8601), or the time of evaluation when the event has none (then `untimed`) */
  timestamp: string;
  /** the event had no valid timestamp: `timestamp` is the time of evaluation, and no correlation counted the event */
  untimed?: true;
  /**
   * fields the rule reads that the sensor cut short (from the event's vigil.truncated): the
   * match may depend on where the value was cut (endswith, `$`, a missing tail)
   */
  truncated?: string[];
  correlation?: CorrelationInfo;
}

export type SigmaEvent = Record<string, unknown>;

export interface LogSource {
  product?: string;
  category?: string;
  service?: string;
}

/** vigil event categories the engine can route rules to. */
export const VIGIL_CATEGORIES = [
  'process_creation',
  'process_termination',
  'file_event',
  'network_connection',
  'dns_query',
] as const;
export type VigilCategory = (typeof VIGIL_CATEGORIES)[number];

/** Raised internally while compiling a rule; carries the position of the offending node. */
export class RuleSyntaxError extends Error {
  constructor(
    message: string,
    public readonly offset: number,
  ) {
    super(message);
  }
}
