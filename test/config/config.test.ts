import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, parseDuration, parseSize } from '../../src/config/config.js';

describe('config', () => {
  it('applies defaults', () => {
    const c = parseConfig('');
    expect(c.db).toBe('/var/lib/vigil/vigil.db');
    expect(c.process_table.max_entries).toBe(32768);
    expect(parseSize(c.ring_buffer)).toBe(16 * 1024 * 1024);
  });

  it('names the key and line of a wrong value', () => {
    const text = 'events_out: /tmp/x.jsonl\nprocess_table:\n  max_entries: lots\n';
    try {
      parseConfig(text, 'vigil.yaml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).message).toMatch(/^vigil\.yaml:3:16: process_table\.max_entries: /);
    }
  });

  it('names an unknown key where it stands', () => {
    expect(() => parseConfig('db: /x\nring_bufer: 8MiB\n', 'c.yaml')).toThrow(/^c\.yaml:2:1: ring_bufer: unknown key "ring_bufer"/);
    expect(() => parseConfig('process_table:\n  max_entires: 5\n', 'c.yaml')).toThrow(/c\.yaml:2:3: process_table\.max_entires: unknown key/);
  });

  it('reports YAML syntax errors with a position', () => {
    expect(() => parseConfig('rules: [a, b\n', 'c.yaml')).toThrow(/^c\.yaml:\d+:\d+: /);
  });

  it('parses sizes and durations', () => {
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration(3)).toBe(3000);
  });
});
