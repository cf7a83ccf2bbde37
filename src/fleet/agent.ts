/**
 * The fleet inside `vigil run --fleet`: one NATS connection shared by the
 * publisher (events and alerts out, through the spool), the policy agent
 * (policy in) and the heartbeat (host status in the vigil-hosts bucket).
 *
 * Nothing here may stop the agent from starting: the server can be down at
 * start (the spool fills, the last good policy applies), credentials that the
 * server refuses are logged and retried. Only a bad URL or an unreadable
 * credentials file stops `vigil run` (they will not get better by waiting).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { connectFleet, connectionOptions, type FleetConnectOptions } from './connect.js';
import { PolicyAgent, type PolicyStatus } from './policy.js';
import { FleetPublisher, type PublisherStats } from './publisher.js';
import { ensureStreams, hostsBucket } from './setup.js';
import { FleetSink } from './sink.js';
import { Spool, type SpoolStats } from './spool.js';
import { defaultHostId, type RecordKind } from './names.js';
import { parseDuration, parseSize } from '../config/config.js';

export interface FleetAgentOptions {
  url: string;
  creds?: string | null;
  hostId: string;
  stateDir: string;
  /** the deny rule store of this agent (where `vigil deny` and the exec guard look) */
  rulesDb: string;
  log: Logger;
  spoolMaxBytes?: number;
  /** a batch goes to disk if still unacknowledged this long after it was sealed (0 = at once) */
  spoolWriteDelayMs?: number;
  heartbeatMs?: number;
  batchMaxRecords?: number;
  lingerMs?: number;
  kinds?: RecordKind[];
  version?: string;
  reconnectTimeWaitMs?: number;
}

export interface FleetHooks {
  /** the agent's counters (events, alerts, drops) for the heartbeat */
  counters?: () => Record<string, unknown>;
  /** enforce | detect-only | off */
  enforcement?: () => string;
  onDenyChanged?: () => void;
}

export interface HostStatus {
  format: 1;
  host: string;
  hostname: string;
  version: string;
  pid: number;
  state: 'running' | 'stopped';
  started_at: string;
  time: string;
  heartbeat_ms: number;
  enforcement: string;
  policy: PolicyStatus;
  counters: Record<string, unknown>;
  fleet: {
    connected: boolean;
    published: number;
    batches: number;
    duplicates: number;
    dropped: number;
    errors: number;
    spool_bytes: number;
    spool_backlog: number;
    spool_dropped: number;
    last_error: string | null;
  };
}

export class FleetAgent {
  readonly sink: FleetSink;
  readonly spool: Spool;
  readonly publisher: FleetPublisher;
  readonly policy: PolicyAgent;
  readonly hostId: string;
  private nc: NatsConnection | null = null;
  private hosts: KV | null = null;
  private hooks: FleetHooks = {};
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private connecting: Promise<void> | null = null;
  private wakeConnect: (() => void) | null = null;
  private linkUp = false;
  private readonly startedAt = new Date().toISOString();
  private readonly connectOpts: FleetConnectOptions;

  constructor(private readonly opts: FleetAgentOptions) {
    this.hostId = opts.hostId;
    this.connectOpts = { url: opts.url, creds: opts.creds ?? null, name: `vigil-agent ${opts.hostId}`, reconnectTimeWaitMs: opts.reconnectTimeWaitMs ?? 1000 };
    connectionOptions(this.connectOpts); // URL and credentials file checked now (throws)
    const log = opts.log;
    this.spool = Spool.open({
      dir: join(opts.stateDir, 'spool'),
      idPrefix: opts.hostId,
      maxBytes: opts.spoolMaxBytes ?? 1024 ** 3,
      ...(opts.spoolWriteDelayMs !== undefined ? { writeDelayMs: opts.spoolWriteDelayMs } : {}),
      onError: (e) => log.error(`fleet: ${e.message}`),
    });
    this.publisher = new FleetPublisher({
      hostId: opts.hostId,
      spool: this.spool,
      ...(opts.batchMaxRecords ? { batchMaxRecords: opts.batchMaxRecords } : {}),
      ...(opts.lingerMs !== undefined ? { lingerMs: opts.lingerMs } : {}),
      ensureStreams: () => (this.nc ? ensureStreams(this.nc) : Promise.resolve()),
      onError: (msg, err) => log.warn({ err: err ? String((err as Error).message ?? err) : undefined }, `fleet: ${msg}`),
      onInfo: (msg) => log.info(`fleet: ${msg}`),
    });
    this.sink = new FleetSink({
      hostId: opts.hostId,
      publisher: this.publisher,
      ...(opts.kinds ? { kinds: opts.kinds } : {}),
      onClose: () => this.spool.close(),
    });
    this.policy = new PolicyAgent({
      stateDir: opts.stateDir,
      rulesDb: opts.rulesDb,
      log,
      onDenyChanged: () => this.hooks.onDenyChanged?.(),
    });
    const st = this.spool.stats();
    if (st.backlog > 0) log.info({ spool_backlog: st.backlog, spool_bytes: st.bytes }, `fleet: ${st.backlog} batch(es) from an earlier run waiting in the spool`);
  }

  get sigmaDir(): string {
    return this.policy.sigmaDir;
  }

  /** Apply the last good policy, then connect in the background. */
  async start(hooks: FleetHooks = {}): Promise<void> {
    this.hooks = hooks;
    await this.policy.loadLastGood();
    this.connecting = this.connectLoop();
    const every = this.opts.heartbeatMs ?? 10_000;
    this.timer = setInterval(() => void this.heartbeat('running'), every);
    this.timer.unref();
  }

  private async connectLoop(): Promise<void> {
    const log = this.opts.log;
    let wait = this.opts.reconnectTimeWaitMs ?? 1000;
    let warned = false;
    while (!this.stopped) {
      try {
        const nc = await connectFleet(this.connectOpts);
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.nc = nc;
        break;
      } catch (e) {
        const msg = String((e as Error)?.message ?? e);
        if (!warned || /auth/i.test(msg)) log.warn({ url: this.opts.url }, `fleet: cannot connect to ${this.opts.url} (${msg}); spooling to disk and retrying`);
        warned = true;
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          t.unref();
          this.wakeConnect = () => {
            clearTimeout(t);
            r();
          };
        });
        this.wakeConnect = null;
        wait = Math.min(wait * 2, 30_000);
      }
    }
    const nc = this.nc;
    if (!nc) return;
    this.linkUp = true;
    log.info({ url: this.opts.url, host_id: this.hostId }, `fleet: connected to ${this.opts.url} as host ${this.hostId}`);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.linkUp = false;
          log.warn({ server: s.server }, 'fleet: disconnected; spooling to disk');
        } else if (s.type === 'reconnect') {
          this.linkUp = true;
          log.info({ server: s.server }, 'fleet: reconnected');
          void this.heartbeat('running');
        } else if (s.type === 'error') log.warn(`fleet: ${String((s as { error?: Error }).error?.message ?? 'server error')}`);
      }
    })().catch(() => undefined);
    try {
      await ensureStreams(nc);
    } catch (e) {
      log.warn(`fleet: cannot check or create the streams (${(e as Error).message}); publishing anyway`);
    }
    this.publisher.attach(nc);
    this.policy.attach(nc);
    void this.heartbeat('running');
  }

  status(state: HostStatus['state'] = 'running'): HostStatus {
    const p: PublisherStats = this.publisher.stats();
    const s: SpoolStats = this.spool.stats();
    return {
      format: 1,
      host: this.hostId,
      hostname: hostname(),
      version: this.opts.version ?? '0.0.0',
      pid: process.pid,
      state,
      started_at: this.startedAt,
      time: new Date().toISOString(),
      heartbeat_ms: this.opts.heartbeatMs ?? 10_000,
      enforcement: this.hooks.enforcement?.() ?? 'unknown',
      policy: this.policy.status(),
      counters: this.hooks.counters?.() ?? {},
      fleet: {
        connected: p.connected,
        published: p.published,
        batches: p.batchesPublished,
        duplicates: p.duplicates,
        dropped: p.dropped,
        errors: p.errors,
        spool_bytes: s.bytes,
        spool_backlog: s.backlog,
        spool_dropped: s.droppedRecords,
        last_error: p.lastError,
      },
    };
  }

  private async heartbeat(state: HostStatus['state']): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed() || !this.linkUp) return;
    try {
      this.hosts ??= await hostsBucket(nc);
      await this.hosts.put(this.hostId, JSON.stringify(this.status(state)));
    } catch (e) {
      this.opts.log.debug(`fleet: heartbeat failed: ${(e as Error).message}`);
    }
  }

  /** After the agent has closed its sinks (the fleet sink drains into the server first). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeConnect?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.policy.stop();
    // a goodbye only over a live connection (a buffered one would wait for its timeout)
    if (this.linkUp) await this.heartbeat('stopped');
    await this.sink.close(); // no-op when the agent closed it already
    if (this.nc) await this.nc.close().catch(() => undefined);
    await this.connecting?.catch(() => undefined);
  }
}

/** The `fleet:` section of the agent's config (src/config/config.ts), flags applied. */
export interface FleetSection {
  url: string | null;
  creds: string | null;
  host_id: string | null;
  state_dir: string;
  spool_max_bytes: number | string;
  spool_write_delay: number | string;
  heartbeat: number | string;
  batch_max_events: number;
  batch_linger: number | string;
  publish: Array<'events' | 'alerts'>;
}

function packageVersion(): string {
  try {
    return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  } catch {
    return 'unknown';
  }
}

/** A FleetAgent from the config section; null when no url is set. Throws on a bad URL or credentials file. */
export function createFleetAgent(f: FleetSection, o: { rulesDb: string; log: Logger }): FleetAgent | null {
  if (!f.url) return null;
  return new FleetAgent({
    url: f.url,
    creds: f.creds,
    hostId: f.host_id ?? defaultHostId(),
    stateDir: f.state_dir,
    rulesDb: o.rulesDb,
    log: o.log,
    spoolMaxBytes: parseSize(f.spool_max_bytes),
    spoolWriteDelayMs: parseDuration(f.spool_write_delay),
    heartbeatMs: parseDuration(f.heartbeat),
    batchMaxRecords: f.batch_max_events,
    lingerMs: parseDuration(f.batch_linger),
    kinds: f.publish.map((k) => (k === 'events' ? 'event' : 'alert')),
    version: packageVersion(),
  });
}
