/**
 * uid → user name from /etc/passwd, cached. A miss re-reads the file at most
 * once per `refreshMs` (new users appear without restarting the agent).
 */
import { readFileSync } from 'node:fs';

export class UserNames {
  private names = new Map<number, string>();
  private loadedAt = 0;

  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly refreshMs = 5000,
  ) {
    this.load();
  }

  name(uid: number): string {
    let n = this.names.get(uid);
    if (n === undefined && Date.now() - this.loadedAt > this.refreshMs) {
      this.load();
      n = this.names.get(uid);
    }
    return n ?? String(uid);
  }

  private load(): void {
    this.loadedAt = Date.now();
    try {
      const m = new Map<number, string>();
      for (const line of readFileSync(this.passwdPath, 'utf8').split('\n')) {
        const parts = line.split(':');
        if (parts.length < 3) continue;
        const uid = Number(parts[2]);
        if (Number.isInteger(uid) && !m.has(uid)) m.set(uid, parts[0]!);
      }
      this.names = m;
    } catch {
      /* keep what we had */
    }
  }
}
