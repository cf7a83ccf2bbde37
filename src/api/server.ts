/**
 * The local API and web console (docs/api.md): one fastify server inside
 * `vigil run`, loopback by default. Every API route and /metrics need the
 * bearer token (api.token_file, 0600); requests that change state also need
 * a same-origin browser context (Origin, Sec-Fetch-Site). The console's static
 * files (no data in them) are served without the token: a browser cannot send
 * a header when it navigates; the page reads the token from the URL fragment.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { AgentStats } from '../agent/agent.js';
import type { Detector } from '../events/detector.js';
import { parseFieldMatch, queryExact } from '../events/query.js';
import { EventStore, type StoreQuery, type StoredRecord } from '../store/store.js';
import { RulesStore, makeRule, type DenyRule } from '../enforcement/index.js';
import type { ProcessContext } from '../process/context.js';
import { eventJsonSchema } from '../sensors/index.js';
import type { ProcInfo } from '../process/process-table.js';
import { parseTimeBound } from '../util/text.js';
import { createMetrics, PassCounts } from './metrics.js';
import { bearerMatches } from './token.js';
import {
  AlertsQuerySchema, DenyAddSchema, DenyIdParamsSchema, DenyModeSchema, EventsQuerySchema, PidParamsSchema, openApiDocument,
  type EnforcementSchema,
} from './schemas.js';

export type Enforcement = z.infer<typeof EnforcementSchema>;

export interface ApiOptions {
  host: string;
  port: number;
  token: string;
  /** /metrics needs the token too (default true; api.metrics_auth) */
  metricsAuth?: boolean;
  version: string;
  /** the SQLite store (events, alerts, deny rules); null: --no-db */
  db: string | null;
  stats(): AgentStats;
  process: ProcessContext;
  detector: Detector | null;
  enforcement(): Enforcement;
  /** a deny rule changed: re-apply to the armed guard */
  onDenyChanged?: () => void;
  /** at most this many live streams (default 16) */
  maxStreams?: number;
}

/** The console's CSP: only this origin's script and style, no inline code, no framing, fetch only to itself. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** dist/api/console (copied by npm run build), else the source tree's src/api/console. */
function consoleDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const d of [join(here, 'console'), join(here, '../../src/api/console')]) if (existsSync(join(d, 'index.html'))) return d;
  throw new Error(`the web console's files are missing (looked in ${join(here, 'console')}): run npm run build`);
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function parse<S extends z.ZodType>(schema: S, v: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(v ?? {});
  if (r.success) return r.data;
  const iss = r.error.issues[0]!;
  const path = iss.path.length ? iss.path.join('.') : iss.code === 'unrecognized_keys' ? (iss as { keys: string[] }).keys.join(', ') : '';
  throw new HttpError(400, 'bad_request', `${where}${path ? ` ${path}` : ''}: ${iss.message}`);
}

interface Stream {
  res: ServerResponse;
  dropped: number;
}

export class ApiServer {
  readonly app: FastifyInstance;
  readonly counts = new PassCounts();
  private readonly streams = new Set<Stream>();
  /** messages a slow stream did not take (bounded per client: dropped, counted) */
  streamDrops = 0;
  private store: EventStore | null = null;
  private readonly files = new Map<string, Buffer>();
  private heartbeat: NodeJS.Timeout | null = null;
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (r: StoredRecord[]) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(private readonly opts: ApiOptions) {
    const dir = consoleDir();
    for (const s of Object.values(STATIC)) this.files.set(s.file, readFileSync(join(dir, s.file)));
    this.app = Fastify({ logger: false, bodyLimit: 64 * 1024, routerOptions: { maxParamLength: 200 } });
    this.routes();
  }

  private routes(): void {
    const app = this.app;
    const o = this.opts;
    const registry = createMetrics({ stats: o.stats, evalTimes: o.detector?.evalTimes ? () => o.detector!.evalTimes!() : undefined, streamDrops: () => this.streamDrops }, this.counts);
    const doc = openApiDocument(o.version);

    app.addHook('onSend', async (_req, reply, payload) => {
      reply.header('Content-Security-Policy', CONSOLE_CSP);
      reply.header('X-Content-Type-Options', 'nosniff');
      reply.header('Referrer-Policy', 'no-referrer');
      reply.header('X-Frame-Options', 'DENY');
      reply.header('Cache-Control', 'no-store');
      reply.header('Cross-Origin-Resource-Policy', 'same-origin');
      return payload;
    });

    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      if ((req.method === 'GET' || req.method === 'HEAD') && path in STATIC) return;
      if (path === '/metrics' && o.metricsAuth === false) return;
      if (!bearerMatches(req.headers.authorization, o.token)) {
        reply.code(401).header('WWW-Authenticate', 'Bearer realm="vigil"').send({ error: 'unauthorized', message: 'give Authorization: Bearer <token> (the token file vigil run made: api.token_file)' });
        return reply;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const refusal = crossOrigin(req);
        if (refusal) {
          reply.code(403).send({ error: 'cross_origin', message: refusal });
          return reply;
        }
      }
    });

    app.setErrorHandler((e, _req, reply) => {
      const err = e as Error;
      if (err instanceof HttpError) return reply.code(err.status).send({ error: err.code, message: err.message });
      const status = (err as { statusCode?: number }).statusCode;
      if (status && status >= 400 && status < 500) return reply.code(status).send({ error: 'bad_request', message: err.message });
      return reply.code(500).send({ error: 'internal', message: err.message });
    });
    app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found', message: 'no such route (GET /api/openapi.json lists them)' }));

    for (const [route, s] of Object.entries(STATIC)) {
      app.get(route, async (_req, reply) => reply.type(s.type).send(this.files.get(s.file)));
    }

    app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    app.get('/api/openapi.json', async () => doc);
    const eventSchema = eventJsonSchema();
    app.get('/api/schema/event.schema.json', async () => eventSchema);

    app.get('/api/status', async () => {
      const s = o.stats();
      return {
        version: o.version,
        uptime_ms: s.uptimeMs,
        events: s.events,
        alerts: s.alerts,
        by_category: s.byCategory,
        drops: s.drops,
        sensors: Object.fromEntries(
          Object.entries(s.sensors).map(([n, x]) => [
            n,
            { records: x.records, events: x.events, kernel_drops: x.kernelDrops, decode_drops: x.badRecords, ...(x.ring ? { ring_size: x.ring.size, ring_unread: x.ring.pending } : {}), ...(x.object ? { object: x.object } : {}), kernel: x.kernel },
          ]),
        ),
        sinks: s.sinks,
        process_table: s.processTable,
        enforcement: o.enforcement(),
      };
    });

    app.get('/api/events', async (req) => this.search('event', parse(EventsQuerySchema, req.query, 'query')));
    app.get('/api/alerts', async (req) => this.search('alert', parse(AlertsQuerySchema, req.query, 'query')));
    app.get('/api/alerts/stream', (req, reply) => this.stream(req, reply));

    app.get('/api/processes/:pid/tree', async (req) => {
      const { pid } = parse(PidParamsSchema, req.params, 'path');
      return this.tree(pid);
    });

    app.get('/api/rules', async () => {
      const h = o.detector?.health?.();
      return h ? { enabled: true, ...h } : { enabled: false, active: 0, rules: [], inactive: [], files_with_errors: [] };
    });

    app.get('/api/deny', async () => this.withRules(false, (st) => ({ mode: st.globalMode(), enforcement: o.enforcement(), rules: st.list() })));
    app.post('/api/deny', async (req) => {
      const body = parse(DenyAddSchema, req.body, 'body');
      if (body.path !== undefined && !body.path.startsWith('/')) throw new HttpError(400, 'bad_request', 'body path: an absolute path');
      let rule;
      try {
        rule = await makeRule({ ...(body.path ? { path: body.path } : {}), ...(body.sha256 ? { sha256: body.sha256 } : {}), mode: body.mode, ...(body.comment ? { comment: body.comment } : {}) });
      } catch (e) {
        throw new HttpError(400, 'bad_request', `body: ${(e as Error).message}`);
      }
      const added = this.withRules(true, (st) => st.addOrKeep(rule));
      o.onDenyChanged?.();
      return added;
    });
    app.delete('/api/deny/:id', async (req) => {
      const { id } = parse(DenyIdParamsSchema, req.params, 'path');
      const ok = this.withRules(true, (st) => st.remove(id));
      if (!ok) throw new HttpError(404, 'not_found', `no deny rule ${id}`);
      o.onDenyChanged?.();
      return { ok: true };
    });
    app.put('/api/deny/mode', async (req) => {
      const { mode } = parse(DenyModeSchema, req.body, 'body');
      const m = this.withRules(true, (st) => {
        st.setGlobalMode(mode);
        return st.globalMode();
      });
      o.onDenyChanged?.();
      return { mode: m };
    });
  }

  private withRules<T>(write: boolean, f: (st: RulesStore) => T): T {
    if (!this.opts.db) throw new HttpError(409, 'no_store', 'the store is off (db: null, --no-db): deny rules live in it');
    if (!write && !existsSync(this.opts.db)) return f(RulesStore.open(':memory:'));
    const st = RulesStore.open(this.opts.db);
    try {
      return f(st);
    } finally {
      st.close();
    }
  }

  /**
   * Run a store query in the search worker (dist/api/search-worker.js), else here
   * (the TypeScript sources under test have no compiled worker).
   */
  private query(db: string, q: StoreQuery, since?: bigint, until?: bigint): Promise<StoredRecord[]> {
    const file = fileURLToPath(new URL('./search-worker.js', import.meta.url));
    if (!existsSync(file)) {
      this.store ??= EventStore.open(db, { readonly: true });
      return Promise.resolve(queryExact(this.store, q, since, until));
    }
    if (!this.worker) {
      const w = new Worker(file, { workerData: { db } });
      w.unref();
      const fail = (e: Error) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        if (this.worker === w) this.worker = null;
      };
      w.on('message', (m: { id: number; rows?: StoredRecord[]; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new HttpError(500, 'store', `the store: ${m.error}`));
        else p.resolve(m.rows!);
      });
      w.on('error', fail);
      w.on('exit', (code) => fail(new HttpError(500, 'store', `the search worker stopped (exit ${code})`)));
      this.worker = w;
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ id, q, ...(since !== undefined ? { since: String(since) } : {}), ...(until !== undefined ? { until: String(until) } : {}) });
    });
  }

  private async search(kind: 'event' | 'alert', q: z.infer<typeof AlertsQuerySchema>): Promise<{ records: Array<{ id: number; ts: number; record: unknown }>; limit: number }> {
    if (!this.opts.db) throw new HttpError(409, 'no_store', 'the store is off (db: null, --no-db): nothing to search');
    const sq: StoreQuery = { kind, limit: q.limit, order: q.reverse === 'true' || q.reverse === '1' || q.reverse === '' ? 'asc' : 'desc' };
    if (q.category) sq.category = q.category;
    if (q.rule) sq.ruleId = q.rule;
    const fields = q.field === undefined ? [] : Array.isArray(q.field) ? q.field : [q.field];
    sq.fields = fields.map((f) => parseFieldMatch(f)!);
    const bound = (v: string | undefined, name: string) => {
      if (v === undefined) return undefined;
      try {
        return parseTimeBound(v);
      } catch (e) {
        throw new HttpError(400, 'bad_request', `query ${name}: ${(e as Error).message}`);
      }
    };
    const since = bound(q.since, 'since');
    const until = bound(q.until, 'until');
    if (!existsSync(this.opts.db)) return { records: [], limit: q.limit };
    const rows = await this.query(this.opts.db, sq, since, until);
    return { records: rows.map((r) => ({ id: r.id, ts: r.ts, record: JSON.parse(r.json) as unknown })), limit: q.limit };
  }

  private node(p: ProcInfo) {
    return {
      pid: p.pid,
      ppid: p.ppid,
      ProcessGuid: this.opts.process.procGuid(p),
      Image: p.image,
      CommandLine: p.commandLine,
      CurrentDirectory: p.cwd,
      uid: p.uid,
      exited: p.exited,
      source: p.source,
    };
  }

  private tree(pid: number) {
    const table = this.opts.process.table;
    const p = table.get(pid);
    const ancestors = [];
    const seen = new Set<number>([pid]);
    let ppid = p?.ppid ?? 0;
    while (ppid > 0 && !seen.has(ppid) && ancestors.length < 64) {
      seen.add(ppid);
      const q = table.get(ppid);
      if (!q) break;
      ancestors.push(this.node(q));
      ppid = q.ppid;
    }
    const children = [];
    for (const c of table.entries()) if (c.ppid === pid && c.pid !== pid && children.length < 1000) children.push(this.node(c));
    return { pid, found: !!p, process: p ? this.node(p) : null, ancestors, children };
  }

  private stream(req: FastifyRequest, reply: FastifyReply): void {
    if (this.streams.size >= (this.opts.maxStreams ?? 16)) {
      void reply.code(503).send({ error: 'busy', message: `at most ${this.opts.maxStreams ?? 16} live streams` });
      return;
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': CONSOLE_CSP,
      Connection: 'keep-alive',
    });
    res.write(': vigil live alerts\n\n');
    const s: Stream = { res, dropped: 0 };
    this.streams.add(s);
    req.raw.on('close', () => this.streams.delete(s));
    this.heartbeat ??= setInterval(() => {
      for (const x of this.streams) x.res.write(': keep-alive\n\n');
    }, 15_000).unref();
  }

  private publish(event: 'alert' | 'decision', value: Record<string, unknown>): void {
    if (!this.streams.size) return;
    // JSON text has no raw line break: one data line
    const msg = `event: ${event}\ndata: ${JSON.stringify(value)}\n\n`;
    for (const s of this.streams) {
      if (s.res.writableLength > 1024 * 1024) {
        s.dropped++;
        this.streamDrops++;
        continue;
      }
      s.res.write(msg);
    }
  }

  /** An alert from the detector: counted for /metrics, sent to live streams. */
  alert(a: Record<string, unknown>): void {
    this.counts.alert(a);
    this.publish('alert', a);
  }

  /** An exec guard decision event. */
  decision(ev: Record<string, unknown>): void {
    this.counts.decision(ev);
    this.publish('decision', ev);
  }

  /** Listen; the address it is bound to. */
  async listen(): Promise<string> {
    return this.app.listen({ host: this.opts.host, port: this.opts.port });
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
    await this.app.close();
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
    this.store?.close();
    this.store = null;
  }
}

/**
 * A browser request from another origin: refused. Scripts and curl send no
 * Origin and no Sec-Fetch-Site; a browser sends both, and they must say this origin.
 */
export function crossOrigin(req: FastifyRequest): string | null {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site is ${String(site)}: state-changing requests must come from this origin`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const host = req.headers.host;
    if (!host || (origin !== `http://${host}` && origin !== `https://${host}`)) return `Origin ${String(origin).slice(0, 100)} is not this server`;
  }
  return null;
}

export type { DenyRule };
