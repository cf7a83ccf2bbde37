/**
 * End to end: a real `vigil run` with a Sigma rule and both network outputs
 * (config file: outputs.syslog over TCP to a real rsyslogd on loopback,
 * outputs.webhook to a local server whose first answer is a 500); a real exec
 * triggers the rule. rsyslogd receives the alert as a valid RFC 5424 message
 * and the webhook receives it after the failure and one retry, under the same
 * Idempotency-Key. The stats line names both outputs.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse5424, Rsyslog, waitFor } from '../sinks/rsyslog.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

describe('vigil run with outputs.syslog and outputs.webhook', () => {
  it('a triggered alert reaches rsyslogd as RFC 5424 and the webhook after a 500 and a retry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-outputs-'));
    const rs = await Rsyslog.start();
    const requests: Array<{ headers: IncomingMessage['headers']; body: { batch: string; attempt: number; records: Array<{ kind: string; record: Record<string, unknown> }> }; status: number }> = [];
    const server = createServer((req, res) => {
      let data = '';
      req.on('data', (d) => (data += d));
      req.on('end', () => {
        const status = requests.length === 0 ? 500 : 200;
        requests.push({ headers: req.headers, body: JSON.parse(data), status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const marker = `vigil-outputs-${process.pid}`;
    const rules = join(dir, 'rules');
    mkdirSync(rules);
    writeFileSync(
      join(rules, 'marker.yml'),
      `title: outputs marker\nid: outputs-marker\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    sel:\n        Image|endswith: /true\n        CommandLine|contains: '${marker}'\n    condition: sel\n`,
    );
    writeFileSync(join(dir, 'secret'), 'e2e-token\n', { mode: 0o600 });
    writeFileSync(
      join(dir, 'vigil.yaml'),
      `db: null
rules: [rules]
stats_interval: 0
outputs:
  syslog:
    enabled: true
    transport: tcp
    address: 127.0.0.1:${rs.port}
    min_level: medium
  webhook:
    enabled: true
    url: http://127.0.0.1:${port}/alerts
    secret_file: secret
    retry: { initial: 50ms, max: 200ms }
    queue: { linger: 0ms }
`,
    );
    const agent = spawn(process.execPath, [VIGIL, 'run', '-c', join(dir, 'vigil.yaml'), '--no-enforce'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d) => (stderr += d));
    agent.stdout.resume();
    try {
      await waitFor(() => stderr.includes('vigil running') || agent.exitCode !== null, 30_000, 'the agent to start');
      expect(stderr).toContain('vigil running');
      expect(stderr).toMatch(/"sinks":\[[^\]]*"syslog:tcp:\/\/127\.0\.0\.1:\d+"[^\]]*"webhook:http:\/\/127\.0\.0\.1:\d+\/alerts"/);
      const arg = `${marker}-"]\n<13>1 fake`;
      const got = () => rs.received().filter((r) => r.raw.includes('outputs-marker'));
      const end = Date.now() + 10_000;
      while (got().length === 0 || requests.filter((r) => r.status === 200).length === 0) {
        if (Date.now() > end) break;
        spawnSync('/bin/true', [arg]);
        await new Promise((r) => setTimeout(r, 200));
      }
      // rsyslogd: a valid RFC 5424 message, parsed the same by rsyslogd
      const line = got()[0];
      expect(line, stderr).toBeDefined();
      const p = parse5424(line!.raw);
      expect(line!.version).toBe('1');
      expect(p.pri).toBe(10 * 8 + 3); // authpriv.err: a high alert
      expect(p.appName).toBe('vigil');
      expect(p.msgId).toBe('alert');
      expect(p.sd[0]!.params).toMatchObject({ kind: 'alert', rule_id: 'outputs-marker', level: 'high' });
      expect(p.sd[0]!.params.image).toMatch(/\/true$/);
      const a = JSON.parse(p.msg) as { rule_id: string; event: { CommandLine: string } };
      expect(a.rule_id).toBe('outputs-marker');
      expect(a.event.CommandLine).toContain(marker);
      // webhook: first try 500, the retry 200, the same batch
      expect(requests.length).toBeGreaterThanOrEqual(2);
      expect(requests[0]!.status).toBe(500);
      expect(requests[1]!.status).toBe(200);
      expect(requests[1]!.body.batch).toBe(requests[0]!.body.batch);
      expect(requests[1]!.headers['idempotency-key']).toBe(requests[0]!.body.batch);
      expect(requests[1]!.body.attempt).toBe(2);
      expect(requests[1]!.headers['x-vigil-token']).toBe('e2e-token');
      expect(requests[1]!.body.records[0]).toMatchObject({ kind: 'alert', record: { rule_id: 'outputs-marker' } });
    } finally {
      agent.kill('SIGINT');
      await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.on('exit', r)));
      await rs.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
    // the final stats line names both outputs and their (zero) drops
    expect(stderr).toMatch(/final: .*syslog=0.*webhook=0/);
  }, 60_000);
});
