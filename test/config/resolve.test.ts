/**
 * One configuration for every command (issue 9, items 6 and 12): defaults, then
 * the config file, then the environment, then flags; paths in the file are
 * relative to the file.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_DB } from '../../src/config/config.js';
import { resolveSettings, PATH_KEYS } from '../../src/config/resolve.js';
import { AgentConfigSchema } from '../../src/agent/config.js';

let dir: string;
let cfgFile: string;
const noDefault = { defaultConfig: '/nonexistent/vigil.yaml' };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-resolve-'));
  mkdirSync(join(dir, 'etc'));
  cfgFile = join(dir, 'etc', 'vigil.yaml');
  writeFileSync(
    cfgFile,
    [
      'db: state/vigil.db',
      'events_out: ../log/events.jsonl',
      'alerts_out: /abs/alerts.jsonl',
      'rules: [rules, /srv/rules]',
      'field_mapping: mapping.yaml',
      'fleet:',
      '  creds: fleet.creds',
      '  state_dir: fleet',
      '',
    ].join('\n'),
  );
});

describe('resolveSettings', () => {
  it('paths in the config file are relative to the file, not to the current directory', () => {
    const c = resolveSettings({ configFlag: cfgFile, env: {}, ...noDefault }, AgentConfigSchema).config;
    const etc = join(dir, 'etc');
    expect(c.db).toBe(join(etc, 'state/vigil.db'));
    expect(c.events_out).toBe(join(dir, 'log/events.jsonl'));
    expect(c.alerts_out).toBe('/abs/alerts.jsonl');
    expect(c.rules).toEqual([join(etc, 'rules'), '/srv/rules']);
    expect(c.field_mapping).toBe(join(etc, 'mapping.yaml'));
    expect(c.fleet.creds).toBe(join(etc, 'fleet.creds'));
    expect(c.fleet.state_dir).toBe(join(etc, 'fleet'));
    // every path key of the list is a key of the schema
    for (const k of PATH_KEYS) expect(k.split('.')[0]! in AgentConfigSchema.shape, k).toBe(true);
  });

  it('file < environment < flags, and each value says where it came from', () => {
    const env = { VIGIL_DB: 'env.db', VIGIL_RULES: '/r1:/r2' };
    const r = resolveSettings({ configFlag: cfgFile, env, ...noDefault }, AgentConfigSchema);
    expect(r.config.db).toBe(resolve('env.db'));
    expect(r.config.rules).toEqual(['/r1', '/r2']);
    expect(r.source('db')).toBe('$VIGIL_DB');
    expect(r.source('events_out')).toBe(cfgFile);
    const f = resolveSettings({ configFlag: cfgFile, env, flags: [{ key: 'db', value: 'flag.db', flag: '--db' }], ...noDefault }, AgentConfigSchema);
    expect(f.config.db).toBe('flag.db');
    expect(f.source('db')).toBe('--db');
    const none = resolveSettings({ env: {}, ...noDefault }, AgentConfigSchema);
    expect(none.config.db).toBe(DEFAULT_DB);
    expect(none.source('db')).toBe('default');
    expect(none.file).toBeNull();
  });

  it('$VIGIL_CONFIG names the file; the default file is read when it exists', () => {
    expect(resolveSettings({ env: { VIGIL_CONFIG: cfgFile }, ...noDefault }, AgentConfigSchema).config.db).toBe(join(dir, 'etc/state/vigil.db'));
    expect(resolveSettings({ env: {}, defaultConfig: cfgFile }, AgentConfigSchema).config.db).toBe(join(dir, 'etc/state/vigil.db'));
  });

  it('a config file that was named and does not exist is an error', () => {
    expect(() => resolveSettings({ configFlag: join(dir, 'nope.yaml'), env: {}, ...noDefault })).toThrow(ConfigError);
    expect(() => resolveSettings({ env: { VIGIL_CONFIG: join(dir, 'nope.yaml') }, ...noDefault })).toThrow(/nope\.yaml: cannot read the config file: no such file/);
  });

  it('a bad value names its source: the flag (a usage error) or the variable', () => {
    try {
      resolveSettings({ env: {}, flags: [{ key: 'stats_interval', value: 'often', flag: '--stats-interval' }], ...noDefault }, AgentConfigSchema);
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).code).toBe('usage.bad_value');
      expect((e as Error).message).toMatch(/^--stats-interval: /);
    }
    try {
      resolveSettings({ env: { VIGIL_FLEET_URL: 'x' }, flags: [{ key: 'fleet.host_id', value: 'a b', flag: '--fleet-host' }], ...noDefault }, AgentConfigSchema);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/^--fleet-host: /);
    }
  });
});
