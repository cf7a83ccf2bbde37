/**
 * Test helpers for the syslog output: a real rsyslogd (Debian's package) with a
 * private config receiving on loopback UDP and TCP and on a private Unix socket,
 * writing what it received (raw bytes and its own RFC 5424 parse) as JSON lines;
 * and a strict RFC 5424 parser.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, holdsPort } from '../ports.js';

export interface Received {
  raw: string;
  version: string;
  pri: string;
  host: string;
  app: string;
  procid: string;
  msgid: string;
  sd: string;
  msg: string;
  input: string;
}

export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class Rsyslog {
  readonly dir = mkdtempSync(join(tmpdir(), 'vigil-rsyslog-'));
  readonly socket = join(this.dir, 'log');
  readonly out = join(this.dir, 'out.jsonl');
  private proc: ChildProcess | null = null;
  private log = '';

  private constructor(readonly port: number) {}

  /** On a port of its own (another one if something else took the first between the pick and the bind), or on `port`. */
  static async start(port?: number): Promise<Rsyslog> {
    for (let attempt = 1; ; attempt++) {
      const r = new Rsyslog(port ?? (await freePort()));
      try {
        await r.start();
        return r;
      } catch (e) {
        await r.close();
        if (port !== undefined || attempt >= 3) throw e;
      }
    }
  }

  async start(): Promise<void> {
    const conf = join(this.dir, 'rsyslog.conf');
    writeFileSync(
      conf,
      `global(workDirectory="${this.dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="${this.port}")
input(type="imtcp" address="127.0.0.1" port="${this.port}")
input(type="imuxsock" Socket="${this.socket}" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
template(name="vigiltest" type="list" option.jsonf="on") {
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}
action(type="omfile" file="${this.out}" template="vigiltest" fileCreateMode="0600")
`,
    );
    rmSync(this.socket, { force: true });
    this.proc = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(this.dir, 'pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => (this.log += d));
    this.proc.stderr!.on('data', (d) => (this.log += d));
    // ready when rsyslogd itself listens on the TCP port, has bound the UDP port (a datagram
    // sent before that is lost) and has made the socket; an answer on the port is not enough:
    // it may come from another process that holds the port (rsyslogd then runs without it)
    const end = Date.now() + 20_000;
    const pid = this.proc.pid!;
    for (;;) {
      if (existsSync(this.socket) && holdsPort(pid, this.port, 'tcp') && holdsPort(pid, this.port, 'udp')) return;
      if (this.proc.exitCode !== null || Date.now() > end) throw new Error(`rsyslogd did not start on port ${this.port}: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  }

  received(): Received[] {
    if (!existsSync(this.out)) return [];
    // rsyslogd may be part-way through writing a line: only complete lines
    // (up to the last newline) are records yet
    const text = readFileSync(this.out, 'utf8');
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Received);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Rfc5424 {
  pri: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Array<{ id: string; params: Record<string, string> }>;
  /** MSG without a BOM */
  msg: string;
  bom: boolean;
}

const NAME = '[^\\x00-\\x20=\\]"\\x7f-\\uffff]{1,32}';
const VALUE = '(?:[^"\\\\\\]]|\\\\["\\\\\\]])*';
const ELEMENT = `\\[${NAME}(?: ${NAME}="${VALUE}")*\\]`;
const LINE = new RegExp(
  `^<(\\d{1,3})>1 (\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z) ([\\x21-\\x7e]{1,255}) ([\\x21-\\x7e]{1,48}) ([\\x21-\\x7e]{1,128}) ([\\x21-\\x7e]{1,32}) (-|(?:${ELEMENT})+)(?: ([\\s\\S]*))?$`,
  'u',
);

/** A strict RFC 5424 parse (microsecond UTC timestamps, as vigil writes them); throws on anything else. */
export function parse5424(line: string): Rfc5424 {
  const m = LINE.exec(line);
  if (!m) throw new Error(`not an RFC 5424 message: ${JSON.stringify(line.slice(0, 300))}`);
  const pri = Number(m[1]);
  if (pri > 191) throw new Error(`PRI ${pri} out of range`);
  const sd: Rfc5424['sd'] = [];
  if (m[7] !== '-') {
    for (const el of m[7]!.matchAll(new RegExp(ELEMENT, 'gu'))) {
      const body = el[0].slice(1, -1);
      const id = /^[^ ]+/.exec(body)![0];
      const params: Record<string, string> = {};
      for (const p of body.slice(id.length).matchAll(new RegExp(` (${NAME})="(${VALUE})"`, 'gu'))) params[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, '$1');
      sd.push({ id, params });
    }
  }
  const raw = m[8] ?? '';
  const bom = raw.startsWith('\uFEFF');
  return { pri, timestamp: m[2]!, hostname: m[3]!, appName: m[4]!, procId: m[5]!, msgId: m[6]!, sd, msg: bom ? raw.slice(1) : raw, bom };
}
