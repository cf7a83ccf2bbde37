/**
 * The fleet's streams and buckets. `vigil fleet init` creates or updates them with
 * sizes chosen by the operator (docs/fleet.md); agents and the other commands only
 * create what is missing, with the defaults below, and never change what exists.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { ALERTS_PREFIX, ALERTS_STREAM, EVENTS_PREFIX, EVENTS_STREAM, HOSTS_BUCKET, POLICY_BUCKET } from './names.js';

const NS_PER_MS = 1_000_000;
const DAY_MS = 86_400_000;

export interface FleetLimits {
  eventsMaxAgeMs: number;
  /** -1 = no limit */
  eventsMaxBytes: number;
  alertsMaxAgeMs: number;
  alertsMaxBytes: number;
  /** the window in which a repeated Nats-Msg-Id is dropped as a duplicate */
  duplicateWindowMs: number;
  replicas: number;
  /** largest batch message the streams take */
  maxMsgBytes: number;
  policyHistory: number;
}

export const DEFAULT_LIMITS: FleetLimits = {
  eventsMaxAgeMs: 7 * DAY_MS,
  eventsMaxBytes: -1,
  alertsMaxAgeMs: 90 * DAY_MS,
  alertsMaxBytes: -1,
  duplicateWindowMs: 2 * 60_000,
  replicas: 1,
  maxMsgBytes: 1024 * 1024,
  policyHistory: 10,
};

export function streamConfigs(l: FleetLimits = DEFAULT_LIMITS): Array<Partial<StreamConfig> & { name: string }> {
  const common = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: l.replicas,
    duplicate_window: l.duplicateWindowMs * NS_PER_MS,
    max_msg_size: l.maxMsgBytes,
  };
  return [
    { ...common, name: EVENTS_STREAM, subjects: [`${EVENTS_PREFIX}.>`], max_age: l.eventsMaxAgeMs * NS_PER_MS, max_bytes: l.eventsMaxBytes, description: 'vigil events, batches per host and category' },
    { ...common, name: ALERTS_STREAM, subjects: [`${ALERTS_PREFIX}.>`], max_age: l.alertsMaxAgeMs * NS_PER_MS, max_bytes: l.alertsMaxBytes, description: 'vigil alerts, batches per host and level' },
  ];
}

function isNotFound(e: unknown): boolean {
  return (e as { code?: number }).code === 10059 || /stream not found/i.test(String((e as Error)?.message));
}

/** Create the streams that do not exist; with `update`, also make existing ones match. */
export async function ensureStreams(nc: NatsConnection, opts: { limits?: FleetLimits; update?: boolean } = {}): Promise<{ created: string[]; updated: string[] }> {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const created: string[] = [];
  const updated: string[] = [];
  for (const cfg of streamConfigs(opts.limits)) {
    let exists = true;
    try {
      await jsm.streams.info(cfg.name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      exists = false;
    }
    if (!exists) {
      try {
        await jsm.streams.add(cfg);
        created.push(cfg.name);
      } catch (e) {
        if (!/already in use/i.test(String((e as Error).message))) throw e;
      }
    } else if (opts.update) {
      const { name, ...rest } = cfg;
      await jsm.streams.update(name, rest);
      updated.push(name);
    }
  }
  return { created, updated };
}

export async function policyBucket(nc: NatsConnection, l: FleetLimits = DEFAULT_LIMITS): Promise<KV> {
  return new Kvm(nc).create(POLICY_BUCKET, { history: l.policyHistory, replicas: l.replicas, description: 'vigil fleet policy: deny.<id>, sigma' } as never);
}

export async function hostsBucket(nc: NatsConnection, l: FleetLimits = DEFAULT_LIMITS): Promise<KV> {
  return new Kvm(nc).create(HOSTS_BUCKET, { history: 1, replicas: l.replicas, description: 'vigil host status (heartbeats)' } as never);
}
