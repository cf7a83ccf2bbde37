import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { CliError } from '../errors.js';
import {
  DEFAULT_PIN_DIR, DecisionReader, ExecGuard, RulesStore, applyRules, decisionEvent, makeRule,
  type DenyRule, type ExecGuardEvent, type Mode,
} from '../../enforcement/index.js';

const DEFAULT_DB = '/var/lib/vigil/vigil.db';

interface CommonFlags {
  db: string;
  pinDir: string;
}

function parseMode(v: string): Mode {
  if (v !== 'monitor' && v !== 'enforce') throw new CliError(`--mode "${v}": monitor or enforce`, 2);
  return v;
}

function describe(r: DenyRule): string {
  const what = r.kind === 'sha256' ? `sha256:${r.sha256}${r.path ? ` (${r.path})` : ''}` : r.path ?? '';
  return `${String(r.id).padStart(4)}  ${r.mode.padEnd(7)}  ${r.kind.padEnd(6)}  ${what}${r.comment ? `  # ${r.comment}` : ''}`;
}

function apply(flags: CommonFlags, arm: boolean): string {
  const res = applyRules({ db: flags.db, pinDir: flags.pinDir }, { arm });
  if (!res) return 'exec guard not armed: rule stored only (`vigil deny apply` or `vigil run` arms it)';
  const r = res.result;
  const notes = [
    res.armedNow ? `exec guard armed (pinned in ${flags.pinDir})` : 'applied to the armed exec guard',
    `kernel entries: ${r.inode} inode, ${r.path} path, ${r.hash} sha256`,
  ];
  if (r.hash > 0 && !res.hashProgram) notes.push('warning: this kernel cannot hash files in BPF (IMA): sha256 rules match only the files they were added with');
  if (r.unresolved.length) notes.push(`note: rules ${r.unresolved.join(', ')}: file not present now (matched by path when it appears)`);
  if (r.tooLong.length) notes.push(`note: rules ${r.tooLong.join(', ')}: path longer than 255 bytes, matched by inode only`);
  return notes.join('\n');
}

function common(cmd: Command): Command {
  return cmd
    .option('--db <file>', 'rule store (SQLite)', DEFAULT_DB)
    .option('--pin-dir <dir>', 'bpffs directory of the exec guard', DEFAULT_PIN_DIR);
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
See docs/enforcement.md.`,
    );

  common(deny.command('add').description('add a deny rule and apply it'))
    .argument('[path]', 'executable to deny (by its path and by its inode)')
    .option('--sha256 [hex]', 'deny by content: this digest, or the digest of PATH computed now')
    .option('--mode <mode>', 'enforce (EPERM) or monitor (allow, report would_block)', 'enforce')
    .option('--comment <text>', 'why')
    .option('--json', 'print the rule as JSON')
    .action(async (path: string | undefined, flags: CommonFlags & { sha256?: string | true; mode: string; comment?: string; json?: boolean }) => {
      const mode = parseMode(flags.mode);
      if (!path && flags.sha256 === undefined) throw new CliError('give a PATH or --sha256 HEX', 2);
      if (path && typeof flags.sha256 === 'string') throw new CliError('give either PATH --sha256 (hash PATH) or --sha256 HEX, not both', 2);
      let rule;
      try {
        rule = await makeRule({ ...(path ? { path } : {}), ...(flags.sha256 !== undefined ? { sha256: flags.sha256 } : {}), mode, ...(flags.comment ? { comment: flags.comment } : {}) });
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      const store = RulesStore.open(flags.db);
      const added = store.add(rule);
      store.close();
      const note = apply(flags, true);
      if (flags.json) process.stdout.write(`${JSON.stringify(added)}\n`);
      else process.stdout.write(`added rule ${added.id}\n${describe(added)}\n`);
      process.stderr.write(`${note}\n`);
    });

  common(deny.command('list').description('list deny rules'))
    .option('--json', 'one JSON array of rules (with the global mode and whether the guard is armed)')
    .action((flags: CommonFlags & { json?: boolean }) => {
      const rules: DenyRule[] = [];
      let mode: Mode = 'enforce';
      if (existsSync(flags.db)) {
        const store = RulesStore.open(flags.db, { readonly: true });
        rules.push(...store.list());
        mode = store.globalMode();
        store.close();
      }
      const armed = ExecGuard.isArmed(flags.pinDir);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ armed, mode, rules })}\n`);
        return;
      }
      process.stdout.write(`exec guard: ${armed ? 'armed' : 'not armed'}, global mode ${mode}\n`);
      if (!rules.length) process.stdout.write('no deny rules\n');
      else process.stdout.write(`  ID  MODE     KIND    TARGET\n${rules.map(describe).join('\n')}\n`);
    });

  common(deny.command('rm').description('remove a deny rule (lifted at once)'))
    .argument('<id>', 'rule id (vigil deny list)')
    .action((id: string, flags: CommonFlags) => {
      const n = Number(id);
      if (!Number.isInteger(n) || n <= 0) throw new CliError(`rule id "${id}": a positive integer`, 2);
      if (!existsSync(flags.db)) throw new CliError(`no rule store at ${flags.db}`, 1);
      const store = RulesStore.open(flags.db);
      const ok = store.remove(n);
      store.close();
      if (!ok) throw new CliError(`no rule ${n}`, 1);
      process.stdout.write(`removed rule ${n}\n`);
      process.stderr.write(`${apply(flags, false)}\n`);
    });

  common(deny.command('mode').description('show or set the global mode: monitor downgrades every rule to reporting'))
    .argument('[mode]', 'monitor or enforce')
    .action((m: string | undefined, flags: CommonFlags) => {
      const store = RulesStore.open(flags.db);
      if (m) store.setGlobalMode(parseMode(m));
      const mode = store.globalMode();
      store.close();
      process.stdout.write(`${mode}\n`);
      if (m) process.stderr.write(`${apply(flags, false)}\n`);
    });

  common(deny.command('apply').description('arm the exec guard (if needed) and load every stored rule into it'))
    .action((flags: CommonFlags) => {
      process.stdout.write(`${apply(flags, true)}\n`);
    });

  common(deny.command('events').description('follow exec guard decisions (exec_blocked, would_block) from the kernel'))
    .option('--json', 'one JSON object per line')
    .option('-n, --count <n>', 'exit after this many events')
    .action(async (flags: CommonFlags & { json?: boolean; count?: string }) => {
      const guard = ExecGuard.adopt(flags.pinDir);
      const limit = flags.count ? Number(flags.count) : Infinity;
      const store = existsSync(flags.db) ? RulesStore.open(flags.db, { readonly: true }) : null;
      let rules = new Map((store?.list() ?? []).map((r) => [r.id, r]));
      let seen = 0;
      await new Promise<void>((done) => {
        const reader = new DecisionReader(guard.map('events'), (d) => {
          if (!rules.has(d.ruleId) && store) rules = new Map(store.list().map((r) => [r.id, r]));
          const ev: ExecGuardEvent = decisionEvent(d, { rules });
          process.stdout.write(flags.json ? `${JSON.stringify(ev)}\n` : `${ev.action} rule ${ev.rule.id} (${ev.rule.match}) pid ${ev.process.pid} ${ev.process.comm} -> ${ev.file.path}\n`);
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
