/**
 * Ports for servers a test starts itself (rsyslogd, nats-server, `vigil run --listen`).
 *
 * A port the kernel hands out (a bind to port 0) lies in its ephemeral range: once it is
 * closed, and until the server binds it (or while that server restarts on it), any
 * connect() on the host may take it as its local port and any other bind(0) may get it.
 * A port below that range is never handed out by the kernel: only a process that asks
 * for that number can hold it. So: a random port below the range, free for TCP and UDP
 * at the time of asking.
 */
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not Linux: the usual default */
  }
  return [32768, 60999];
}

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** A port free on `host` for TCP and UDP now, outside the kernel's ephemeral range. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [lo] = ephemeralRange();
  // [10000, lo) when the range starts where it usually does; else anything from 1024 below it
  const from = lo > 20_000 ? 10_000 : 1024;
  const span = lo - from;
  if (span < 1000) throw new Error(`no room for test ports below the ephemeral range (ip_local_port_range starts at ${lo})`);
  for (let i = 0; i < 200; i++) {
    const port = from + Math.floor(Math.random() * span);
    if ((await tcpFree(port, host)) && (await udpFree(port, host))) return port;
  }
  throw new Error(`no free port in [${from}, ${lo}) after 200 tries`);
}

/**
 * Whether process `pid` holds a socket on local `port`: for tcp a listening one, for udp a
 * bound one (IPv4 or IPv6). Tells a server that bound its port from one whose bind failed
 * while something else answers on that port.
 */
export function holdsPort(pid: number, port: number, proto: 'tcp' | 'udp'): boolean {
  const inodes = new Set<string>();
  for (const table of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = Number.parseInt(cols[1]!.split(':').pop()!, 16);
      // tcp state 0A: LISTEN
      if (local === port && (proto === 'udp' || cols[3] === '0A')) inodes.add(cols[9]!);
    }
  }
  if (!inodes.size) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m && inodes.has(m[1]!)) return true;
    } catch {
      /* closed meanwhile */
    }
  }
  return false;
}
