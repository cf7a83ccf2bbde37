/**
 * Network sensor: connect, accept, bind and listen on TCP/UDP sockets (IPv4,
 * IPv6) and plaintext DNS on port 53, from syscall tracepoints
 * (bpf/net/net.bpf.c). Events: network_connection (Sysmon event 3 names) and
 * dns_query (Sysmon event 22 names); names from DNS answers become
 * DestinationHostname of the process's later connections.
 */
import { z } from 'zod';
import { BpfError, type BpfObject } from '../../kernel/index.js';
import { checkEnum, VigilHdr, VigilTask } from '../../events/layouts.js';
import { BpfSensorInstance, probeBpfSensor, type BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext, SensorPlugin, SensorStats } from '../sensor.js';
import { decodeNetRecord } from './decode.js';
import { NetEventBuilder, type NetEvent } from './events.js';
import { NET_ENUMS, NET_STAT_NAMES, NetSettingFlags, VigilNetConn, VigilNetDns, VigilNetSettings } from './layouts.js';
import { NET_EVENT_SCHEMAS } from './schema.js';
import { withTaint } from './provenance.js';

export const NetConfig = z
  .object({
    enabled: z.boolean().default(true).describe('network connections (connect, accept, bind, listen) and DNS queries'),
    loopback: z
      .boolean()
      .default(true)
      .describe('report connections whose peer is a loopback address (127.0.0.0/8, ::1); left out in the kernel when false (DNS to a local resolver is still read)'),
    dns: z.boolean().default(true).describe('read plaintext DNS on port 53: dns_query events and DestinationHostname'),
    hostnames_max: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(4096)
      .describe('addresses remembered host-wide with the name they were resolved from (0: no DestinationHostname)'),
  })
  .strict()
  .default({ enabled: true, loopback: true, dns: true, hostnames_max: 4096 });
export type NetConfig = z.infer<typeof NetConfig>;

const LAYOUTS = [VigilHdr, VigilTask, VigilNetConn, VigilNetDns, VigilNetSettings];

/** The DNS programs (left unloaded when dns is off: no cost on send/recv). */
export const DNS_PROGRAMS = ['sendto', 'sendmsg', 'sendmmsg', 'recvfrom', 'recvmsg'].flatMap((s) => [`vigil_dns_${s}_enter`, `vigil_dns_${s}_exit`]);

function checkEnums(obj: BpfObject): void {
  const btf = obj.btf();
  const bad = NET_ENUMS.flatMap((e) => checkEnum(btf, e.name, e.prefix, e.values));
  if (bad.length) {
    throw new BpfError({
      op: `enum check of ${obj.name}`,
      errno: 22,
      hint: `TypeScript constants disagree with the object's BTF: ${bad.map((m) => `${m.enum}: ${m.problem}`).join('; ')}`,
    });
  }
}

function settingsValue(selfPid: number, cfg: NetConfig): Buffer {
  const b = Buffer.alloc(VigilNetSettings.size);
  b.writeUInt32LE(selfPid, VigilNetSettings.fields.self_pid.offset);
  b.writeUInt32LE(cfg.loopback ? NetSettingFlags.LOOPBACK : 0, VigilNetSettings.fields.flags.offset);
  return b;
}

function sensorOptions(cfg: NetConfig, selfPid: number): BpfSensorOptions {
  return {
    object: 'net.bpf.o',
    layouts: LAYOUTS,
    requiredLayouts: LAYOUTS.map((l) => l.name),
    statNames: NET_STAT_NAMES,
    skipPrograms: cfg.dns ? [] : DNS_PROGRAMS,
    beforeLoad: checkEnums,
    afterLoad: (obj) => obj.map('net_settings').update(Buffer.alloc(4), settingsValue(selfPid, cfg)),
  };
}

export class NetSensor extends BpfSensorInstance {
  readonly name = 'network';
  readonly builder: NetEventBuilder;
  private timer: NodeJS.Timeout | null = null;

  constructor(ctx: SensorContext, cfg: NetConfig) {
    super(ctx, withTaint(sensorOptions(cfg, ctx.selfPid), ctx));
    this.builder = new NetEventBuilder(ctx.process, { hostnamesMax: cfg.hostnames_max });
  }

  private emitAll(evs: NetEvent[]): void {
    for (const ev of evs) {
      // a connection's JSON text was written as it was built
      if (ev === this.builder.lastConn) {
        this.events++;
        this.ctx.emit(ev as unknown as Record<string, unknown>, undefined, { json: this.builder.lastConnJson });
      } else this.emit(ev);
    }
  }

  start(): void {
    this.sensor.start((v, b, off, len) => this.emitAll(this.builder.handle(decodeNetRecord(v, b, off, len))));
    // queries whose answer never comes are reported after the timeout even when the ring is quiet
    this.timer = setInterval(() => {
      try {
        this.emitAll(this.builder.expire());
      } catch (e) {
        this.ctx.onHandlerError?.(e);
      }
    }, 1000);
    this.timer.unref();
  }

  override drain(): number {
    const n = super.drain();
    this.emitAll(this.builder.expire());
    return n;
  }

  override stats(): SensorStats {
    return { ...super.stats(), counters: { ...this.builder.counters() } };
  }

  override close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    super.close();
    this.emitAll(this.builder.flush());
  }
}

export const netSensor: SensorPlugin<NetConfig> = {
  name: 'network',
  title: 'network connections (connect, accept, bind, listen; TCP/UDP, IPv4/IPv6) and plaintext DNS queries',
  categories: ['network_connection', 'dns_query'],
  config: NetConfig,
  eventSchemas: NET_EVENT_SCHEMAS,
  layouts: [VigilNetConn, VigilNetDns, VigilNetSettings],
  objects: ['net.bpf.o'],
  create: (ctx, cfg) => new NetSensor(ctx, cfg),
  probe: () => probeBpfSensor(sensorOptions(NetConfig.parse(undefined), process.pid)),
};
