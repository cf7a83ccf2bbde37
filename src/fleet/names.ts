/**
 * The fleet's names on the NATS server: streams, subjects, key-value buckets,
 * keys, host ids and the headers of a batch message. One place, so the agent,
 * the commands, the bench and docs/fleet.md agree.
 *
 *   vigil.events.<host>.<category>   stream VIGIL_EVENTS  (one message = a batch of events)
 *   vigil.alerts.<host>.<level>      stream VIGIL_ALERTS  (one message = a batch of alerts)
 *   KV vigil-policy                  deny.<id>, sigma, allow.<id> (reserved)
 *   KV vigil-hosts                   <host> → status (heartbeat)
 *
 * Host ids, categories and levels become subject tokens: they are restricted to
 * [A-Za-z0-9_-] so that no value can add a token or a wildcard to a subject.
 */
import { hostname } from 'node:os';

export const EVENTS_STREAM = 'VIGIL_EVENTS';
export const ALERTS_STREAM = 'VIGIL_ALERTS';
export const EVENTS_PREFIX = 'vigil.events';
export const ALERTS_PREFIX = 'vigil.alerts';
export const POLICY_BUCKET = 'vigil-policy';
export const HOSTS_BUCKET = 'vigil-hosts';

export const DENY_PREFIX = 'deny.';
export const SIGMA_KEY = 'sigma';
export const ALLOW_PREFIX = 'allow.';

/** Headers of a batch message (besides Nats-Msg-Id, set through the client's msgID). */
export const H = {
  host: 'Vigil-Host',
  seq: 'Vigil-Seq',
  count: 'Vigil-Count',
  /** epoch ms when the first record of the batch was accepted by the agent */
  t0: 'Vigil-T0',
  kind: 'Vigil-Kind',
} as const;

export type RecordKind = 'event' | 'alert';

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isHostId(s: string): boolean {
  return TOKEN.test(s);
}

/** A host id from a host name: characters outside [A-Za-z0-9_-] become '_', at most 64. */
export function hostIdFrom(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return id || 'unknown';
}

export function defaultHostId(): string {
  return hostIdFrom(hostname());
}

/** A subject token from a value we do not control the spelling of (category, level). */
export function token(v: unknown, fallback = 'other'): string {
  if (typeof v !== 'string') return fallback;
  const t = v.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 64);
  return t || fallback;
}

export function recordSubject(kind: RecordKind, host: string, value: Record<string, unknown>): string {
  return kind === 'event' ? `${EVENTS_PREFIX}.${host}.${token(value.category)}` : `${ALERTS_PREFIX}.${host}.${token(value.level, 'unknown')}`;
}

/** Subject filter for reading: every host or one, every category/level or one. */
export function filterSubject(kind: RecordKind, host?: string, sub?: string): string {
  const prefix = kind === 'event' ? EVENTS_PREFIX : ALERTS_PREFIX;
  if (host !== undefined && !isHostId(host)) throw new Error(`host id "${host}": letters, digits, '_' and '-' only (at most 64)`);
  if (sub !== undefined && !TOKEN.test(sub)) throw new Error(`"${sub}": letters, digits, '_' and '-' only`);
  return `${prefix}.${host ?? '*'}.${sub ?? '*'}`;
}

export function denyKey(id: string): string {
  return `${DENY_PREFIX}${id}`;
}

/** Deny rule ids in the bucket: short, subject-safe. */
export function isRuleId(s: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(s);
}
