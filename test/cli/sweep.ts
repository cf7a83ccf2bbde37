/**
 * The CLI sweep (issue 9): every command and every option and argument of the
 * commander definition, fed bad values of the kind it takes (empty, wrong type,
 * huge, not UTF-8, missing files, directories, ...). A new option is covered by
 * itself: its kind comes from its declaration (src/cli/options.ts) or, for an
 * option declared the plain way, from its placeholder (<file>, <n>, <time>...);
 * an option of neither fails the sweep until its kind is known.
 */
import type { Argument, Command, Option } from 'commander';
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram, commandPath, commandTree } from '../../src/cli/main.js';
import { isKernelCommand, kindOf, type OptionKind } from '../../src/cli/options.js';
import { STACK, vigil, type CliResult } from './harness.js';

export type Kind = OptionKind;

/** An option's or argument's kind: declared, or read from its placeholder. */
export function kindFor(o: Option | Argument): Kind | undefined {
  const declared = kindOf(o);
  if (declared) return declared;
  const isOption = 'flags' in o;
  const placeholder = isOption ? /[<[]([^>\]]+)[>\]]/.exec((o as Option).flags)?.[1] : (o as Argument).name();
  const choices = isOption ? (o as Option).argChoices : (o as Argument).argChoices;
  if (choices?.length) return 'choice';
  switch (placeholder?.replace(/\.\.\.$/, '')) {
    case 'file':
      return 'file';
    case 'dir':
      return 'dir';
    case 'path':
      return 'rules-path';
    case 'url':
      return 'url';
    case 'n':
      return 'count';
    case 'time':
      return 'time';
    case 'duration':
      return 'duration';
    case 'age':
      return 'age';
    case 'size':
      return 'size';
    case 'hex':
      return 'sha256';
    case 'text':
      return 'text';
    case 'id':
    case 'name':
    case 'level':
    case 'mode':
      return 'name';
    default:
      return undefined;
  }
}

export interface Fixture {
  dir: string;
  file: string;
  db: string;
  sub: string;
}

export function fixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-sweep-'));
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'not a database, not YAML: {\n');
  const db = join(dir, 'store.db');
  const d = new Database(db);
  d.exec('CREATE TABLE t (x)');
  d.close();
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  return { dir, file, db, sub };
}

export const HUGE = 'x'.repeat(1 << 20);
/** what Node makes of argv bytes that are not UTF-8 (test: a real process, below) */
export const NOT_UTF8 = 'a\uFFFDb';

/** Bad values for each kind: every one must be refused, naming the option. */
export function badValues(kind: Kind, f: Fixture): Array<[label: string, value: string]> {
  const missing = join(f.dir, 'does-not-exist');
  const path = (extra: Array<[string, string]>): Array<[string, string]> => [['empty', ''], ['not UTF-8', join(f.dir, NOT_UTF8)], ['huge', HUGE], ...extra];
  switch (kind) {
    case 'file':
      return path([['missing file', missing], ['directory', f.sub]]);
    case 'database-in':
      return path([['missing file', missing], ['directory', f.sub], ['not a database', f.file]]);
    case 'database':
      return path([['directory', f.sub], ['not a database', f.file], ['under a file', join(f.file, 'x.db')]]);
    case 'out-file':
      return path([['directory', f.sub], ['under a file', join(f.file, 'x.jsonl')]]);
    case 'dir':
      return path([['missing directory', missing], ['a file', f.file]]);
    case 'pin-dir':
      return path([['a file', f.file], ['not bpffs', f.sub]]);
    case 'rules-path':
      return path([]);
    case 'exe-path':
      return path([['directory', f.sub]]);
    case 'duration':
      return [['empty', ''], ['word', 'often'], ['negative', '-1'], ['unit', '1y'], ['huge', '9'.repeat(400)], ['huge text', HUGE]];
    case 'time':
      return [['empty', ''], ['bare number', '5'], ['zero', '0'], ['word', 'yesterday'], ['date only', '2001-05-01'], ['bad month', '2026-13-01T00:00:00Z'], ['huge', HUGE]];
    case 'count':
      return [['empty', ''], ['word', 'abc'], ['zero', '0'], ['negative', '-1'], ['fraction', '1.5'], ['huge', '9'.repeat(400)], ['huge text', HUGE]];
    case 'choice':
      return [['empty', ''], ['unknown', 'bogus'], ['huge', HUGE]];
    case 'sensors':
      return [['empty', ''], ['unknown', 'bogus'], ['only commas', ',,'], ['huge', HUGE]];
    case 'url':
      return [['empty', ''], ['not a URL', 'not a url'], ['http', 'http://127.0.0.1:4222'], ['huge', HUGE]];
    case 'host-id':
      return [['empty', ''], ['space', 'a b'], ['too long', 'h'.repeat(65)], ['not UTF-8', NOT_UTF8], ['huge', HUGE]];
    case 'sha256':
      return [['empty', ''], ['not hex', 'xyz'], ['63 digits', 'a'.repeat(63)], ['huge', HUGE]];
    case 'field-match':
      return [['empty', ''], ['no operator', 'Image'], ['no field', '=x'], ['bad field', '1a=b']];
    case 'name':
      return [['empty', ''], ['control characters', '\x1b[2J'], ['not UTF-8', NOT_UTF8], ['huge', HUGE]];
    case 'text':
      return [['huge', HUGE], ['NUL', 'a\0b']];
    case 'size':
      return [['empty', ''], ['word', 'big'], ['negative', '-5'], ['huge', '9'.repeat(400)], ['huge text', HUGE]];
    case 'age':
      return [['empty', ''], ['word', 'often'], ['negative', '-1d'], ['unit', '1y'], ['huge', '9'.repeat(400)], ['huge text', HUGE]];
    case 'id':
      return [['empty', ''], ['space', 'a b'], ['too long', 'i'.repeat(65)], ['not UTF-8', NOT_UTF8], ['huge', HUGE]];
    case 'host-path':
      return path([['relative', 'bin/evil']]);
    case 'listen':
      return [['empty', ''], ['no port', '127.0.0.1'], ['host name', 'example.com:80'], ['port 0', '127.0.0.1:0'], ['port too big', '127.0.0.1:65536'], ['not UTF-8', `${NOT_UTF8}:1`], ['huge', HUGE]];
  }
}

/** A value every option of the kind accepts (to show the sweep does not refuse everything). */
export function goodValue(kind: Kind, f: Fixture, o: Option | Argument): string | undefined {
  const choices = 'flags' in o ? (o as Option).argChoices : (o as Argument).argChoices;
  switch (kind) {
    case 'file':
      return f.file;
    case 'database-in':
      return f.db;
    case 'database':
      return join(f.dir, 'new.db');
    case 'out-file':
      return join(f.dir, 'out.jsonl');
    case 'dir':
    case 'rules-path':
      return f.sub;
    case 'pin-dir':
      return '/sys/fs/bpf/vigil-sweep/exec_guard';
    case 'exe-path':
      return '/bin/true';
    case 'duration':
      return '10s';
    case 'time':
      return '5m';
    case 'count':
      return '3';
    case 'choice':
      return choices?.[0];
    case 'sensors':
      return 'exec';
    case 'url':
      return 'nats://127.0.0.1:4222';
    case 'host-id':
      return 'web-01';
    case 'sha256':
      return 'a'.repeat(64);
    case 'field-match':
      return 'Image=/bin/sh';
    case 'name':
      return 'process_creation';
    case 'text':
      return 'why';
    case 'size':
      return '1MiB';
    case 'age':
      return '7d';
    case 'id':
      return 'rule-1';
    case 'host-path':
      return '/usr/bin/evil';
    case 'listen':
      return '127.0.0.1:7070';
  }
}

export interface Leaf {
  cmd: Command;
  path: string[];
  kernel: boolean;
}

/** Every command that runs something (no subcommands), with its words after `vigil`. */
export function leaves(program: Command): Leaf[] {
  return commandTree(program)
    .filter((c) => c !== program && c.commands.length === 0 && c.name() !== 'help')
    .map((cmd) => ({ cmd, path: commandPath(cmd).split(' ').slice(1), kernel: isKernelCommand(cmd) }));
}

/** Options that take a value (not --help, not flags). */
export function valueOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => (o.required || o.optional) && o.long !== '--help' && o.long !== '--version');
}

/** The words that make a valid call of the command (its required arguments and mandatory options). */
export function baseline(cmd: Command, f: Fixture, except?: Option | Argument): string[] {
  const words: string[] = [];
  for (const o of cmd.options) {
    if (!o.mandatory || o === except) continue;
    const k = kindFor(o);
    words.push(o.long!, (k && goodValue(k, f, o)) ?? 'x');
  }
  // optional arguments too: a call names what it acts on (deny add PATH)
  for (const a of cmd.registeredArguments) {
    if (a === except) break;
    const k = kindFor(a);
    words.push((k && goodValue(k, f, a)) ?? 'x');
  }
  return words;
}

/** A program whose actions do nothing (for what commander checks when it parses). */
export function stubbed(): Command {
  const p = buildProgram();
  for (const c of commandTree(p)) if (c.commands.length === 0) c.action(() => undefined);
  return p;
}

/** The program as it is, except kernel commands' actions stubbed when `kernel` is false. */
export function realUnless(kernel: boolean): Command {
  const p = buildProgram();
  if (!kernel) for (const c of commandTree(p)) if (c.commands.length === 0 && isKernelCommand(c)) c.action(() => undefined);
  return p;
}

export function argName(a: Argument): string {
  return a.name();
}

/** What every refusal must look like: a documented usage or input status, lines naming the subject, no stack. */
export function checkRefusal(r: CliResult, subject: RegExp, what: string): string[] {
  const problems: string[] = [];
  if (r.code !== 2 && r.code !== 4) problems.push(`${what}: exit ${r.code} (expected 2 usage or 4 input)`);
  if (STACK.test(r.err) || STACK.test(r.out)) problems.push(`${what}: a stack trace`);
  if (!subject.test(r.err)) problems.push(`${what}: the message does not name it: ${JSON.stringify(r.err.slice(0, 300))}`);
  const lines = r.err.trimEnd().split('\n');
  if (lines.length > 3) problems.push(`${what}: ${lines.length} lines on stderr`);
  if (!lines.every((l) => /^vigil( [a-z-]+)*: .* \[[a-z_]+(\.[a-z_]+)?\]$/.test(l))) problems.push(`${what}: not the error format: ${JSON.stringify(r.err.slice(0, 300))}`);
  if (r.out !== '') problems.push(`${what}: wrote to stdout: ${JSON.stringify(r.out.slice(0, 200))}`);
  return problems;
}

export { vigil };
