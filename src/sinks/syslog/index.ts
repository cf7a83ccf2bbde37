/**
 * The syslog output (outputs.syslog; docs/outputs.md): RFC 5424 messages
 * (format.ts) over a local Unix datagram socket, UDP or octet-counted TCP
 * (transport.ts), through the shared delivery queue.
 */
import { z } from 'zod';
import { parseDuration } from '../../config/config.js';
import { DeliveryQueue, QueuedSink, type Transport } from '../delivery.js';
import { atKey, deliveryOptions, outputSection, type OutputPlugin } from '../output.js';
import { FACILITIES, formatSyslog, type Facility } from './format.js';
import { parseHostPort, TcpTransport, UdpTransport, UnixTransport } from './transport.js';

const duration = z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, 'a duration like 500ms, 10s, 5m (bare numbers are seconds)')]);

const config = outputSection(
  {
    transport: z.enum(['unix', 'udp', 'tcp']).default('unix').describe('unix: a local datagram socket (/dev/log); udp; tcp with octet-counted framing'),
    address: z.string().min(1).nullable().default(null).describe('socket path for unix (default /dev/log), HOST:PORT for udp and tcp (default 127.0.0.1:514)'),
    facility: z.enum(Object.keys(FACILITIES) as [Facility, ...Facility[]]).default('authpriv'),
    app_name: z.string().regex(/^[\x21-\x7e]{1,48}$/, 'printable ASCII without spaces, at most 48 characters').default('vigil'),
    hostname: z.string().regex(/^[\x21-\x7e]{1,255}$/, 'printable ASCII without spaces, at most 255 characters').nullable().default(null).describe('HOSTNAME in each message (default: this host\'s name)'),
    encoding: z.enum(['ascii', 'utf8']).default('ascii').describe('MSG as \\u-escaped ASCII JSON (no BOM), or BOM + UTF-8 JSON'),
    max_message_bytes: z.number().int().min(480).max(1024 * 1024).default(8192),
    timeout: duration.default('10s').describe('tcp: connecting and each write'),
  },
  { batch_max_records: 100, linger: '0ms' },
).superRefine((c, ctx) => {
  if (c.transport !== 'unix' && c.address !== null && !parseHostPort(c.address))
    ctx.addIssue({ code: 'custom', path: ['address'], message: `${c.transport} needs HOST:PORT (e.g. 127.0.0.1:514 or [::1]:514)` });
  if (c.transport === 'udp' && c.max_message_bytes > 65_000)
    ctx.addIssue({ code: 'custom', path: ['max_message_bytes'], message: 'a UDP datagram holds at most 65,000 bytes here' });
});

export type SyslogConfig = z.infer<typeof config>;

/** "unix:/dev/log", "udp://127.0.0.1:514", "tcp://[::1]:514" */
export function syslogTarget(c: SyslogConfig): string {
  const addr = c.address ?? (c.transport === 'unix' ? '/dev/log' : '127.0.0.1:514');
  return c.transport === 'unix' ? `unix:${addr}` : `${c.transport}://${addr}`;
}

export const syslogOutput: OutputPlugin<SyslogConfig> = {
  name: 'syslog',
  title: 'RFC 5424 syslog to /dev/log, UDP or TCP (octet-counted)',
  config,
  create(c, ctx) {
    const addr = c.address ?? (c.transport === 'unix' ? '/dev/log' : '127.0.0.1:514');
    let transport: Transport;
    if (c.transport === 'unix') transport = atKey('address', () => new UnixTransport(addr));
    else {
      const to = parseHostPort(addr)!;
      transport = c.transport === 'udp' ? new UdpTransport(to) : new TcpTransport(to, parseDuration(c.timeout));
    }
    const name = `syslog:${syslogTarget(c)}`;
    const fmt = { facility: c.facility, hostname: c.hostname ?? ctx.hostname, appName: c.app_name, procId: String(process.pid), encoding: c.encoding, maxBytes: c.max_message_bytes };
    const queue = new DeliveryQueue(transport, { ...deliveryOptions(c), ...(ctx.onError ? { onError: (e: Error) => ctx.onError!('syslog', e) } : {}) });
    return new QueuedSink(name, queue, (rec) => formatSyslog(rec, fmt));
  },
};
