/**
 * One configuration for every command: the defaults, then the config file, then
 * the environment, then the command's flags (each later one wins), defined here
 * once. `vigil run`, `vigil events`, `vigil deny` and `vigil rules` all read
 * their settings through resolveSettings(), so a `db:` line in vigil.yaml or
 * $VIGIL_RULES mean the same to each of them.
 *
 * The config file: `-c FILE`, else $VIGIL_CONFIG, else /etc/vigil/vigil.yaml
 * when it exists. A file that was named (flag or environment) and does not
 * exist is an error. Relative paths in the file are relative to the file's
 * directory; relative paths in flags and the environment to the current one.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError, ConfigSchema, DEFAULT_DB, loadConfig, type Config } from './config.js';

export { DEFAULT_DB };

export const DEFAULT_CONFIG = '/etc/vigil/vigil.yaml';
export const DEFAULT_RULES_DIR = '/etc/vigil/rules';

/** Config keys that hold paths (resolved against the config file's directory). */
export const PATH_KEYS = ['events_out', 'alerts_out', 'db', 'rules', 'field_mapping', 'fleet.creds', 'fleet.state_dir', 'audit_log.chain.key_dir', 'outputs.webhook.secret_file', 'outputs.webhook.ca_file'] as const;

/** Environment variables and the key each sets. */
export const ENV_KEYS: ReadonlyArray<{ name: string; key: string; parse: (v: string) => unknown; doc: string }> = [
  { name: 'VIGIL_DB', key: 'db', parse: (v) => resolve(v), doc: 'the SQLite store (events, alerts, deny rules)' },
  { name: 'VIGIL_RULES', key: 'rules', parse: (v) => v.split(':').filter(Boolean).map((p) => resolve(p)), doc: 'Sigma rule directories, separated by ":"' },
  { name: 'VIGIL_FLEET_URL', key: 'fleet.url', parse: (v) => v, doc: 'NATS server(s) of the fleet' },
  { name: 'VIGIL_FLEET_CREDS', key: 'fleet.creds', parse: (v) => resolve(v), doc: 'fleet credentials file' },
];

/** A value given on the command line for a config key. */
export interface FlagValue {
  key: string;
  value: unknown;
  /** the flag as the user typed it, e.g. "--db" */
  flag: string;
}

export interface SettingsRequest {
  /** -c/--config */
  configFlag?: string | undefined;
  flags?: FlagValue[];
  env?: NodeJS.ProcessEnv;
  /** where the default config file is looked for (tests) */
  defaultConfig?: string;
}

export interface Resolved<T> {
  config: T;
  /** the config file read, if any */
  file: string | null;
  /** where a key's value came from: "default", the file's path, "$VIGIL_DB", "--db" */
  source(key: string): string;
}

function getIn(o: Record<string, unknown>, key: string): unknown {
  return key.split('.').reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
}

function setIn(o: Record<string, unknown>, key: string, v: unknown): void {
  const parts = key.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    cur = cur[p] = next && typeof next === 'object' ? { ...(next as Record<string, unknown>) } : {};
  }
  cur[parts.at(-1)!] = v;
}

/** The config file to read: the flag, else $VIGIL_CONFIG, else the default one when it exists. */
export function configFile(req: SettingsRequest): string | null {
  const env = req.env ?? process.env;
  if (req.configFlag !== undefined) return req.configFlag;
  if (env.VIGIL_CONFIG) return env.VIGIL_CONFIG;
  const def = req.defaultConfig ?? DEFAULT_CONFIG;
  return existsSync(def) ? def : null;
}

/** Paths written in the file, made absolute against its directory. */
function resolvePaths(cfg: Record<string, unknown>, raw: Record<string, unknown>, dir: string): void {
  for (const key of PATH_KEYS) {
    if (getIn(raw, key) === undefined) continue; // a default, not from the file
    const v = getIn(cfg, key);
    const abs = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) ? resolve(dir, p) : p);
    if (Array.isArray(v)) setIn(cfg, key, v.map(abs));
    else if (typeof v === 'string') setIn(cfg, key, abs(v));
  }
}

/**
 * The settings a command runs with. Validation errors name where the value came
 * from: file:line:col for the file, the variable for the environment, the flag.
 */
export function resolveSettings<T = Config>(req: SettingsRequest, schema: z.ZodType<T, unknown> = ConfigSchema as never): Resolved<T> {
  const env = req.env ?? process.env;
  const file = configFile(req);
  const sources = new Map<string, string>();
  let cfg: Record<string, unknown>;
  if (file) {
    let raw: Record<string, unknown> = {};
    cfg = loadConfig(file, schema, (r) => (raw = r && typeof r === 'object' ? (r as Record<string, unknown>) : {})) as Record<string, unknown>;
    resolvePaths(cfg, raw, dirname(resolve(file)));
    for (const k of Object.keys(raw)) sources.set(k, file);
  } else {
    cfg = schema.parse({}) as Record<string, unknown>;
  }
  const merged: Record<string, unknown> = { ...cfg };
  for (const e of ENV_KEYS) {
    const v = env[e.name];
    if (v === undefined || v === '') continue;
    setIn(merged, e.key, e.parse(v));
    sources.set(e.key.split('.')[0]!, `$${e.name}`);
    sources.set(e.key, `$${e.name}`);
  }
  for (const f of req.flags ?? []) {
    if (f.value === undefined) continue;
    setIn(merged, f.key, f.value);
    sources.set(f.key.split('.')[0]!, f.flag);
    sources.set(f.key, f.flag);
  }
  const res = schema.safeParse(merged);
  if (!res.success) {
    const issues = res.error.issues.map((i) => {
      const path = i.path.map(String);
      let src: string | undefined;
      for (let n = path.length; n > 0 && !src; n--) src = sources.get(path.slice(0, n).join('.'));
      return { path: path.join('.'), message: i.message, source: src ?? 'default' };
    });
    // a bad flag is a usage error; a bad value from the environment a configuration error
    const fromFlag = issues.some((i) => i.source.startsWith('-'));
    throw new ConfigError(
      issues.map((i) => `${i.source}: ${i.source.startsWith('-') ? '' : i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'),
      issues.map((i) => ({ path: i.path, message: i.message })),
      fromFlag ? 'usage.bad_value' : 'config.invalid',
    );
  }
  return {
    config: res.data,
    file,
    source: (key: string) => sources.get(key) ?? (file && getIn(cfg, key) !== undefined && sources.has(key.split('.')[0]!) ? file : 'default'),
  };
}
