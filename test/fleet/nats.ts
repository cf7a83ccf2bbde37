/**
 * A real nats-server (Debian's, JetStream on) on loopback for a test file:
 * a random free port (test/ports.ts), a temporary store directory, kill and restart on the same
 * port and store (what an outage looks like to the agents).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../ports.js';

export const HAVE_NATS = spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).status === 0;

export interface NatsServer {
  url: string;
  port: number;
  dir: string;
  /** SIGKILL: no goodbye to the clients */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** and remove its store */
  stop(): Promise<void>;
}

/** A free loopback port now, for a server started later (test/ports.ts: outside the ephemeral range, so it stays free for the restarts). */
export { freePort };

/** `config`: extra nats-server config text (e.g. an authorization block); `port`: this one. */
export async function startNats(opts: { config?: string; port?: number } = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-nats-'));
  let port = 0;
  let proc: ChildProcess | null = null;
  let conf: string | null = null;
  if (opts.config) {
    conf = join(dir, 'server.conf');
    writeFileSync(conf, opts.config);
  }
  const launch = async (): Promise<void> => {
    const args = ['-js', '-sd', join(dir, 'store'), '-a', '127.0.0.1', '-p', String(port), ...(conf ? ['-c', conf] : [])];
    const p = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`nats-server did not start: ${err}`)), 10_000);
      p.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('Server is ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`nats-server exited ${code}: ${err}`));
      });
    });
    p.removeAllListeners('exit');
    p.stderr!.resume();
    proc = p;
  };
  for (let i = 0; ; i++) {
    port = opts.port ?? (await freePort());
    try {
      await launch();
      break;
    } catch (e) {
      if (i >= 3) throw e;
    }
  }
  const kill = async (sig: NodeJS.Signals) => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill(sig);
    });
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    kill: () => kill('SIGKILL'),
    restart: async () => {
      await kill('SIGKILL');
      await launch();
    },
    stop: async () => {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
