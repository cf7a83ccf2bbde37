/**
 * `vigil rules` output for a person escapes control characters that come from
 * rule files (titles, ids, paths, messages) (issue 9, item 13); JSON output is
 * JSON.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vigil } from './harness.js';

describe('vigil rules, human output', () => {
  it('rules list and rules test show a title with escape sequences escaped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-rules-out-'));
    writeFileSync(
      join(dir, 'r.yml'),
      'title: "evil \\e]0;owned\\a \\e[2J title"\nid: 0f0f0f0f-0000-4000-8000-000000000013\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    sel:\n        Image|endswith: /true\n    condition: sel\n',
    );
    const list = await vigil(['rules', 'list', '--rules', dir]);
    expect(list.code).toBe(0);
    expect(list.out).toContain('evil \\x1b]0;owned\\x07 \\x1b[2J title');
    expect(list.out + list.err).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    const json = await vigil(['rules', 'list', '--rules', dir, '--json']);
    expect(JSON.parse(json.out)[0].title).toBe('evil \x1b]0;owned\x07 \x1b[2J title');
    const ev = join(dir, 'ev.jsonl');
    writeFileSync(ev, `${JSON.stringify({ category: 'process_creation', timestamp: '2026-11-29T10:00:00.000000Z', Image: '/bin/true', CommandLine: 'true' })}\n`);
    const test = await vigil(['rules', 'test', '--rules', dir, '--events', ev]);
    expect(test.out).toContain('[high] evil \\x1b]0;owned\\x07 \\x1b[2J title');
    expect(test.out + test.err).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
  });
});
