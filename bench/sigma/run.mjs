#!/usr/bin/env node
// Sigma engine throughput on one core.
//
//   npx tsc -p tsconfig.json && taskset -c 0 node bench/sigma/run.mjs [--seconds 3] [--json]
//
// Rules: every SigmaHQ rules/linux rule with a vigil event source (process_creation,
// file_event, network_connection; copy in test/fixtures/sigma, DRL 1.1).
// Events: a generated, realistic mix (70% process_creation, 15% file_event, 15%
// network_connection; ~1% of them malicious, taken from the test fixtures).
// Three runs over the same events in the same process:
//   baseline  - the engine with no rules (dispatch cost only)
//   naive     - rule-by-rule interpreter (src/detection/naive.ts)
//   compiled  - the engine (category index + Aho-Corasick gates + closures)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NaiveEvaluator, RuleSet, listRuleFiles, parseRuleFile } from '../../dist/detection/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const RULES = `${repo}test/fixtures/sigma/rules/linux`;
const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 3;
const asJson = args.includes('--json');

let seed = 0x5eed;
const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
const pick = (a) => a[Math.floor(rnd() * a.length)];

const users = ['alice', 'bob', 'www-data', 'postgres', 'root', 'deploy'];
const dirs = ['/home/alice/src/app', '/var/www/html', '/srv/data', '/home/bob', '/opt/app', '/'];
const files = ['main.go', 'README.md', 'package.json', 'index.ts', 'config.yaml', 'data.csv', 'app.log', 'notes.txt'];
const procs = [
  ['/usr/bin/ls', () => `ls -la ${pick(dirs)}`],
  ['/usr/bin/git', () => `git ${pick(['status', 'diff --stat', 'log --oneline -n 20', 'fetch origin', 'commit -m "fix: handle empty input"'])}`],
  ['/usr/bin/node', () => `node /opt/app/server.js --port ${3000 + Math.floor(rnd() * 100)} --env production`],
  ['/usr/bin/python3', () => `python3 /srv/app/manage.py ${pick(['runserver 0.0.0.0:8000', 'migrate', 'collectstatic --noinput', 'test accounts'])}`],
  ['/usr/bin/grep', () => `grep -rn "${pick(['TODO', 'error', 'password', 'import'])}" ${pick(dirs)}`],
  ['/usr/bin/cat', () => `cat ${pick(dirs)}/${pick(files)}`],
  ['/usr/bin/bash', () => `bash -c "cd ${pick(dirs)} && make -j4 && ./run-tests.sh --verbose"`],
  ['/usr/bin/sh', () => `/bin/sh -c /usr/lib/update-notifier/apt-check --human-readable`],
  ['/usr/bin/docker', () => `docker ${pick(['ps -a', 'images', 'logs -f web', 'compose up -d'])}`],
  ['/usr/bin/ssh', () => `ssh -o BatchMode=yes deploy@10.0.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)} uptime`],
  ['/usr/bin/curl', () => `curl -s https://api.github.com/repos/org/repo/releases/latest`],
  ['/usr/bin/systemctl', () => `systemctl status ${pick(['nginx', 'postgresql', 'docker', 'cron'])}`],
  ['/usr/bin/ps', () => `ps aux --sort=-%cpu`],
  ['/usr/bin/find', () => `find ${pick(dirs)} -name "*.log" -mtime +7`],
  ['/usr/bin/tar', () => `tar czf /backup/${pick(['www', 'db', 'home'])}-2026-11-02.tar.gz ${pick(dirs)}`],
  ['/usr/lib/postgresql/15/bin/postgres', () => `postgres: checkpointer`],
  ['/usr/sbin/cron', () => `/usr/sbin/CRON -f -P`],
];
const parents = [['/usr/bin/bash', '-bash'], ['/usr/sbin/sshd', 'sshd: alice [priv]'], ['/usr/lib/systemd/systemd', '/sbin/init'], ['/usr/bin/node', 'node /opt/app/server.js'], ['/usr/sbin/cron', '/usr/sbin/CRON -f -P']];
const hosts = ['github.com', 'registry.npmjs.org', 'api.stripe.com', 'deb.debian.org', 'pypi.org', 'example.org'];

let pid = 1000;
function event() {
  const k = rnd();
  const ts = new Date(Date.parse('2026-11-02T10:00:00Z') + pid * 7).toISOString();
  const user = pick(users);
  const [pImg, pCmd] = pick(parents);
  pid++;
  if (k < 0.7) {
    const [img, cmd] = pick(procs);
    return { category: 'process_creation', timestamp: ts, ProcessId: pid, ParentProcessId: pid - 7, Image: img, CommandLine: cmd(), ParentImage: pImg, ParentCommandLine: pCmd, User: user, LogonId: user === 'root' ? 0 : 1000, CurrentDirectory: pick(dirs), ProcessGuid: `{${pid}-guid}` };
  }
  if (k < 0.85) {
    return { category: 'file_event', timestamp: ts, ProcessId: pid, Image: pick(procs)[0], TargetFilename: `${pick(dirs)}/${pick(files)}`, User: user };
  }
  return { category: 'network_connection', timestamp: ts, ProcessId: pid, Image: pick(procs)[0], DestinationHostname: pick(hosts), DestinationIp: `140.82.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}`, DestinationPort: pick([443, 80, 5432, 22]), SourceIp: '10.0.0.5', SourcePort: 40000 + Math.floor(rnd() * 20000), Protocol: 'tcp', Initiated: 'true', User: user };
}

const N = 20_000;
const events = Array.from({ length: N }, event);
const malicious = JSON.parse(readFileSync(`${repo}test/detection/fixtures/sigmahq-linux-cases.json`, 'utf8')).cases.map((c) => c.positive);
for (let i = 0; i < N / 100; i++) events[Math.floor(rnd() * N)] = malicious[i % malicious.length];

const files2 = listRuleFiles(RULES);
const docs = files2.flatMap((f) => parseRuleFile(f, readFileSync(f, 'utf8')).docs);
const compiled = new RuleSet(docs);
const empty = new RuleSet([]);
const naive = new NaiveEvaluator(docs.filter((d) => d.kind === 'rule'));

function measure(name, fn) {
  // warm up, then run whole passes over the events for `seconds`
  for (let i = 0; i < 3000; i++) fn(events[i % N]);
  let n = 0;
  let alerts = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(Math.round(seconds * 1e9));
  let el = 0n;
  do {
    for (let i = 0; i < N; i++) alerts += fn(events[i]).length;
    n += N;
    el = process.hrtime.bigint() - t0;
  } while (el < limit);
  const secs = Number(el) / 1e9;
  return { name, events: n, seconds: secs, eventsPerSec: n / secs, alertsPerPass: alerts / (n / N) };
}

const results = [
  measure('baseline (no rules)', (e) => empty.evaluate(e)),
  measure('naive rule-by-rule', (e) => naive.evaluate(e)),
  measure('compiled engine', (e) => compiled.evaluate(e)),
];
const [base, nv, cp] = results;
if (nv.alertsPerPass !== cp.alertsPerPass) {
  console.error(`MISMATCH: naive ${nv.alertsPerPass} alerts/pass vs compiled ${cp.alertsPerPass}`);
  process.exitCode = 1;
}
const info = {
  node: process.version,
  cpu: (await import('node:os')).cpus()[0]?.model,
  rules: compiled.activeCount,
  events: N,
  malicious_share: '1%',
  engine: compiled.engineStats(),
  results: results.map((r) => ({ ...r, eventsPerSec: Math.round(r.eventsPerSec) })),
  speedup_vs_naive: +(cp.eventsPerSec / nv.eventsPerSec).toFixed(1),
  compiled_vs_baseline: +(cp.eventsPerSec / base.eventsPerSec).toFixed(3),
};
if (asJson) console.log(JSON.stringify(info, null, 2));
else {
  console.log(`Sigma engine, ${compiled.activeCount} SigmaHQ linux rules, ${N} events (1% malicious), node ${process.version}, one core`);
  for (const r of results) console.log(`  ${r.name.padEnd(22)} ${Math.round(r.eventsPerSec).toLocaleString('en').padStart(12)} events/s   (${(1e6 / r.eventsPerSec).toFixed(2)} µs/event, ${r.alertsPerPass} alerts per pass)`);
  console.log(`  compiled / naive: ${info.speedup_vs_naive}x   compiled / baseline: ${info.compiled_vs_baseline}`);
}
