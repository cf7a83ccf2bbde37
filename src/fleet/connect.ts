/**
 * Connecting to the fleet's NATS server(s): URLs checked, credentials read from
 * a file (never from the command line), reconnecting forever with a short wait.
 *
 * Credentials file formats:
 *   - a NATS .creds file (user JWT + nkey seed, as written by `nsc`)
 *   - a small YAML/JSON map: `token: ...`, or `user: ...` + `password: ...`,
 *     or `nkey_seed: SU...`
 * A file readable by group or others is refused unless `allowOpenCreds` is set:
 * the agent runs as root and the file is a key to the whole fleet.
 */
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';

export interface FleetConnectOptions {
  /** nats://host:port, tls://host:port; several separated by commas */
  url: string;
  /** credentials file */
  creds?: string | null;
  /** connection name shown by the server */
  name?: string;
  /** keep trying when the server is not there yet (the agent); commands fail fast instead */
  waitOnFirstConnect?: boolean;
  reconnectTimeWaitMs?: number;
  timeoutMs?: number;
  allowOpenCreds?: boolean;
  /** false: fail instead of reconnecting (one-shot commands) */
  reconnect?: boolean;
}

export function parseServers(url: string): string[] {
  const list = url.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error('no NATS server URL given (nats://HOST:PORT)');
  for (const s of list) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new Error(`"${s}" is not a URL (nats://HOST:PORT)`);
    }
    if (!['nats:', 'tls:'].includes(u.protocol)) throw new Error(`"${s}": the scheme must be nats:// or tls://`);
    if (u.username || u.password) throw new Error(`"${u.protocol}//…@${u.host}": put credentials in a file (--creds FILE), not in the URL`);
    if (!u.hostname) throw new Error(`"${s}": no host`);
  }
  return list;
}

type Auth = Pick<NodeConnectionOptions, 'authenticator' | 'token' | 'user' | 'pass'>;

export function readCreds(path: string, allowOpen = false): Auth {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Error(`credentials file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (e as Error).message}`);
  }
  if (!allowOpen && (st.mode & 0o077) !== 0) {
    throw new Error(`credentials file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}`);
  }
  const text = readFileSync(path, 'utf8');
  if (text.includes('-----BEGIN NATS USER JWT-----')) {
    return { authenticator: credsAuthenticator(new TextEncoder().encode(text)) };
  }
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new Error(`credentials file ${path}: neither a NATS .creds file nor YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`credentials file ${path}: expected a .creds file or a map with token, user/password or nkey_seed`);
  const m = v as Record<string, unknown>;
  const str = (k: string) => (typeof m[k] === 'string' && (m[k] as string).length ? (m[k] as string) : undefined);
  const unknown = Object.keys(m).filter((k) => !['token', 'user', 'password', 'nkey_seed'].includes(k));
  if (unknown.length) throw new Error(`credentials file ${path}: unknown key(s) ${unknown.join(', ')} (token, user, password, nkey_seed)`);
  if (str('token')) return { token: str('token')! };
  if (str('user')) {
    if (!str('password')) throw new Error(`credentials file ${path}: user without password`);
    return { user: str('user')!, pass: str('password')! };
  }
  if (str('nkey_seed')) return { authenticator: nkeyAuthenticator(new TextEncoder().encode(str('nkey_seed')!)) };
  throw new Error(`credentials file ${path}: no token, user/password or nkey_seed`);
}

export function connectionOptions(o: FleetConnectOptions): NodeConnectionOptions {
  const servers = parseServers(o.url);
  return {
    servers,
    name: o.name ?? 'vigil',
    ...(o.creds ? readCreds(o.creds, o.allowOpenCreds) : {}),
    maxReconnectAttempts: o.reconnect === false ? 0 : -1,
    reconnect: o.reconnect !== false,
    reconnectTimeWait: o.reconnectTimeWaitMs ?? 1000,
    reconnectJitter: 250,
    waitOnFirstConnect: o.waitOnFirstConnect ?? false,
    timeout: o.timeoutMs ?? 5000,
    // a silent peer (network partition) is noticed within ~1 min
    pingInterval: 20_000,
    maxPingOut: 3,
    // no Error (stack capture) per request: a publish with an ack is a request
    noAsyncTraces: true,
  };
}

export function connectFleet(o: FleetConnectOptions): Promise<NatsConnection> {
  return connect(connectionOptions(o));
}
