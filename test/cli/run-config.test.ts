/**
 * `vigil run` reads the one configuration (issue 9, items 6 and 12): paths in a
 * config file are relative to the file, $VIGIL_RULES and $VIGIL_DB count, flags win.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/cli/commands/run.js';

let dir: string;
let cfgFile: string;
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-run-config-'));
  mkdirSync(join(dir, 'etc'));
  cfgFile = join(dir, 'etc', 'vigil.yaml');
  writeFileSync(cfgFile, 'db: state/vigil.db\nevents_out: ../log/events.jsonl\nrules: [rules]\n');
});

describe('vigil run configuration', () => {
  it('paths in the config file are relative to the file (-c)', () => {
    const c = resolveConfig({ config: cfgFile });
    expect(c.db).toBe(join(dir, 'etc/state/vigil.db'));
    expect(c.events_out).toBe(join(dir, 'log/events.jsonl'));
    expect(c.rules).toEqual([join(dir, 'etc/rules')]);
  });

  it('$VIGIL_RULES is honoured, --rules overrides it', () => {
    delete process.env.VIGIL_CONFIG;
    process.env.VIGIL_RULES = join(dir, 'env-rules');
    expect(resolveConfig({}).rules).toEqual([join(dir, 'env-rules')]);
    expect(resolveConfig({ rules: ['/flag/rules'] }).rules).toEqual(['/flag/rules']);
  });

  it('$VIGIL_CONFIG names the file; $VIGIL_DB overrides its db; --no-db wins', () => {
    process.env.VIGIL_CONFIG = cfgFile;
    expect(resolveConfig({}).db).toBe(join(dir, 'etc/state/vigil.db'));
    process.env.VIGIL_DB = join(dir, 'env.db');
    expect(resolveConfig({}).db).toBe(join(dir, 'env.db'));
    expect(resolveConfig({ db: false }).db).toBeNull();
  });
});
