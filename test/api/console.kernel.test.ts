/**
 * The web console end to end, in Debian's chromium driven by playwright-core
 * (headless), against a real `vigil run --listen` (real BPF exec sensor, a
 * real Sigma rule, the real SQLite store):
 *   - without the token every API route answers 401 (the routes of docs/openapi.json);
 *   - a triggered Sigma rule shows up live (server-sent events);
 *   - a command line holding <img src=x onerror=...> and </script> renders as
 *     text: the text is visible, no element came from it, the payload's marker
 *     never ran, nothing was fetched from /x; a control injection proves these
 *     checks see markup when there is some;
 *   - the alert's process tree shows command lines;
 *   - event search finds the event and shows it as text;
 *   - a deny rule added in the console (confirmed) is listed by `vigil deny list`,
 *     and removed again from the console;
 *   - /metrics parses with a strict Prometheus text-format parser.
 * Screenshots go to test/.artifacts/ (gitignored). Needs dist/ (npm run build).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parsePrometheusText, sampleValue } from './promtext.js';
import { freePort } from '../ports.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const RULE_ID = '5b0c1d2e-7e57-4c0e-8000-00000000c0de';

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!CHROMIUM)('web console in chromium against vigil run --listen', () => {
  let dir: string;
  let agent: ChildProcess;
  let stderr = '';
  let base: string;
  let token: string;
  let browser: Browser;
  let page: Page;
  const marker = `vigil-console-${process.pid}`;
  const consoleLines: string[] = [];
  const requests: string[] = [];
  const IMG = `<img src=x onerror="console.log('VIGIL_XSS_FIRED');window.__xss=1">`;
  const SCRIPT = `</script><script>window.__xss=2</script>`;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'vigil-console-'));
    mkdirSync(join(dir, 'rules'));
    writeFileSync(
      join(dir, 'rules', 'console.yml'),
      `title: console test ${marker}\nid: ${RULE_ID}\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    sel:\n        CommandLine|contains: '${marker}'\n    condition: sel\n`,
    );
    // a port picked now is bound seconds later (the agent loads BPF first): should another
    // process take it meanwhile, the agent refuses to start (EADDRINUSE) and another port is tried
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      stderr = '';
      // --no-enforce: the exec guard is not this test's subject (and other agents on this host may hold its lock); deny rules are stored
      agent = spawn(process.execPath, [VIGIL, 'run', '--db', join(dir, 'vigil.db'), '--rules', join(dir, 'rules'), '--sensors', 'exec', '--no-enforce', '--stats-interval', '0', '--listen', `127.0.0.1:${port}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const a = agent;
      a.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<void>((r) => (a.exitCode !== null ? r() : a.once('exit', () => r())));
      const listening = await until('vigil run to listen', () => (a.exitCode !== null ? 'exited' : stderr.includes('api: listening on') ? 'listening' : undefined), 60_000);
      if (listening === 'listening') break;
      await exited;
      if (attempt >= 3 || !stderr.includes('EADDRINUSE')) throw new Error(`vigil run exited: ${stderr}`);
    }
    token = readFileSync(join(dir, 'api.token'), 'utf8').trim();
    browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => consoleLines.push(m.text()));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', (d) => void d.accept());
    await page.addInitScript(() => {
      (window as unknown as { __xss: number }).__xss = 0;
      (window as unknown as { __csp: string[] }).__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { __csp: string[] }).__csp.push(e.violatedDirective));
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (agent && agent.exitCode === null) {
      agent.kill('SIGINT');
      await new Promise((r) => agent.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers 401 on every route without the token (the running agent, every route of docs/openapi.json)', async () => {
    const doc = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    let n = 0;
    for (const [p, methods] of Object.entries(doc.paths)) {
      for (const m of Object.keys(methods)) {
        // a wrong token: the real one with its first character changed (one token in 64 starts with 'x')
        const wrong = (token[0] === 'x' ? 'y' : 'x') + token.slice(1);
        for (const h of [{}, { Authorization: `Bearer ${wrong}` }]) {
          const r = await fetch(base + p.replace('{pid}', '1').replace('{id}', '1'), { method: m.toUpperCase(), headers: h });
          expect(r.status, `${m} ${p}`).toBe(401);
          await r.body?.cancel();
        }
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(12);
    const ok = await fetch(`${base}/api/status`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).sensors.exec).toBeDefined();
  });

  it('shows a triggered Sigma rule live, its command line as text (the XSS payload never runs), and its process tree', async () => {
    await page.goto(`${base}/#token=${token}`);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 15_000 }).toBe('live');
    expect(page.url()).not.toContain(token); // the fragment is dropped once the page has the token
    spawnSync('/bin/true', [marker, IMG, SCRIPT]);
    const row = page.locator('#alerts-body tr', { hasText: marker });
    await row.first().waitFor({ timeout: 15_000 });
    const cmd = await row.first().locator('td.cmd').textContent();
    expect(cmd).toContain(IMG);
    expect(cmd).toContain(SCRIPT);
    await expect.poll(() => row.first().locator('td.cmd').isVisible()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'console-live-alert.png'), fullPage: true });

    // the process tree: the alert's process and its ancestors, with their command lines
    await row.first().click();
    await page.locator('#tree-list li.self').waitFor();
    expect(await page.locator('#tree-list li.self').textContent()).toContain(marker);
    const anc = await page.locator('#tree-list li.anc').allTextContents();
    expect(anc.length).toBeGreaterThan(0);
    expect(anc.join('\n')).toContain(process.execPath.split('/').pop()!); // this test's node process spawned it
    await page.screenshot({ path: join(ARTIFACTS, 'console-process-tree.png'), fullPage: true });

    // nothing of the payload became markup or ran
    expect(await page.evaluate(() => document.querySelectorAll('img, #alerts-body script, #tree-list script').length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss: number }).__xss)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expect(consoleLines.filter((l) => /VIGIL_XSS|pageerror/.test(l))).toEqual([]);
    expect(requests.filter((u) => !u.startsWith(base + '/'))).toEqual([]); // no network fetch but this origin
    expect(requests.filter((u) => new URL(u).pathname === '/x')).toEqual([]);
  });

  it('the XSS checks see markup when there is some (control: the payload injected as HTML on purpose)', async () => {
    await page.evaluate((html) => {
      const d = document.createElement('div');
      d.id = 'control';
      d.innerHTML = html; // the defect the console must never have, done here on purpose
      document.body.append(d);
    }, IMG);
    expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(1); // the DOM check catches it
    await expect.poll(() => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp.length)).toBeGreaterThan(0); // and CSP refused its handler
    expect(await page.evaluate(() => (window as unknown as { __xss: number }).__xss)).toBe(0);
    await page.evaluate(() => document.getElementById('control')!.remove());
  });

  it('finds the event in event search and shows it as text', async () => {
    await page.click('nav button[data-tab="events"]');
    await page.fill('#q-field', `CommandLine~*${marker}*`);
    await page.fill('#q-since', '10m');
    const row = page.locator('#events-body tr', { hasText: marker });
    await until('the event in the store', async () => {
      await page.click('#search-form button[type="submit"]');
      await page.waitForTimeout(300);
      return (await row.count()) > 0 || undefined;
    });
    expect(await row.first().locator('td.cmd').textContent()).toContain(IMG);
    expect(await page.locator('#search-status').textContent()).toMatch(/^\d+ events? in \d+ ms/);
    expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'console-event-search.png'), fullPage: true });
  });

  it('adds a deny rule (confirmed) that vigil deny list shows, and removes it', async () => {
    const target = `/usr/local/bin/vigil-console-test-${process.pid}`;
    const denyList = () => {
      const r = spawnSync(process.execPath, [VIGIL, 'deny', 'list', '--db', join(dir, 'vigil.db'), '--json'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { rules: Array<{ path: string; comment: string | null }> }).rules;
    };
    await page.click('nav button[data-tab="guard"]');
    await page.locator('#guard-status').filter({ hasText: 'enforcement' }).waitFor();
    await page.fill('#deny-path', target);
    await page.fill('#deny-comment', 'from the console');
    await page.click('#deny-add');
    await page.locator('#deny-body tr', { hasText: target }).waitFor();
    expect(denyList()).toEqual([expect.objectContaining({ path: target, comment: 'from the console' })]);
    await page.screenshot({ path: join(ARTIFACTS, 'console-deny-rules.png'), fullPage: true });
    await page.locator('#deny-body tr', { hasText: target }).locator('button.rm').click();
    await page.locator('#deny-msg', { hasText: 'removed rule' }).waitFor();
    expect(await page.locator('#deny-body tr', { hasText: target }).count()).toBe(0);
    expect(denyList()).toEqual([]);
    // the same request from another origin, with the token: refused
    const r = await fetch(`${base}/api/deny`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: JSON.stringify({ path: target }) });
    expect(r.status).toBe(403);
    expect(denyList()).toEqual([]);
  });

  it('shows sensor and rule health with drop counters', async () => {
    await page.click('nav button[data-tab="health"]');
    await page.locator('#sensors-body tr', { hasText: 'exec' }).waitFor();
    expect(await page.locator('#drops').textContent()).toMatch(/drops: kernel \d+, decode \d+, sinks \d+/);
    await page.locator('#rules-summary', { hasText: 'active rules' }).waitFor();
    expect(await page.locator('#rules-summary').textContent()).toMatch(/^1 active rules/);
    await page.screenshot({ path: join(ARTIFACTS, 'console-health.png'), fullPage: true });
  });

  it('serves /metrics that a strict Prometheus text-format parser reads, with the alert counted', async () => {
    const r = await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const fams = parsePrometheusText(await r.text());
    expect(sampleValue(fams, 'vigil_alerts_total', { rule_id: RULE_ID, level: 'high' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(fams, 'vigil_events_total', { category: 'process_creation' })).toBeGreaterThan(0);
    expect(sampleValue(fams, 'vigil_ring_buffer_size_bytes', { sensor: 'exec' })).toBeGreaterThan(0);
    expect(fams.get('vigil_rule_eval_seconds')?.type).toBe('histogram');
    expect(sampleValue(fams, 'vigil_rule_eval_seconds_count')).toBeGreaterThan(0);
    expect(sampleValue(fams, 'vigil_drops_total', { stage: 'kernel', source: 'exec' })).toBe(0);
  });
});
