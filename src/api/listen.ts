/** ADDR:PORT for --listen and api.listen, and whether it is loopback. */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
  loopback: boolean;
}

/** "127.0.0.1:7070", "[::1]:7070", "localhost:7070", "0.0.0.0:7070"; an error message when it is not one. */
export function parseListen(v: string): ListenAddress | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v.trim());
  if (!m) return 'expected ADDR:PORT (127.0.0.1:7070, [::1]:7070, localhost:7070)';
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is not in 1-65535`;
  if (m[1] !== undefined && isIP(host) !== 6) return `${host} is not an IPv6 address`;
  if (m[2] !== undefined && !isIP(host) && host !== 'localhost') return `${host}: give an IP address (or localhost), not a host name`;
  return { host, port, loopback: isLoopback(host) };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return /^::ffff:127\./i.test(host);
}
