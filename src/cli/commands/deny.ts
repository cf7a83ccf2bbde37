import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { InputError, UnavailableError, UsageError, VigilError, bpfRefusal, fromSqliteError, shown } from '../errors.js';
import { applyRecordGroup } from '../record-files.js';
import { arg, needsKernel, opt, parseCount } from '../options.js';
import {
  memfdLimit, DEFAULT_PIN_DIR, DecisionReader, ExecGuard, HASH_NEEDS, RulesStore, applyRules, decisionEvent, liveFanotifyAgent, makeRule, notifyAgent,
  type BackendRecord, type DenyRule, type ExecGuardEvent, type Mode,
} from '../../enforcement/index.js';
import { BpfError } from '../../kernel/errors.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { DEFAULT_DB, resolveSettings } from '../../config/resolve.js';
import { safeText } from '../../util/text.js';

interface CommonFlags {
  config?: string;
  db?: string;
  pinDir: string;
  verbose?: boolean;
}

const MODES = ['enforce', 'monitor'] as const;

/** The rule store: --db, else $VIGIL_DB, else the config's db, else the default (one configuration for every command). */
function storeOf(flags: CommonFlags): { db: string; subject: string; explicit: boolean } {
  const { config, source } = resolveSettings({ configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }] }, AgentConfigSchema);
  applyRecordGroup(config.files.group, source('files.group'));
  const from = source('db');
  if (!config.db) throw new InputError('config.no_store', `db (${from})`, 'the store is off (db: null): deny rules live in it', { hint: 'give --db FILE' });
  const subject = from.startsWith('-') || from.startsWith('$') ? `${from} ${shown(config.db, 200)}` : `db ${shown(config.db, 200)} (${from})`;
  return { db: config.db, subject, explicit: from !== 'default' };
}

function openStore(s: { db: string; subject: string }, opts: { readonly?: boolean } = {}): RulesStore {
  try {
    return RulesStore.open(s.db, opts);
  } catch (e) {
    throw fromSqliteError(e as { code?: string; message: string }, s.subject) ?? e;
  }
}

function describe(r: DenyRule): string {
  const what = r.kind === 'sha256' ? `sha256:${r.sha256}${r.path ? ` (${safeText(r.path)})` : ''}` : safeText(r.path ?? '');
  return `${String(r.id).padStart(4)}  ${r.mode.padEnd(7)}  ${r.kind.padEnd(6)}  ${what}${r.comment ? `  # ${safeText(r.comment)}` : ''}`;
}

/** Whether stored rules are enforced here: armed, stored only, or the guard cannot load on this host (and why). */
export interface EnforcementStatus {
  state: 'enforced' | 'stored-only' | 'cannot-load';
  /** what enforces: lsm (pinned BPF LSM guard), fanotify (a running agent), detect-only (nothing) */
  backend: 'lsm' | 'fanotify' | 'detect-only';
  /** fanotify: the agent that answers */
  pid?: number;
  reason?: string;
  /** routes around a rule this backend does not check (fanotify: memfds) */
  limits?: string[];
}

function lsmHasBpf(): boolean | undefined {
  try {
    return readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').includes('bpf');
  } catch {
    return undefined;
  }
}

export function enforcementStatus(pinDir: string, store: RulesStore | null): EnforcementStatus {
  if (ExecGuard.isArmed(pinDir)) return { state: 'enforced', backend: 'lsm' };
  const fan = store ? liveFanotifyAgent(store) : null;
  if (fan) return { state: 'enforced', backend: 'fanotify', pid: fan.pid, ...(fan.reason ? { reason: fan.reason } : {}), limits: [memfdLimit()] };
  if (lsmHasBpf() === false) return { state: 'cannot-load', backend: 'detect-only', reason: 'bpf is not in the active LSM list (/sys/kernel/security/lsm; boot with lsm=...,bpf)' };
  const f = store?.armFailure();
  if (f) return { state: 'cannot-load', backend: 'detect-only', reason: `${f.reason} (when \`${f.by}\` tried, ${new Date(f.atMs).toISOString()})` };
  return { state: 'stored-only', backend: 'detect-only' };
}

export function statusLine(s: EnforcementStatus, pinDir: string): string {
  switch (s.state) {
    case 'enforced':
      return s.backend === 'fanotify'
        ? `enforcement: rules are enforced (fanotify backend, answered by the agent pid ${s.pid} while it runs)${(s.limits ?? []).map((l) => `\nenforcement: not covered by the fanotify backend: ${l}`).join('')}`
        : `enforcement: rules are enforced (exec guard armed, pinned in ${pinDir})`;
    case 'stored-only':
      return 'enforcement: rules are stored only, the exec guard is not armed (`vigil deny apply` or `vigil run` arms it)';
    case 'cannot-load':
      return `enforcement: rules are stored only, the exec guard cannot load on this host: ${s.reason}`;
  }
}

/** A BPF refusal in one line: the operation, the errno, the verifier's last word, what to do. */
function refusal(e: BpfError): string {
  let hint = e.hint;
  // bpf is in the LSM list and the LSM program is still refused: not what the generic hint says
  if (/lsm/i.test(e.op) && (e.code === 'EPERM' || e.code === 'EACCES') && lsmHasBpf()) {
    hint = 'bpf is in the active LSM list, but this kernel refuses BPF LSM programs (no BPF trampolines here: a hypervisor or sandbox, or a kernel without them); `vigil doctor` tells which';
  }
  return `${bpfRefusal(e)}${hint ? `: ${hint}` : ''}`;
}

/**
 * Load the stored rules into the kernel (arming the guard when `arm`). A host
 * that cannot load the guard is remembered in the store (deny list says so).
 */
function apply(s: { db: string; subject: string }, flags: CommonFlags, arm: boolean, by: string): string {
  // a running agent enforces with fanotify: it reloads the rules now (SIGUSR2), nothing to arm
  if (!ExecGuard.isArmed(flags.pinDir) && existsSync(s.db)) {
    const store = openStore(s, { readonly: true });
    let fan: BackendRecord | null;
    let status: EnforcementStatus;
    try {
      fan = liveFanotifyAgent(store);
      status = enforcementStatus(flags.pinDir, store);
    } finally {
      store.close();
    }
    // signalled once this process has closed the store: the agent reads it at once
    if (fan && notifyAgent(fan)) return `applied by the running agent (pid ${fan.pid}, fanotify backend)\n${statusLine(status, flags.pinDir)}`;
  }
  let res: ReturnType<typeof applyRules>;
  try {
    res = applyRules({ db: s.db, pinDir: flags.pinDir }, { arm });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const store = openStore(s);
    try {
      store.setArmFailure({ reason: refusal(e), by });
    } finally {
      store.close();
    }
    throw new UnavailableError(/lsm/i.test(e.op) ? 'unavailable.bpf_lsm' : 'unavailable.bpf', `the exec guard cannot load here: ${refusal(e)}`, { cause: e });
  }
  const store = openStore(s);
  let status: EnforcementStatus;
  try {
    if (res) store.setArmFailure(null);
    status = enforcementStatus(flags.pinDir, store);
  } finally {
    store.close();
  }
  if (!res) return statusLine(status, flags.pinDir);
  const r = res.result;
  const notes = [
    res.armedNow ? `exec guard armed (pinned in ${flags.pinDir})` : 'applied to the armed exec guard',
    `kernel entries: ${r.inode} inode, ${r.path} path, ${r.hash} sha256`,
  ];
  if (r.hash > 0 && !res.hashProgram) {
    notes.push(`warning: sha256 rules match only the files they were added with (by inode), not copies: ${res.hashUnavailable ?? `${HASH_NEEDS}, which this kernel refused when the guard was armed`}`);
  }
  if (r.unresolved.length) notes.push(`note: rules ${r.unresolved.join(', ')}: file not present now (matched by path when it appears)`);
  if (r.tooLong.length) notes.push(`note: rules ${r.tooLong.join(', ')}: path longer than 255 bytes, matched by inode only`);
  notes.push(statusLine(status, flags.pinDir));
  return notes.join('\n');
}

function common(cmd: Command): Command {
  return needsKernel(cmd)
    .addOption(opt('-c, --config <file>', 'YAML config: its db is the rule store (default $VIGIL_CONFIG, else /etc/vigil/vigil.yaml when it exists)', 'file'))
    .addOption(opt('--db <file>', `rule store, SQLite (default: $VIGIL_DB, else the config's db, else ${DEFAULT_DB})`, 'database'))
    .addOption(opt('--pin-dir <dir>', 'bpffs directory of the exec guard', 'pin-dir', { default: DEFAULT_PIN_DIR }))
    .option('-v, --verbose', 'when the guard cannot load, print libbpf\'s log (the verifier\'s) with the error');
}

export function register(program: Command): void {
  const deny = program
    .command('deny')
    .description('exec guard: deny executables in the kernel (EPERM from execve) by path, inode or sha256')
    .addHelpText(
      'after',
      `
Examples:
  vigil deny add /usr/bin/nc --comment "no netcat"
  vigil deny add --sha256 3f5a...e1 --mode monitor
  vigil deny add ./miner --sha256          hash ./miner now: copies anywhere are denied
  vigil deny list --json
  vigil deny rm 3
  vigil deny mode monitor                  every rule reports only (would_block)

Rules take effect at once, in a running agent too (the maps are pinned in bpffs),
and stay in force after the agent exits or is killed: \`vigil disarm\` removes them.
Every command says whether the stored rules are enforced, stored only, or cannot
load on this host and why. Adding a rule that is stored already keeps one.
See docs/enforcement.md.`,
    );

  common(deny.command('add').description('add a deny rule (a rule for the same target is kept once) and apply it'))
    .addArgument(arg('[path]', 'executable to deny (by its path and by its inode)', 'exe-path'))
    .addOption(opt('--sha256 [hex]', 'deny by content: this digest, or the digest of PATH computed now', 'sha256'))
    .addOption(opt('--mode <mode>', 'enforce (EPERM) or monitor (allow, report would_block)', 'choice', { choices: MODES, default: 'enforce' }))
    .addOption(opt('--comment <text>', 'why', 'text'))
    .option('--json', 'print the rule as JSON')
    .action(async (path: string | undefined, flags: CommonFlags & { sha256?: string | true; mode: Mode; comment?: string; json?: boolean }) => {
      if (!path && flags.sha256 === undefined) throw new UsageError('PATH', 'give a PATH or --sha256 HEX', { code: 'usage.missing_argument' });
      if (path && typeof flags.sha256 === 'string') throw new UsageError('--sha256', 'give either PATH --sha256 (hash PATH) or --sha256 HEX, not both', { code: 'usage.conflict' });
      let rule;
      try {
        rule = await makeRule({ ...(path ? { path } : {}), ...(flags.sha256 !== undefined ? { sha256: flags.sha256 } : {}), mode: flags.mode, ...(flags.comment ? { comment: flags.comment } : {}) });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EACCES' || err.code === 'ENOENT' || err.code === 'EISDIR') throw new InputError(`input.${err.code === 'EACCES' ? 'permission' : err.code === 'ENOENT' ? 'not_found' : 'is_directory'}`, `PATH ${shown(path ?? '')}`, `cannot hash it: ${err.code}`);
        throw new UsageError(path ? 'PATH' : '--sha256', (e as Error).message);
      }
      const s = storeOf(flags);
      const store = openStore(s);
      let added: ReturnType<RulesStore['addOrKeep']>;
      try {
        added = store.addOrKeep(rule);
      } finally {
        store.close();
      }
      const r = added.rule;
      const head = added.created ? `added rule ${r.id}` : added.changed ? `rule ${r.id} is stored already: updated it (kept one)` : `rule ${r.id} is stored already: kept one`;
      if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${head}\n${describe(r)}\n`);
      try {
        process.stderr.write(`${apply(s, flags, true, 'vigil deny add')}\n`);
      } catch (e) {
        if (e instanceof UnavailableError) throw new UnavailableError(e.code as `unavailable.${string}`, `rule ${r.id} stored, not enforced: ${e.message}`, { cause: e.cause });
        throw e;
      }
    });

  common(deny.command('list').description('list deny rules, and whether they are enforced here'))
    .option('--json', 'one JSON object: {armed, backend, enforcement: {state, backend, pid, reason}, mode, rules}')
    .action((flags: CommonFlags & { json?: boolean }) => {
      const s = storeOf(flags);
      if (s.explicit && !existsSync(s.db)) throw new InputError('input.not_found', s.subject, 'no rule store there', { hint: '`vigil deny add` creates it' });
      const rules: DenyRule[] = [];
      let mode: Mode = 'enforce';
      let status: EnforcementStatus;
      if (existsSync(s.db)) {
        const store = openStore(s, { readonly: true });
        try {
          rules.push(...store.list());
          mode = store.globalMode();
          status = enforcementStatus(flags.pinDir, store);
        } finally {
          store.close();
        }
      } else {
        status = enforcementStatus(flags.pinDir, null);
      }
      const armed = status.state === 'enforced';
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ armed, backend: status.backend, enforcement: status, mode, rules })}\n`);
        return;
      }
      process.stdout.write(`exec guard: ${armed ? 'armed' : 'not armed'} (backend ${status.backend}), global mode ${mode}\n${statusLine(status, flags.pinDir)}\n`);
      if (!rules.length) process.stdout.write('no deny rules\n');
      else process.stdout.write(`  ID  MODE     KIND    TARGET\n${rules.map(describe).join('\n')}\n`);
    });

  common(deny.command('rm').description('remove a deny rule (lifted at once)'))
    .addArgument(arg('<id>', 'rule id (vigil deny list)', 'count', { parse: (v, sub) => parseCount(sub, v) }))
    .action((id: number, flags: CommonFlags) => {
      const s = storeOf(flags);
      if (!existsSync(s.db)) throw new InputError('input.not_found', s.subject, 'no rule store there', { hint: 'nothing to remove' });
      const store = openStore(s);
      let ok: boolean;
      try {
        ok = store.remove(id);
      } finally {
        store.close();
      }
      if (!ok) throw new VigilError('failed.not_found', `no rule ${id}`, { subject: 'ID', hint: 'see vigil deny list' });
      process.stdout.write(`removed rule ${id}\n`);
      process.stderr.write(`${apply(s, flags, false, 'vigil deny rm')}\n`);
    });

  common(deny.command('mode').description('show or set the global mode: monitor downgrades every rule to reporting'))
    .addArgument(arg('[mode]', 'monitor or enforce', 'choice', { choices: MODES }))
    .action((m: Mode | undefined, flags: CommonFlags) => {
      const s = storeOf(flags);
      if (!m && !existsSync(s.db)) {
        if (s.explicit) throw new InputError('input.not_found', s.subject, 'no rule store there');
        process.stdout.write('enforce\n');
        process.stderr.write(`${statusLine(enforcementStatus(flags.pinDir, null), flags.pinDir)}\n`);
        return;
      }
      const store = openStore(s);
      let mode: Mode;
      let status: EnforcementStatus;
      try {
        if (m) store.setGlobalMode(m);
        mode = store.globalMode();
        status = enforcementStatus(flags.pinDir, store);
      } finally {
        store.close();
      }
      process.stdout.write(`${mode}\n`);
      process.stderr.write(`${m ? apply(s, flags, false, 'vigil deny mode') : statusLine(status, flags.pinDir)}\n`);
    });

  common(deny.command('apply').description('arm the exec guard (if needed) and load every stored rule into it'))
    .action((flags: CommonFlags) => {
      process.stdout.write(`${apply(storeOf(flags), flags, true, 'vigil deny apply')}\n`);
    });

  common(deny.command('events').description('follow exec guard decisions (exec_blocked, would_block) from the kernel'))
    .option('--json', 'one JSON object per line (the exec_guard event of docs/schema/event.schema.json)')
    .addOption(opt('-n, --count <n>', 'exit after this many events', 'count', { parse: (v, sub) => parseCount(sub, v) }))
    .action(async (flags: CommonFlags & { json?: boolean; count?: number }) => {
      const s = storeOf(flags);
      const store = existsSync(s.db) ? openStore(s, { readonly: true }) : null;
      let guard: ExecGuard;
      try {
        guard = ExecGuard.adopt(flags.pinDir);
      } catch (e) {
        const status = enforcementStatus(flags.pinDir, store);
        store?.close();
        if (e instanceof BpfError && status.state !== 'enforced') {
          throw new UnavailableError('unavailable.not_armed', `no decisions to follow: ${statusLine(status, flags.pinDir).replace(/^enforcement: /, '')}`, { cause: e });
        }
        throw e;
      }
      const limit = flags.count ?? Infinity;
      let rules = new Map((store?.list() ?? []).map((r) => [r.id, r]));
      let seen = 0;
      await new Promise<void>((done) => {
        const reader = new DecisionReader(guard.map('events'), (d) => {
          if (!rules.has(d.ruleId) && store) rules = new Map(store.list().map((r) => [r.id, r]));
          const ev: ExecGuardEvent = decisionEvent(d, { rules });
          process.stdout.write(flags.json ? `${JSON.stringify(ev)}\n` : `${humanDecision(ev)}\n`);
          if (++seen >= limit) {
            reader.close();
            done();
          }
        });
        reader.start();
        const stop = (): void => {
          reader.close();
          done();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      store?.close();
      guard.close();
    });
}

/** One decision for a terminal: every text from the event escaped. */
export function humanDecision(ev: ExecGuardEvent): string {
  const v = ev.vigil;
  return `${ev.timestamp} ${v.action} rule ${v.rule.id} (${v.rule.match}) pid ${ev.ProcessId} ${safeText(ev.Image)} -> ${safeText(ev.TargetFilename)}${v.rule.comment ? `  # ${safeText(v.rule.comment)}` : ''}`;
}
