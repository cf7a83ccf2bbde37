/**
 * `vigil rules`: lint, test and list Sigma rules.
 *
 * Exit codes: 0 ok; 1 findings (rule errors, unreadable events); 2 usage errors;
 * 4 input errors (a rule path or events file that does not exist).
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, type CommanderError } from 'commander';
import { FieldMapping, loadPlaceholders, RuleSet, type Alert, type RuleError, type RuleSetOptions } from '../../detection/index.js';
import { InputError, UsageError as CliUsageError, shown } from '../errors.js';
import { safeText } from '../../util/text.js';
import { arg, opt } from '../options.js';
import { resolveSettings } from '../../config/resolve.js';
import { AgentConfigSchema } from '../../agent/config.js';

/** The rules of the one configuration (config file, $VIGIL_RULES), else /etc/vigil/rules. */
function configuredRules(): string[] {
  const r = resolveSettings({}, AgentConfigSchema).config.rules;
  return r.length ? r : [DEFAULT_RULES_DIR];
}

export const DEFAULT_RULES_DIR = process.env.VIGIL_RULES ?? '/etc/vigil/rules';

interface CommonOpts {
  json?: boolean;
  fieldMapping?: string;
  placeholders?: string;
}

class UsageError extends Error {}

function ruleSetOptions(o: CommonOpts): RuleSetOptions {
  const opts: RuleSetOptions = {};
  try {
    if (o.fieldMapping) opts.mapping = FieldMapping.load(o.fieldMapping);
    if (o.placeholders) opts.placeholders = loadPlaceholders(o.placeholders);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return opts;
}

/** Every path must exist: a missing rule path is an input error (exit 4), never an empty rule set. */
function requirePaths(paths: string[], subject: string, hint?: string): void {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length) throw new InputError('input.not_found', `${subject} ${missing.map((m) => shown(m)).join(', ')}`, 'no such file or directory', hint ? { hint } : {});
}

/** Files with at least one error (their rules, or some of them, are refused). */
function filesWithErrors(errors: RuleError[]): number {
  return new Set(errors.map((e) => e.path)).size;
}

function fmt(e: RuleError): string {
  const where = e.line ? `${e.path}:${e.line}:${e.col}` : e.path;
  return `${where}: ${e.severity}: ${e.message}`;
}

function out(s: string): void {
  process.stdout.write(s + '\n');
}
/** A line for a person: rule titles, paths and messages come from files, their control characters escaped. */
function say(s: string): void {
  out(safeText(s));
}
function err(s: string): void {
  process.stderr.write(safeText(s) + '\n');
}

/** `vigil rules lint PATH...` → exit code */
export function lintCommand(paths: string[], o: CommonOpts & { verbose?: boolean; strict?: boolean }): number {
  requirePaths(paths, 'PATH');
  const rs = RuleSet.fromPaths(paths, ruleSetOptions(o));
  const refused = filesWithErrors(rs.errors);
  const files = new Set(rs.rules.map((r) => r.path));
  for (const e of [...rs.errors, ...rs.warnings]) files.add(e.path);
  if (o.json) {
    out(
      JSON.stringify({
        ok: rs.errors.length === 0 && (!o.strict || rs.warnings.length === 0),
        files: files.size,
        rules: rs.rules.length,
        active: rs.activeCount,
        files_with_errors: refused,
        errors: rs.errors,
        warnings: rs.warnings,
        inactive: rs.inactive,
      }),
    );
  } else {
    for (const e of rs.errors) say(fmt(e));
    for (const w of rs.warnings) say(fmt(w));
    if (o.verbose) for (const i of rs.inactive) say(`${i.path}: info: '${i.title}' (${i.rule_id}) is inactive: ${i.reason}`);
    err(
      `${files.size} file(s), ${rs.rules.length} rule(s): ${rs.activeCount} active, ${rs.inactive.length} inactive (no vigil event source${o.verbose ? '' : '; --verbose lists them'}), ${refused} file(s) with errors (${rs.errors.length} error(s)), ${rs.warnings.length} warning(s)`,
    );
  }
  if (rs.errors.length) return 1;
  if (o.strict && rs.warnings.length) return 1;
  return 0;
}

/** `vigil rules test --rules PATH... --events FILE` → exit code */
export async function testCommand(o: CommonOpts & { rules: string[]; events: string }): Promise<number> {
  requirePaths(o.rules, '--rules');
  requirePaths([o.events], '--events');
  const rs = RuleSet.fromPaths(o.rules, ruleSetOptions(o));
  for (const e of rs.errors) err(fmt(e));
  const rl = createInterface({ input: createReadStream(o.events, 'utf8'), crlfDelay: Infinity });
  // line numbers, and event_index, count from 1 (blank lines count)
  let index = 0;
  let events = 0;
  let bad = 0;
  let untimed = 0;
  let alerts = 0;
  const fired = new Map<string, number>();
  for await (const line of rl) {
    index++;
    if (!line.trim()) continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch (e) {
      bad++;
      err(`${o.events}:${index}: invalid JSON: ${(e as Error).message}`);
      continue;
    }
    if (!ev || typeof ev !== 'object' || Array.isArray(ev)) {
      bad++;
      err(`${o.events}:${index}: not a JSON object`);
      continue;
    }
    events++;
    const before = rs.stats.untimed;
    const res: Alert[] = rs.evaluate(ev as Record<string, unknown>);
    if (rs.stats.untimed > before) {
      untimed++;
      err(`${o.events}:${index}: event has no valid timestamp; not counted by correlation(s) ${rs.stats.lastUntimed.join(', ')}`);
    }
    for (const a of res) {
      alerts++;
      fired.set(a.rule_id, (fired.get(a.rule_id) ?? 0) + 1);
      if (o.json) {
        const rec: Record<string, unknown> = {
          rule_id: a.rule_id,
          rule_title: a.rule_title,
          level: a.level,
          event_index: index,
          matched: a.matched,
          ...(a.untimed ? { untimed: true } : {}),
          ...(a.truncated ? { truncated: a.truncated } : {}),
          tags: a.tags,
          rule_path: a.rule_path,
          timestamp: a.timestamp,
        };
        if (a.correlation) rec.correlation = a.correlation;
        out(JSON.stringify(rec));
      } else {
        say(`event ${index}: [${a.level}] ${a.rule_title} (${a.rule_id})${a.matched.length ? ` matched: ${a.matched.join(', ')}` : ''}${a.correlation ? ` correlation: ${a.correlation.type} count=${a.correlation.count}` : ''}`);
      }
    }
  }
  err(
    `${events} event(s) replayed, ${alerts} alert(s) from ${fired.size} rule(s); ${rs.activeCount} active rule(s), ${rs.inactive.length} inactive, ${rs.errors.length} rule error(s)${bad ? `, ${bad} unreadable event line(s)` : ''}${untimed ? `, ${untimed} event(s) without a valid timestamp (not counted by correlations)` : ''}${rs.stats.evalErrors ? `, ${rs.stats.evalErrors} evaluation error(s) (${rs.stats.lastError})` : ''}`,
  );
  if (!o.json && fired.size) {
    for (const [id, n] of [...fired].sort((a, b) => b[1] - a[1])) {
      const r = rs.rules.find((x) => x.id === id);
      err(`  ${String(n).padStart(6)}  ${r?.title ?? id}`);
    }
  }
  return rs.errors.length || bad || untimed ? 1 : 0;
}

/** `vigil rules list` → exit code */
export function listCommand(o: CommonOpts & { rules: string[]; inactive?: boolean; defaulted?: boolean }): number {
  requirePaths(o.rules, o.defaulted ? 'rules directory' : '--rules', o.defaulted ? 'give --rules DIR or set $VIGIL_RULES' : undefined);
  const rs = RuleSet.fromPaths(o.rules, ruleSetOptions(o));
  const rows = rs.rules.filter((r) => o.inactive || r.active);
  if (o.json) out(JSON.stringify(rows));
  else {
    for (const r of rows) {
      const where = r.kind === 'rule' ? (r.active ? r.categories.join(',') : 'inactive') : r.kind;
      say(`${r.level.padEnd(13)} ${where.padEnd(20)} ${r.id.padEnd(38)} ${r.title}`);
    }
    err(`${rows.length} rule(s) listed (${rs.activeCount} active, ${rs.inactive.length} inactive${o.inactive ? '' : '; --inactive shows them'}), ${rs.errors.length} error(s)`);
  }
  for (const e of rs.errors) err(fmt(e));
  return rs.errors.length ? 1 : 0;
}

async function run(fn: () => number | Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (e) {
    // printed like every other error (src/cli/errors.ts)
    if (e instanceof UsageError) throw new CliUsageError(undefined, e.message);
    throw e;
  }
}

export function register(program: Command): void {
  const rules = program
    .command('rules')
    .description('lint, test and list Sigma detection rules')
    .addHelpText(
      'after',
      `
Examples:
  vigil rules lint /etc/vigil/rules              check every rule file (exit 1 on errors)
  vigil rules test --rules ./rules --events ev.jsonl --json
                                                 replay recorded events, one JSON line per match
  vigil rules list --rules ./rules --inactive    show rules and why some cannot run

See docs/detection.md for the supported Sigma features.`,
    );
  rules.exitOverride((e: CommanderError) => {
    const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version' || e.exitCode === 0;
    process.exit(ok ? 0 : 2);
  });
  const common = (c: Command): Command =>
    c
      .option('--json', 'machine-readable output')
      .addOption(opt('--field-mapping <file>', 'YAML/JSON file mapping Sigma field names to vigil event fields', 'file'))
      .addOption(opt('--placeholders <file>', 'YAML/JSON map of placeholder name to values for the |expand modifier', 'file'));

  common(
    rules
      .command('lint')
      .description('check Sigma rule files or directories; prints path:line:col: severity: message')
      .addArgument(arg('<path...>', 'rule files or directories (searched recursively for *.yml / *.yaml)', 'rules-path'))
      .option('-v, --verbose', 'also list rules that are inactive (no vigil event source)')
      .option('--strict', 'treat warnings as errors'),
  )
    .addHelpText(
      'after',
      `
Exit status: 0 when every rule loads, 1 when any file has errors, 2 on usage errors,
4 when a PATH does not exist.

Examples:
  vigil rules lint rules/
  vigil rules lint --json rules/linux/process_creation/*.yml`,
    )
    .action((paths: string[], o: CommonOpts & { verbose?: boolean; strict?: boolean }) => run(() => lintCommand(paths, o)));

  common(
    rules
      .command('test')
      .description('replay recorded events (JSONL) through rules and report every match')
      .addOption(opt('--rules <path>', 'rule file or directory (repeatable)', 'rules-path', { repeat: true }).makeOptionMandatory())
      .addOption(opt('--events <file>', 'events, one JSON object per line (as written by vigil run --events-out)', 'file').makeOptionMandatory()),
  )
    .addHelpText(
      'after',
      `
With --json, stdout has one object per match:
  {"rule_id", "rule_title", "level", "event_index" (line number in FILE, from 1), "matched", "tags", ...}
and a summary goes to stderr. Unreadable lines are reported as FILE:LINE (from 1, the same numbers).
An event without a valid timestamp that a correlation would count is reported (FILE:LINE) and
not counted: a correlation window needs the event's time.
Exit status: 0 ok, 1 when rules have errors, event lines are unreadable or lack the timestamp
a correlation needs, 2 on usage errors, 4 when a rule path or the events file does not exist.

Example:
  vigil rules test --rules rules/ --events recorded.jsonl --json | jq .rule_title`,
    )
    .action((o: CommonOpts & { rules: string[]; events: string }) => run(() => testCommand(o)));

  common(
    rules
      .command('list')
      .description('list loaded rules (id, level, category, title)')
      .addOption(opt('--rules <path>', 'rule file or directory (repeatable; default: the configured rules, $VIGIL_RULES, or /etc/vigil/rules)', 'rules-path', { repeat: true }))
      .option('--inactive', 'include rules without a vigil event source'),
  )
    .addHelpText('after', `\nDefault rules directory: $VIGIL_RULES or ${DEFAULT_RULES_DIR}\n`)
    .action((o: CommonOpts & { rules?: string[]; inactive?: boolean }) => run(() => listCommand({ ...o, rules: o.rules ?? configuredRules(), defaulted: !o.rules })));
}
