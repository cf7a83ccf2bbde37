/**
 * vigil provenance show|mark|clear FILE: a file's origin record (the xattr
 * trusted.vigil.origin, docs/provenance.md), its derived_from chain and the
 * verdict an exec of it would get. Bad records (garbage, cut, another
 * version) are reported, never fatal.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { AgentConfigSchema } from '../../agent/config.js';
import { resolveSettings } from '../../config/resolve.js';
import { ExecGuard, kernelDev } from '../../enforcement/index.js';
import { markKey, markValue, TaintFlags } from '../../events/taint.js';
import type { BpfMap } from '../../kernel/index.js';
import { AllowStore, ProvenanceStore, clearFile, markFile, showMark, type AllowRule, type MarkReport, type ProvenanceMode } from '../../provenance/index.js';
import { safeText } from '../../util/text.js';
import { InputError, fromSqliteError, fromSystemError, shown } from '../errors.js';
import { applyRecordGroup } from '../record-files.js';
import { arg, opt } from '../options.js';

interface Flags {
  config?: string;
  db?: string;
  json?: boolean;
}

function settings(flags: Flags): { db: string | null; mode: ProvenanceMode; subject: string } {
  const { config, source } = resolveSettings({ configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }] }, AgentConfigSchema);
  applyRecordGroup(config.files.group, source('files.group'));
  return { db: config.db, mode: config.provenance.mode, subject: `db ${shown(config.db ?? '', 200)} (${source('db')})` };
}

function openStore(s: { db: string | null; subject: string }, write: boolean): ProvenanceStore | null {
  if (!s.db || (!write && !existsSync(s.db))) return null;
  try {
    return ProvenanceStore.open(s.db, write ? {} : { readonly: true });
  } catch (e) {
    throw fromSqliteError(e as { code?: string; message: string }, s.subject) ?? e;
  }
}

/**
 * Mark or unmark the file in an armed exec guard's pinned marks map (what the
 * kernel checks at exec); false when no guard is armed here or bpffs is not readable.
 */
function guardMark(file: string, add: boolean): boolean {
  let m: BpfMap | null = null;
  try {
    m = ExecGuard.pinnedMarks();
    if (!m) return false;
    const st = statSync(file, { bigint: true });
    const k = markKey(kernelDev(st.dev), st.ino);
    if (add) m.update(k, markValue(0, TaintFlags.NET));
    else m.delete(k);
    return true;
  } catch {
    return false;
  } finally {
    m?.close();
  }
}

/** The active allow rules (the verdict names the one that matches); none without a store. */
function allowRules(s: { db: string | null; subject: string }): AllowRule[] {
  if (!s.db || !existsSync(s.db)) return [];
  let a: AllowStore | null = null;
  try {
    a = AllowStore.open(s.db, { readonly: true });
    return a.list('active');
  } catch (e) {
    throw fromSqliteError(e as { code?: string; message: string }, s.subject) ?? e;
  } finally {
    a?.close();
  }
}

/** Marks are on regular files (what can be executed or copied): a device, FIFO or socket is refused. */
function regularFile(file: string): void {
  if (!statSync(file).isFile()) throw new InputError('input.not_regular', `FILE ${shown(file, 200)}`, 'not a regular file: only regular files carry marks');
}

function fileError(e: unknown, file: string): unknown {
  return fromSystemError(e as NodeJS.ErrnoException, `FILE ${shown(file, 200)}`) ?? e;
}

function human(r: MarkReport): string {
  const out: string[] = [`file      ${safeText(r.path)} (dev ${r.dev}, inode ${r.ino})`];
  if (r.originError) out.push(`origin    unreadable: ${safeText(r.originError)}`);
  else if (!r.origin) out.push(`origin    none${r.stored ? ' on the file (the store has a mark for this inode: the xattr was removed)' : ''}`);
  else if (!r.origin.ok) out.push(`origin    BAD RECORD (${r.origin.problem}): ${safeText(r.origin.detail)}`);
  else {
    const o = r.origin.record;
    out.push(`origin    ${o.kind}${o.depth ? ` (depth ${o.depth})` : ''}, written ${o.time} on ${safeText(o.host)}`);
    out.push(`writer    ${safeText(o.exe || '?')} [${safeText(o.comm)}] pid ${o.pid} uid ${o.uid}`);
    out.push(`landed    ${safeText(o.path)}`);
    if (o.remote) out.push(`remote    ${safeText(o.remote.address)}:${o.remote.port}${o.remote.host ? ` (${safeText(o.remote.host)})` : ''}${o.remote.time ? ` at ${o.remote.time}` : ''}`);
  }
  if (r.markAttribute === 'present') out.push('kernel    security.bpf.vigil.mark set: where the exec guard runs (BPF LSM, Linux 6.15+) it reads the mark from the file at exec');
  else if (r.markAttribute === 'absent' && (r.origin || r.stored)) out.push('kernel    no security.bpf.vigil.mark: the exec guard knows this mark only from its map (re-armed from the store at start)');
  for (const [i, l] of r.chain.entries()) {
    const what = l.record ? `${l.record.kind}${l.record.remote ? ` from ${safeText(l.record.remote.address)}:${l.record.remote.port}` : ''}` : '';
    out.push(`${i === 0 ? 'derived   ' : '          '}← ${safeText(l.path || '(path unknown)')} [${l.state}${l.problem ? `: ${safeText(l.problem)}` : ''}]${what ? ` ${what}` : ''}`);
  }
  out.push(`exec      ${r.verdict.exec}: ${r.verdict.reason}`);
  return out.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('provenance')
    .description('file provenance ("mark of the web"): origin records of files written by network-touched processes (docs/provenance.md)');
  const common = (c: Command) =>
    c
      .addOption(opt('-c, --config <file>', 'YAML config (docs/config.md)', 'file'))
      .addOption(opt('--db <file>', 'the store that keeps marks (default $VIGIL_DB, else the config\'s)', 'database'));

  common(cmd.command('show').addArgument(arg('<file>', 'the file to look at', 'file')))
    .description('the origin record of FILE, its derived_from chain and the verdict an exec would get')
    .option('--json', 'one JSON object: {path, dev, ino, origin: {ok, record} | {ok: false, problem, detail} | null, stored, markAttribute (present|absent, Linux 6.15+ only), chain, verdict}')
    .addHelpText('after', '\nExamples:\n  vigil provenance show ./downloaded.bin\n  vigil provenance show --json ./a.out | jq .origin\n\nExit status: 0 when shown (a bad record is reported, not an error), 4 when FILE cannot be read.')
    .action((file: string, flags: Flags) => {
      regularFile(file);
      const s = settings(flags);
      const store = openStore(s, false);
      let r: MarkReport;
      try {
        r = showMark(file, store, s.mode, allowRules(s));
      } catch (e) {
        throw fileError(e, file);
      } finally {
        store?.close();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `${human(r)}\n`);
    });

  common(cmd.command('mark').addArgument(arg('<file>', 'the file to mark', 'file')))
    .description('mark FILE by hand (origin kind "manual"; in the kernel at once when the exec guard is armed, else at the next agent start)')
    .option('--json', 'print the record written')
    .action((file: string, flags: Flags) => {
      regularFile(file);
      const store = openStore(settings(flags), true);
      try {
        const rec = markFile(file, store, { exe: process.execPath, pid: process.pid, uid: process.getuid?.() ?? 0 });
        const armed = guardMark(rec.path, true);
        process.stdout.write(flags.json ? `${JSON.stringify(rec)}\n` : `marked ${safeText(rec.path)}${armed ? ' (in the exec guard\'s marks now)' : ''}\n`);
      } catch (e) {
        throw fileError(e, file);
      } finally {
        store?.close();
      }
    });

  common(cmd.command('clear').addArgument(arg('<file>', 'the file to unmark', 'file')))
    .description('remove the mark of FILE (its xattr and the store\'s copy)')
    .option('--json', '{xattr, stored}: what was removed')
    .action((file: string, flags: Flags) => {
      regularFile(file);
      const store = openStore(settings(flags), true);
      try {
        const r = clearFile(file, store);
        guardMark(file, false);
        if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else if (!r.xattr && !r.stored) throw new InputError('input.not_marked', `FILE ${shown(file, 200)}`, 'carries no mark');
        else process.stdout.write(`cleared ${safeText(file)}${r.xattr ? '' : ' (only the store had it)'}\n`);
      } catch (e) {
        throw e instanceof InputError ? e : fileError(e, file);
      } finally {
        store?.close();
      }
    });
}
