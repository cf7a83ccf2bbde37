/**
 * `vigil run --sensors exec,network` as a user runs it: curl to a local HTTP
 * server yields a network_connection with both ends (and the server's accept),
 * on stdout, and a Sigma rule on it alerts live.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { completeLines, firstLine } from './wait.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('vigil run --sensors exec,network', () => {
  it('curl http://127.0.0.1:PORT/ → network_connection with both ends, the accept, and a live alert', async () => {
    // a one-shot HTTP server in its own process, and a rule on its port
    const server = spawn('/usr/bin/python3', ['-c', `
import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.recv(4096)
c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok'); c.close()
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = Number(await firstLine(server.stdout));
    const rules = mkdtempSync(join(tmpdir(), 'vigil-net-rules-'));
    writeFileSync(
      join(rules, 'curl-local.yml'),
      `title: curl to the test port
id: 2d7e0c55-0a7e-4d55-9a1e-3b6f1f0c8e10
status: test
logsource: { product: linux, category: network_connection }
detection:
  selection:
    Image|endswith: /curl
    Initiated: 'true'
    DestinationPort: ${port}
  condition: selection
level: low
`,
    );
    const agent = spawn(process.execPath, [VIGIL, 'run', '--sensors', 'exec,network', '--stdout', '--no-db', '--no-enforce', '--rules', rules, '--stats-interval', '1s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    agent.stdout.on('data', (d) => (stdout += d));
    agent.stderr.on('data', (d) => (stderr += d));
    try {
      await waitFor(() => stderr.includes('vigil running') || agent.exitCode !== null, 30_000);
      expect(stderr).toMatch(/vigil running: sensors exec, network attached/);
      expect(stderr).toMatch(/Sigma rules loaded: 1 active/);

      const curl = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{local_port}', `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 20_000 });
      expect(curl.status).toBe(0);
      const cport = Number(curl.stdout);
      await new Promise((r) => server.once('exit', r));

      // the agent is still writing: a line caught part-way is read at the next poll
      const lines = () => completeLines(stdout).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
      const find = () => lines().find((e) => e.category === 'network_connection' && e.ProcessId === curl.pid && e.vigil.operation === 'connect');
      const findAccept = () => lines().find((e) => e.category === 'network_connection' && e.ProcessId === server.pid && e.vigil.operation === 'accept');
      // the server's accept is another process's record: it may reach stdout after curl's connect and the alert
      await waitFor(() => !!find() && !!findAccept() && lines().some((l) => l.alert), 10_000).catch(() => {});
      expect(find()).toMatchObject({
        Initiated: true,
        Protocol: 'tcp',
        SourceIp: '127.0.0.1',
        SourcePort: cport,
        DestinationIp: '127.0.0.1',
        DestinationPort: port,
        Image: expect.stringMatching(/\/curl$/),
      });
      const accept = findAccept();
      expect(accept).toMatchObject({ Initiated: false, SourceIp: '127.0.0.1', SourcePort: cport, DestinationIp: '127.0.0.1', DestinationPort: port });
      const alert = lines().find((l) => l.alert?.rule_id === '2d7e0c55-0a7e-4d55-9a1e-3b6f1f0c8e10')?.alert;
      expect(alert?.event).toMatchObject({ ProcessId: curl.pid, DestinationPort: port });
    } finally {
      if (server.exitCode === null) server.kill();
      agent.kill('SIGTERM');
      await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.on('exit', r)));
    }
    expect(agent.exitCode).toBe(0);
    expect(stderr).toMatch(/records exec \d+ network \d+/);
    expect(stderr).toMatch(/final: events \d+ .* drops kernel=0 decode=0/);
  });
});
