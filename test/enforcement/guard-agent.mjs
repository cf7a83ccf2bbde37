// A minimal agent for the VM tests: runs the exec guard service (what `vigil run`
// does) and prints its events as JSON lines. argv: DB PIN_DIR
import { ExecGuardService } from '../../dist/enforcement/index.js';

const [db, pinDir] = process.argv.slice(2);
const svc = new ExecGuardService({
  db,
  pinDir,
  revalidateMs: 300,
  onEvent: (ev) => process.stdout.write(`${JSON.stringify(ev)}\n`),
  onError: (e) => process.stderr.write(`guard-agent: ${e?.stack ?? e}\n`),
});
const r = svc.start();
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ...r })}\n`);
process.on('SIGTERM', () => { svc.stop(); process.exit(0); });
setInterval(() => {}, 1 << 30);
