/**
 * The webhook output (outputs.webhook; docs/outputs.md): HTTP(S) POST of JSON
 * batches through the shared delivery queue.
 *
 *   POST <url>
 *   Content-Type: application/json
 *   Idempotency-Key: <batch id, the same on every retry of the batch>
 *   <secret_header>: <secret, from secret_file (mode 0600) or secret>
 *   {"host":"…","batch":"<batch id>","attempt":1,"records":[{"kind":"alert","record":{…}},…]}
 *
 * 2xx = delivered. 408, 429 and 5xx, a timeout or a connection error are
 * retried with backoff (at least Retry-After); any other status is a refusal
 * that no retry can change: the batch is dropped and counted. Redirects are
 * not followed. TLS certificates are verified (ca_file adds a CA).
 */
import { readFileSync, statSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { parseDuration } from '../../config/config.js';
import { DeliveryError, DeliveryQueue, QueuedSink, type Batch, type Transport } from '../delivery.js';
import { atKey, deliveryOptions, outputSection, type OutputPlugin } from '../output.js';

const duration = z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, 'a duration like 500ms, 10s, 5m (bare numbers are seconds)')]);

const config = outputSection(
  {
    url: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/i, 'an http:// or https:// URL')
      .nullable()
      .default(null),
    secret_header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'an HTTP header name').default('X-Vigil-Token'),
    secret_file: z.string().min(1).nullable().default(null).describe('file holding the header\'s value (mode 0600; one line, trailing newline ignored)'),
    secret: z.string().min(1).nullable().default(null).describe('the header\'s value inline (prefer secret_file: a config file is often readable)'),
    timeout: duration.default('10s').describe('per request: connecting, sending and the answer'),
    ca_file: z.string().min(1).nullable().default(null).describe('PEM CA bundle trusted in addition to the system\'s'),
  },
  { batch_max_records: 500, linger: '1s' },
).superRefine((c, ctx) => {
  if (c.enabled && !c.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'an enabled webhook needs a url' });
  if (c.secret && c.secret_file) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give secret or secret_file, not both' });
  if (c.secret && /[\r\n]/.test(c.secret)) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a header value cannot hold a line break' });
});

export type WebhookConfig = z.infer<typeof config>;

/** The secret from its file: 0600 (not readable by group or others), one line. */
export function readSecretFile(path: string): string {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) throw new Error(`secret file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${path}`);
  const v = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (!v) throw new Error(`secret file ${path} is empty`);
  if (/[\r\n]/.test(v)) throw new Error(`secret file ${path} holds more than one line`);
  return v;
}

/** Retry-After: seconds or an HTTP date → ms (0 when absent or unreadable) */
export function retryAfterMs(v: string | undefined, now = Date.now()): number {
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, t - now);
}

export class WebhookTransport implements Transport {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly headers: Record<string, string>;

  constructor(
    url: string,
    private readonly opts: { hostname: string; timeoutMs: number; secretHeader?: string; secret?: string; ca?: Buffer },
  ) {
    this.url = new URL(url);
    const https = this.url.protocol === 'https:';
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ...(opts.ca ? { ca: [opts.ca] } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    this.headers = { 'content-type': 'application/json', 'user-agent': 'vigil' };
    if (opts.secretHeader && opts.secret) this.headers[opts.secretHeader.toLowerCase()] = opts.secret;
  }

  send(batch: Batch): Promise<void> {
    const body = Buffer.from(`{"host":${JSON.stringify(this.opts.hostname)},"batch":"${batch.key}","attempt":${batch.attempt},"records":[${batch.items.join(',')}]}`);
    const req = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const where = `${this.url.origin}${this.url.pathname}`;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const r = req(this.url, { method: 'POST', agent: this.agent, headers: { ...this.headers, 'idempotency-key': batch.key, 'content-length': String(body.length) } }, (res: IncomingMessage) => {
        res.resume();
        res.on('error', () => {});
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) return res.on('end', () => finish(null));
        const retry = code === 408 || code === 429 || code >= 500;
        finish(new DeliveryError(`POST ${where}: HTTP ${code}`, retry, retry ? retryAfterMs(res.headers['retry-after']) : undefined));
      });
      const timer = setTimeout(() => {
        r.destroy();
        finish(new DeliveryError(`POST ${where}: no answer within ${this.opts.timeoutMs} ms`, true));
      }, this.opts.timeoutMs);
      r.on('error', (e: NodeJS.ErrnoException) => finish(new DeliveryError(`POST ${where}: ${e.code ?? e.message}`, true)));
      r.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export const webhookOutput: OutputPlugin<WebhookConfig> = {
  name: 'webhook',
  title: 'HTTP(S) POST of JSON batches with a shared-secret header',
  config,
  create(c, ctx) {
    const secret = c.secret_file ? atKey('secret_file', () => readSecretFile(c.secret_file!)) : (c.secret ?? undefined);
    const ca = c.ca_file ? atKey('ca_file', () => readFileSync(c.ca_file!)) : undefined;
    const transport = new WebhookTransport(c.url!, {
      hostname: ctx.hostname,
      timeoutMs: parseDuration(c.timeout),
      secretHeader: c.secret_header,
      ...(secret ? { secret } : {}),
      ...(ca ? { ca } : {}),
    });
    const u = new URL(c.url!);
    const queue = new DeliveryQueue(transport, { ...deliveryOptions(c), ...(ctx.onError ? { onError: (e: Error) => ctx.onError!('webhook', e) } : {}) });
    return new QueuedSink(`webhook:${u.origin}${u.pathname}`, queue, (rec) => `{"kind":"${rec.kind}","record":${rec.json}}`);
  },
};
