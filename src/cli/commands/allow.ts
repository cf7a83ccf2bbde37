/**
 * `vigil allow add|list|rm|review`: allow rules of the exec policy on marked
 * files (docs/provenance.md, ALLOW RULES). Stored in the database next to the
 * deny rules; applied at once to an armed exec guard (its pinned prov_allow
 * and prov_allow_uid maps), and picked up by a running agent within its poll interval.
 */
import type { Command } from 'commander';
import { isAbsolute, resolve } from 'node:path';
import { AgentConfigSchema } from '../../agent/config.js';
import { resolveSettings } from '../../config/resolve.js';
import { BpfMap } from '../../kernel/index.js';
import { DEFAULT_PIN_DIR, ExecGuard } from '../../enforcement/index.js';
import {
  AllowStore, ProvenanceStore, allowedText, applyAllowed, checkConditions, describeConditions, resolveAllowed, type AllowConditions, type AllowRule,
} from '../../provenance/index.js';
import { safeText } from '../../util/text.js';
import { InputError, UsageError, fromSqliteError, shown } from '../errors.js';
import { applyRecordGroup } from '../record-files.js';
import { arg, opt } from '../options.js';
import { join } from 'node:path';
import { existsSync } from 'node:fs';

interface Flags {
  config?: string;
  db?: string;
  pinDir: string;
  json?: boolean;
}

function storeOf(flags: Flags): { db: string; subject: string } {
  const { config, source } = resolveSettings({ configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }] }, AgentConfigSchema);
  applyRecordGroup(config.files.group, source('files.group'));
  const from = source('db');
  if (!config.db) throw new InputError('config.no_store', `db (${from})`, 'the store is off (db: null): allow rules live in it', { hint: 'give --db FILE' });
  return { db: config.db, subject: `db ${shown(config.db, 200)} (${from})` };
}

function withStores<T>(s: { db: string; subject: string }, f: (allow: AllowStore, marks: ProvenanceStore) => T): T {
  let allow: AllowStore | null = null;
  let marks: ProvenanceStore | null = null;
  try {
    allow = AllowStore.open(s.db);
    marks = ProvenanceStore.open(s.db);
    return f(allow, marks);
  } catch (e) {
    throw fromSqliteError(e as { code?: string; message: string }, s.subject) ?? e;
  } finally {
    allow?.close();
    marks?.close();
  }
}

/**
 * The rules into the armed guard's allow map now (the running agent would within
 * its poll interval). Returns a line saying what holds.
 */
function apply(flags: Flags, allow: AllowStore, marks: ProvenanceStore): string {
  const pin = join(flags.pinDir, 'prov_allow');
  const pinUid = join(flags.pinDir, 'prov_allow_uid');
  if (!ExecGuard.isArmed(flags.pinDir) || !existsSync(pin)) {
    return 'provenance: the exec guard is not armed here: rules are stored; `vigil run --provenance enforce` applies them (BPF LSM)';
  }
  if (!existsSync(pinUid)) {
    return 'provenance: the armed exec guard is older than this vigil (no prov_allow_uid map): rules are stored; `vigil disarm` and start the agent again to apply them';
  }
  const map = BpfMap.openPinned(pin);
  const mapUid = BpfMap.openPinned(pinUid);
  const km = ExecGuard.pinnedMarks(flags.pinDir);
  try {
    const want = resolveAllowed(allow.list('active'), marks, km);
    applyAllowed(map, want.inode);
    applyAllowed(mapUid, want.uid);
    return `provenance: applied to the exec guard: ${allowedText({ allowed: want.inode.size, allowed_uid: want.uid.size })}`;
  } finally {
    map.close();
    mapUid.close();
    km?.close();
  }
}

function line(r: AllowRule): string {
  return `${String(r.id).padStart(4)}  ${r.state.padEnd(7)}  ${r.source.padEnd(6)}  ${describeConditions(r, safeText)}${r.comment ? `  # ${safeText(r.comment)}` : ''}`;
}

function ids(list: string[], what: string): number[] {
  return list.map((x) => {
    if (!/^\d+$/.test(x) || Number(x) < 1) throw new UsageError(what, `${shown(x)} is not a rule id`);
    return Number(x);
  });
}

export function register(program: Command): void {
  const cmd = program
    .command('allow')
    .description('provenance: allow rules for executing marked files (enforce mode refuses the others; docs/provenance.md)')
    .addHelpText(
      'after',
      `
Examples:
  vigil allow add --path /opt/tools/bin/*          files executed from there
  vigil allow add --exe /usr/bin/gcc                whatever gcc wrote (its output is marked derived)
  vigil allow add --landing /home/*/Downloads/*.AppImage --remote 198.51.100.0/24
  vigil allow add --remote-host *.example.org --exe /usr/bin/curl
  vigil allow add --path /home/alice/Downloads/tool --exec-uid 1000   only uid 1000 runs it
  vigil allow list
  vigil allow review                                rules learned in soak mode
  vigil allow review --accept 4,5 --drop 6
  vigil allow rm 3

A rule's conditions must all hold (AND); a marked file is allowed by the first
active rule that matches. Globs: * and ? within one path component, ** across.
Rules are matched in userspace against what vigil knows of each marked file
(its path now, its origin record) and the matching inodes go into the exec
guard's allow map: applied here at once when the guard is armed. A rule with
--exec-uid puts (inode, uid) in a second map instead: the guard lets the file
run only for a process whose real uid is that uid.`,
    );
  const common = (c: Command) =>
    c
      .addOption(opt('-c, --config <file>', 'YAML config (docs/config.md)', 'file'))
      .addOption(opt('--db <file>', 'the store that keeps the rules (default $VIGIL_DB, else the config\'s)', 'database'))
      .addOption(opt('--pin-dir <dir>', 'bpffs directory of the exec guard', 'pin-dir', { default: DEFAULT_PIN_DIR }));

  common(cmd.command('add').description('add an allow rule (active at once; the same conditions are kept once)'))
    .addOption(opt('--path <glob>', 'the marked file\'s path now (the file executed)', 'text'))
    .addOption(opt('--landing <glob>', 'where it was written (the origin record\'s path)', 'text'))
    .addOption(opt('--exe <glob>', 'the creator\'s executable (origin exe)', 'text'))
    .addOption(opt('--comm <glob>', 'the creator\'s task name (spoofable: prefer --exe)', 'text'))
    .addOption(opt('--uid <uid>', 'the creator\'s uid', 'text'))
    .addOption(opt('--exec-uid <uid>', 'the uid running the file: the real uid of the process that executes it (checked by the exec guard at each exec; other uids are still refused)', 'text'))
    .addOption(opt('--remote <cidr>', 'the remote peer it came from: an address or a CIDR', 'text'))
    .addOption(opt('--remote-host <glob>', 'the remote peer\'s host name (when vigil saw the DNS answer): * and ? within one label, ** across labels, e.g. *.example.org', 'text'))
    .addOption(opt('--comment <text>', 'why', 'text'))
    .option('--json', 'print the rule as JSON')
    .action((flags: Flags & AllowFlags) => {
      const c = conditions(flags);
      const s = storeOf(flags);
      withStores(s, (allow, marks) => {
        const { rule, added } = allow.add(c, { state: 'active', source: 'manual', comment: flags.comment ?? null });
        process.stdout.write(flags.json ? `${JSON.stringify(rule)}\n` : `${added ? `added rule ${rule.id}` : `rule ${rule.id} has these conditions already: kept one${rule.source === 'soak' ? ' (accepted)' : ''}`}\n${line(rule)}\n`);
        process.stderr.write(`${apply(flags, allow, marks)}\n`);
      });
    });

  common(cmd.command('list').description('list allow rules (active and pending)'))
    .option('--json', 'one JSON array of rules')
    .action((flags: Flags) => {
      withStores(storeOf(flags), (allow) => {
        const rules = allow.list();
        if (flags.json) process.stdout.write(`${JSON.stringify(rules)}\n`);
        else process.stdout.write(rules.length ? `  id  state    source  conditions\n${rules.map(line).join('\n')}\n` : 'no allow rules\n');
      });
    });

  common(cmd.command('rm').addArgument(arg('<id...>', 'rule ids', 'id')))
    .description('remove allow rules (the files they allowed are refused again in enforce mode)')
    .action((list: string[], flags: Flags) => {
      const want = ids(list, 'ID');
      withStores(storeOf(flags), (allow, marks) => {
        const gone = allow.remove(want);
        const missing = want.filter((i) => !gone.includes(i));
        if (gone.length) process.stdout.write(`removed rule${gone.length > 1 ? 's' : ''} ${gone.join(', ')}\n`);
        process.stderr.write(`${apply(flags, allow, marks)}\n`);
        if (missing.length) throw new InputError('input.not_found', `ID ${missing.join(', ')}`, 'no such allow rule');
      });
    });

  common(cmd.command('review').description('rules learned in soak mode: list them, accept (make active) or drop them'))
    .addOption(opt('--accept <ids>', 'comma-separated ids, or all', 'text'))
    .addOption(opt('--drop <ids>', 'comma-separated ids, or all', 'text'))
    .option('--json', 'one JSON object: {accepted, dropped, pending}')
    .action((flags: Flags & { accept?: string; drop?: string }) => {
      withStores(storeOf(flags), (allow, marks) => {
        const pending = allow.list('pending').map((r) => r.id);
        const pick = (v: string | undefined, what: string) => (v === undefined ? [] : v === 'all' ? pending : ids(v.split(','), what));
        const acc = pick(flags.accept, '--accept');
        const drop = pick(flags.drop, '--drop');
        const both = acc.filter((i) => drop.includes(i));
        if (both.length) throw new UsageError('--accept', `rule ${both.join(', ')} is both accepted and dropped`, { code: 'usage.conflict' });
        const notPending = [...acc, ...drop].filter((i) => !pending.includes(i));
        if (notPending.length) throw new InputError('input.not_found', `ID ${notPending.join(', ')}`, 'no such pending rule (vigil allow review lists them)');
        const accepted = allow.setState(acc, 'active');
        const dropped = allow.remove(drop);
        const left = allow.list('pending');
        if (flags.json) process.stdout.write(`${JSON.stringify({ accepted, dropped, pending: left })}\n`);
        else {
          if (accepted.length) process.stdout.write(`accepted ${accepted.join(', ')}\n`);
          if (dropped.length) process.stdout.write(`dropped ${dropped.join(', ')}\n`);
          process.stdout.write(left.length ? `pending (vigil allow review --accept ID,... | --drop ID,...):\n${left.map(line).join('\n')}\n` : 'no pending rules\n');
        }
        if (accepted.length) process.stderr.write(`${apply(flags, allow, marks)}\n`);
      });
    });
}

interface AllowFlags {
  path?: string;
  landing?: string;
  exe?: string;
  comm?: string;
  uid?: string;
  execUid?: string;
  remote?: string;
  remoteHost?: string;
  comment?: string;
}

function conditions(f: AllowFlags): AllowConditions {
  const abs = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(p));
  const c: AllowConditions = {};
  if (f.path !== undefined) c.path = abs(f.path)!;
  if (f.landing !== undefined) c.landing = abs(f.landing)!;
  if (f.exe !== undefined) c.exe = abs(f.exe)!;
  if (f.comm !== undefined) c.comm = f.comm;
  if (f.uid !== undefined) {
    if (!/^\d+$/.test(f.uid)) throw new UsageError('--uid', `${shown(f.uid)} is not a uid`);
    c.uid = Number(f.uid);
  }
  if (f.execUid !== undefined) {
    if (!/^\d+$/.test(f.execUid)) throw new UsageError('--exec-uid', `${shown(f.execUid)} is not a uid`);
    c.exec_uid = Number(f.execUid);
  }
  if (f.remote !== undefined) c.remote = f.remote;
  if (f.remoteHost !== undefined) c.remote_host = f.remoteHost;
  const bad = checkConditions(c);
  if (bad) {
    const m = /^(--[\w-]+) (.*)$/s.exec(bad);
    throw m ? new UsageError(m[1]!, m[2]!) : new UsageError('conditions', bad);
  }
  return c;
}
