/**
 * Limits on rule input (docs/detection.md, "Limits"). Anything over a limit is refused
 * with an error naming the file (and line:col where there is one) before it can use
 * unbounded memory or time.
 */
export interface RuleLimits {
  /** bytes of one rule file; larger files are refused without being read */
  maxFileBytes: number;
  /** characters of one scalar value in a rule (a string, a regex, a field name) */
  maxValueChars: number;
  /** rule documents (rules, correlations, filters) loaded in total */
  maxRules: number;
  /** bytes of all rule files together */
  maxTotalBytes: number;
}

export const RULE_LIMITS: Readonly<RuleLimits> = Object.freeze({
  maxFileBytes: 4 * 1024 * 1024,
  maxValueChars: 64 * 1024,
  maxRules: 20_000,
  maxTotalBytes: 32 * 1024 * 1024,
});

export function ruleLimits(over?: Partial<RuleLimits>): RuleLimits {
  return { ...RULE_LIMITS, ...over };
}

const n = (x: number): string => x.toLocaleString('en-US');

/** "4 MiB" for whole MiB, else a grouped byte count. */
export function bytes(x: number): string {
  return x % (1024 * 1024) === 0 ? `${x / (1024 * 1024)} MiB` : `${n(x)} bytes`;
}

export const limitMessages = {
  file: (size: number, l: RuleLimits): string => `file is ${n(size)} bytes, larger than the limit of ${bytes(l.maxFileBytes)} per rule file; not loaded`,
  value: (what: string, len: number, l: RuleLimits): string => `${what} is ${n(len)} characters, larger than the limit of ${n(l.maxValueChars)}`,
  total: (size: number, l: RuleLimits): string =>
    `total size of rule files would exceed the limit of ${bytes(l.maxTotalBytes)} with this file (${n(size)} bytes); not loaded`,
  rules: (loaded: number, dropped: number): string =>
    `rule count limit: ${n(loaded)} rules loaded, this one ${dropped > 1 ? `and ${n(dropped - 1)} more in this file are` : 'is'} not loaded`,
};
