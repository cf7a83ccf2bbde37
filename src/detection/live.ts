/**
 * Glue between the agent and the Sigma engine for `vigil run --rules`: rule
 * load errors and reloads go to the log, alerts come back from evaluate().
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Detector, RuleHealth } from '../events/detector.js';
import { createDetector } from './index.js';

/** The rule paths that do not exist (`vigil run` refuses them rather than run with no rules). */
export function missingRulePaths(paths: string[]): string[] {
  return paths.filter((p) => !existsSync(p));
}

/** Upper bounds (seconds) of the rule evaluation time histogram, and its sampling (a power of two). */
export const EVAL_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1] as const;
export const EVAL_SAMPLE = 8;

export interface RunDetectorOptions {
  ruleDirs: string[];
  fieldMapping: string | null;
  log: Logger;
}

export async function createRunDetector(opts: RunDetectorOptions): Promise<Detector> {
  const { log } = opts;
  const det = createDetector({
    ruleDirs: opts.ruleDirs,
    ...(opts.fieldMapping ? { fieldMapping: opts.fieldMapping } : {}),
    watch: true,
    onError: (e) => (e.severity === 'error' ? log.error : log.warn).call(log, { rule_file: e.path, line: e.line, col: e.col }, `rule ${e.path}:${e.line}:${e.col}: ${e.message}`),
    onReload: (info) => log.info({ reload: info }, 'rules reloaded'),
  });
  const rs = det.ruleSet;
  const badFiles = new Set(rs.errors.map((e) => e.path)).size;
  log.info(
    { rules: rs.activeCount, inactive: rs.inactive.length, errors: rs.errors.length, files_with_errors: badFiles, scans: det.store.threaded ? 'worker thread' : 'main thread' },
    `Sigma rules loaded: ${rs.activeCount} active, ${rs.inactive.length} without a vigil event source, ${badFiles} file(s) with errors (${rs.errors.length} error(s))`,
  );
  // evaluation time, sampled (one in SAMPLE): two clock reads per event would cost more than the metric is worth
  const counts = new Array<number>(EVAL_BUCKETS.length + 1).fill(0);
  let n = 0;
  let sum = 0;
  let count = 0;
  return {
    evaluate: (ev) => {
      if ((++n & (EVAL_SAMPLE - 1)) !== 0) return det.evaluate(ev as never) as unknown as Array<Record<string, unknown>>;
      const t0 = performance.now();
      const out = det.evaluate(ev as never) as unknown as Array<Record<string, unknown>>;
      const s = (performance.now() - t0) / 1000;
      let i = 0;
      while (i < EVAL_BUCKETS.length && s > EVAL_BUCKETS[i]!) i++;
      counts[i]!++;
      sum += s;
      count++;
      return out;
    },
    close: () => det.close(),
    stats: () => det.stats(),
    evalTimes: () => ({ buckets: EVAL_BUCKETS, counts: [...counts], sum, count, sampleEvery: EVAL_SAMPLE }),
    health: (): RuleHealth => {
      const rs = det.ruleSet;
      const byFile = new Map<string, RuleHealth['files_with_errors'][number]['errors']>();
      for (const e of [...rs.errors, ...rs.warnings]) {
        const list = byFile.get(e.path) ?? [];
        list.push({ line: e.line, col: e.col, severity: e.severity, message: e.message });
        byFile.set(e.path, list);
      }
      return {
        active: rs.activeCount,
        rules: rs.rules.filter((r) => r.active).map((r) => ({ id: r.id, title: r.title, level: String(r.level ?? ''), path: r.path })),
        inactive: rs.inactive.map((r) => ({ id: r.rule_id, title: r.title, path: r.path, reason: r.reason })),
        files_with_errors: [...byFile].map(([path, errors]) => ({ path, errors })),
      };
    },
  };
}
