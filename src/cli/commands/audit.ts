import type { Command } from 'commander';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { parseDuration } from '../../config/config.js';
import { AuditChain, AuditKeyError, readKeyFile, type AuditKey } from '../../sinks/audit-chain.js';
import { AuditBlockChain } from '../../sinks/audit-block.js';
import type { JsonlSink } from '../../sinks/jsonl.js';
import { verifyFiles, type VerifyReport } from '../../sinks/audit-verify.js';
import { InputError, VigilError, fromSystemError, shown } from '../errors.js';
import { arg, opt } from '../options.js';
import { safeText } from '../../util/text.js';

interface VerifyFlags {
  key?: string;
  json?: boolean;
}

/** `vigil audit verify`: the tamper-evident audit log (docs/audit.md). */
export function register(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident JSONL audit log: check its hash chain and seals (docs/audit.md)');
  audit
    .command('verify')
    .description('check chained JSONL logs: name the first line changed, removed, reordered or inserted (or the block of lines an edit is in), or say they are intact up to their last seal')
    .addArgument(arg('<file...>', 'the log and its rotations (any order: read in chain order), e.g. /var/log/vigil/events.jsonl*', 'file'))
    .addOption(opt('-k, --key <file>', 'the verification key (LOG.verify-key, written at the chain\'s first start and kept off-host); without it the chain is checked but not the seals\' MACs', 'file'))
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      `
What it checks, format 2 (block seals, audit_log.chain.format: block, the default):
each block's lines against its seal's line lengths (names a removed, inserted or
resized line, a swapped pair of different lengths) and digest (an edit that keeps
every length is named by its block's lines), that seals run 1, 2, 3 ... each naming
the one before, epochs without gap, and with --key each seal's HMAC. Format 1
(format: line, and logs written before format 2): every line's own hash (an edited
byte), its link to the line before and sequence numbers without gap or repeat, and
every seal. A log that changed format is checked in each part's format. With --key
an attacker who holds the host's current sealing key cannot make seals of earlier
epochs.

Examples:
  vigil audit verify /var/log/vigil/events.jsonl* --key ~/keys/events.jsonl.verify-key
  vigil audit verify events.jsonl.1 events.jsonl --json | jq .problem

Without --key only the chain is checked: a root attacker can rewrite a chain
consistently, only seals checked with the key prove lines unaltered.
Lines after the last seal (its unsealed tail) can be cut or rewritten by such an
attacker: compare the seal count with a copy kept elsewhere (docs/audit.md).

Exit status: 0 intact, 1 a problem found (the line is named), 2 usage,
4 a file or key that cannot be read or is not a vigil key (docs/cli.md).`,
    )
    .action((files: string[], flags: VerifyFlags) => {
      let key: AuditKey | undefined;
      if (flags.key) {
        try {
          key = readKeyFile(flags.key);
        } catch (e) {
          if (e instanceof AuditKeyError) throw new InputError('input.not_a_key', `--key ${shown(flags.key, 200)}`, e.message, { hint: 'give the LOG.verify-key file written at the chain\'s first start' });
          throw fromSystemError(e as NodeJS.ErrnoException, `--key ${shown(flags.key, 200)}`) ?? e;
        }
      }
      let r: VerifyReport;
      try {
        r = verifyFiles(files, key);
      } catch (e) {
        throw fromSystemError(e as NodeJS.ErrnoException, undefined, 'reading the log') ?? e;
      }
      if (!r.chained) {
        throw new InputError('input.not_chained', shown(files.join(' '), 200), 'no line carries a chain link: not a log written with audit_log.chain.enabled', { hint: 'turn the chain on (docs/audit.md); lines written before that are not covered' });
      }
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : human(r));
      if (r.problem) {
        throw new VigilError('failed.tampered', `${r.problem.kind}: ${r.problem.message}`, { subject: `${shown(r.problem.file, 200)}:${r.problem.line}` });
      }
    });
}

function human(r: VerifyReport): string {
  const out: string[] = [];
  for (const f of r.files) out.push(`${safeText(f.path)}: ${f.lines} lines${f.first_seq !== null ? `, ${r.format === 2 ? 'seals' : 'seq'} ${f.first_seq}..${f.last_seq ?? '?'}` : ''}`);
  for (const n of r.notes) out.push(`  note ${safeText(n.file)}:${n.line}: ${n.message}`);
  const seq = r.format === 2 ? 'seals' : 'seq';
  if (r.problem) {
    out.push(`NOT INTACT: ${safeText(r.problem.file)}:${r.problem.line}${r.problem.last_line ? `-${r.problem.last_line}` : ''}: ${r.problem.kind}: ${safeText(r.problem.message)}`);
    if (r.last_seal) out.push(`lines up to the last good seal (${safeText(r.last_seal.file)}:${r.last_seal.line}, epoch ${r.last_seal.epoch}) were checked before the problem`);
    return `${out.join('\n')}\n`;
  }
  const checked = r.key.given ? `${r.seals_checked} of ${r.seals} seals verified with the key` : `${r.seals} seals found, their MACs not checked (no --key)`;
  if (r.last_seal) {
    out.push(
      `intact: ${r.records} records, ${seq} ${r.first_seq}..${r.last_seq}, chain ${r.chain ?? '?'}; ${checked}; sealed up to ${safeText(r.last_seal.file)}:${r.last_seal.line} (epoch ${r.last_seal.epoch}); ${r.unsealed} record${r.unsealed === 1 ? '' : 's'} after it not sealed yet`,
    );
  } else {
    out.push(`chain intact: ${r.records} records${r.format === 2 ? '' : `, seq ${r.first_seq}..${r.last_seq}`}; no seal yet: nothing is sealed (${r.unsealed} unsealed records)`);
  }
  return `${out.join('\n')}\n`;
}

/** The audit_log.chain config section. */
export interface ChainConfig {
  enabled: boolean;
  seal_every: number;
  seal_interval: string | number;
  key_dir: string | null;
  format?: 'block' | 'line';
  hasher?: 'inline' | 'thread';
}

/**
 * `make` with the audit chain as its hook when audit_log.chain.enabled (for
 * `vigil run`): says once what the chain found at start (a new chain and where
 * its verification key is, a key still on the host, a tail lost in a crash).
 */
export function withAuditChain(cfg: { chain: ChainConfig }, path: string, log: Logger, make: (hook: AuditChain | AuditBlockChain | undefined) => JsonlSink): JsonlSink {
  const c = cfg.chain;
  if (!c.enabled) return make(undefined);
  const dir = c.key_dir;
  const o = {
    logPath: path,
    ...(dir ? { keyFile: join(dir, `${basename(path)}.seal-key`), verifyKeyFile: join(dir, `${basename(path)}.verify-key`) } : {}),
    sealEvery: c.seal_every,
    sealIntervalMs: parseDuration(c.seal_interval),
  };
  const chain = c.format === 'line' ? new AuditChain(o) : new AuditBlockChain({ ...o, hasher: c.hasher ?? 'inline' });
  let sink: JsonlSink;
  try {
    sink = make(chain);
  } catch (e) {
    if (e instanceof AuditKeyError) throw new InputError('input.not_a_key', `audit_log.chain ${shown(e.path, 200)}`, e.message, { hint: 'restore the sealing key, or move it away to start a new chain (verify will show where)' });
    throw e;
  }
  const s = chain.start!;
  const at = { audit_chain: s.chain, epoch: s.epoch, seal_key: chain.keyFile, log: path };
  if (s.created) log.info({ ...at, verify_key: chain.verifyKeyFile }, `audit chain ${s.chain} created for ${path}: move its verification key ${chain.verifyKeyFile} off this host (vigil audit verify --key)`);
  else if (s.verifyKeyOnHost) log.warn({ ...at, verify_key: s.verifyKeyOnHost }, `the audit chain's verification key is still on this host (${s.verifyKeyOnHost}): whoever reads it can forge every seal; move it off-host`);
  if (s.replacedKey) log.warn(at, `no sealing key for ${path}, whose lines are chained: a new chain starts (verify reports the break)`);
  if (s.sealedMissing) log.warn(at, `${path} ends before its last seal: sealed lines are missing from the log`);
  if (s.cutBytes > 0) log.warn(at, `a crash cut the last line of ${path} (${s.cutBytes} bytes removed); the chain continues from the last whole line`);
  if ('tailLines' in s && s.tailLines > 0) log.warn(at, `${path} ends with an unsealed tail of ${s.tailLines} lines (vigil stopped before sealing them: a crash or SIGKILL); the start line records them as found, verify reports them as unsealed`);
  if ('afterFormat1' in s && s.afterFormat1) log.info(at, `${path} holds per-line chained lines (format 1); block seals (format 2) follow from here; verify checks each part in its format`);
  return sink;
}
