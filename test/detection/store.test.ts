/**
 * RuleStore / createDetector: directory watching (inotify), debounced reload, last good
 * version kept when an edit breaks a file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDetector, type Alert, type Detector, type ReloadInfo, type RuleError } from '../../src/detection/index.js';

const rule = (id: string, image: string): string => `title: rule ${id}
id: ${id}
level: high
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '${image}'
    condition: selection
`;

const ev = (image: string): Record<string, unknown> => ({ category: 'process_creation', timestamp: '2026-11-02T10:00:00Z', Image: image });

function nextReload(d: Detector, ms = 5000): Promise<ReloadInfo> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reload within ' + ms + 'ms')), ms);
    d.store.once('reload', (info: ReloadInfo) => {
      clearTimeout(t);
      resolve(info);
    });
  });
}

let det: Detector | undefined;
afterEach(() => det?.close());

describe('rule store', () => {
  it('loads, watches, reloads on change, keeps the last good version of a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-store-'));
    writeFileSync(join(dir, 'a.yml'), rule('a', '/nc'));
    const alerts: Alert[] = [];
    const errors: RuleError[] = [];
    det = createDetector({ ruleDirs: [dir], watch: true, debounceMs: 50, onAlert: (a) => alerts.push(a), onError: (e) => errors.push(e) });
    expect(det.stats().rules).toBe(1);
    expect(det.evaluate(ev('/bin/nc')).map((a) => a.rule_id)).toEqual(['a']);
    expect(alerts).toHaveLength(1);

    // edit: the rule now targets socat
    let p = nextReload(det);
    writeFileSync(join(dir, 'a.yml'), rule('a', '/socat'));
    await p;
    expect(det.evaluate(ev('/bin/nc'))).toEqual([]);
    expect(det.evaluate(ev('/usr/bin/socat')).map((a) => a.rule_id)).toEqual(['a']);

    // a broken edit keeps the previous version and reports the error
    p = nextReload(det);
    writeFileSync(join(dir, 'a.yml'), rule('a', '/socat').replace('condition: selection', 'condition: selection and'));
    const info = await p;
    expect(info.errors).toHaveLength(1);
    expect(info.errors[0]!.message).toMatch(/keeping the previous version/);
    expect(errors.some((e) => e.path.endsWith('a.yml') && e.line === 10)).toBe(true);
    expect(det.evaluate(ev('/usr/bin/socat')).map((a) => a.rule_id)).toEqual(['a']);

    // new file in a new subdirectory
    p = nextReload(det);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'b.yml'), rule('b', '/socat'));
    await p;
    // mkdir and the write may arrive as separate batches (the second one later on a busy machine)
    for (const end = Date.now() + 10_000; det.stats().rules < 2 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    expect(det.evaluate(ev('/usr/bin/socat')).map((a) => a.rule_id)).toEqual(['a', 'b']);

    // deletion removes the rules of the file (a late reload of the new directory may come first)
    p = nextReload(det);
    rmSync(join(dir, 'a.yml'));
    await p;
    for (const end = Date.now() + 10_000; det.stats().rules !== 1 && Date.now() < end; ) await nextReload(det, end - Date.now()).catch(() => undefined);
    expect(det.evaluate(ev('/usr/bin/socat')).map((a) => a.rule_id)).toEqual(['b']);
  });

  it('evaluate never throws, even on hostile events', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-store-'));
    writeFileSync(join(dir, 'a.yml'), rule('a', '/nc'));
    det = createDetector({ ruleDirs: [dir] });
    const hostile: Record<string, unknown> = { category: 'process_creation' };
    Object.defineProperty(hostile, 'Image', { get: () => { throw new Error('boom'); }, enumerable: true });
    expect(det.evaluate(hostile)).toEqual([]);
    expect(det.stats().evalErrors).toBe(1);
    expect(det.evaluate(ev('/bin/nc'))).toHaveLength(1);
  });
});
