/**
 * Debian's nats-server for a benchmark: JetStream on, its file store in a temporary
 * directory, on a free loopback port. Stopped (and its directory removed) by stop(),
 * and killed (its directory removed) when the benchmark's process exits however it
 * ends: an error, Ctrl-C (exit 130) or SIGTERM (143).
 *
 *   const nats = await startNats({ prefix: 'vigil-fleet-bench-', allCores: true });
 *   ... nats.url ... nats.work (the temporary directory, for the caller's files too)
 *   await nats.stop();
 *
 * allCores: run the server on every core even when the benchmark is pinned with taskset
 * (the server's work is another host's).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

export async function startNats({ prefix = 'vigil-bench-nats-', allCores = false } = {}) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const port = await new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
  const args = ['-js', '-sd', join(work, 'store'), '-a', '127.0.0.1', '-p', String(port)];
  const server = allCores
    ? spawn('taskset', ['-c', `0-${cpus().length - 1}`, 'nats-server', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // however the benchmark ends (an error, Ctrl-C, SIGTERM): no server and no store left behind
  const kill = () => {
    server.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  };
  const interrupted = (sig) => process.exit(sig === 'SIGINT' ? 130 : 143);
  process.on('exit', kill);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  await new Promise((res, rej) => {
    let err = '';
    server.stderr.on('data', (d) => {
      err += d;
      if (err.includes('Server is ready')) res();
    });
    server.once('exit', (c) => rej(new Error(`nats-server exited ${c}: ${err}`)));
    server.once('error', (e) => rej(new Error(e.code === 'ENOENT' ? 'nats-server is not installed (apt-get install nats-server)' : `nats-server: ${e.message}`)));
  });
  server.stderr.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    work,
    server,
    /** SIGTERM, wait for it to end, remove its directory */
    async stop() {
      process.off('exit', kill);
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      if (server.exitCode === null && server.signalCode === null) {
        const gone = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await gone;
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}
