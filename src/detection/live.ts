/**
 * Glue between the agent and the Sigma engine for `vigil run --rules`: rule
 * load errors and reloads go to the log, alerts come back from evaluate().
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Detector } from '../events/detector.js';
import { createDetector } from './index.js';

/** The rule paths that do not exist (`vigil run` refuses them rather than run with no rules). */
export function missingRulePaths(paths: string[]): string[] {
  return paths.filter((p) => !existsSync(p));
}

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
  return {
    evaluate: (ev) => det.evaluate(ev as never) as unknown as Array<Record<string, unknown>>,
    close: () => det.close(),
    stats: () => det.stats(),
  };
}
