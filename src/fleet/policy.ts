/**
 * Policy from the fleet: the agent's side of the vigil-policy bucket.
 *
 * On every (re)connect it reads the whole bucket (keys + last values, and the
 * bucket's revision), then watches it from the next revision. Each value is
 * validated; a malformed one is refused with a logged error and the previous
 * value of that key stays in force. The accepted state is applied:
 *   - deny.<id> → rules in the local deny rule store (src/enforcement RulesStore),
 *     tagged "[fleet <id>]" in their comment; the running exec guard picks them up
 *     (onDenyChanged → revalidate). Rules added locally with `vigil deny` are left alone.
 *   - sigma → files in `<state>/sigma`, a directory the agent's Sigma rule store
 *     watches (hot reload).
 * and saved as the last good policy (`<state>/policy.json`), which a start
 * without the server applies again. The revision reported is the bucket revision
 * this state corresponds to.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from 'pino';
import { RulesStore, makeRule } from '../enforcement/index.js';
import { ALLOW_PREFIX, DENY_PREFIX, SIGMA_KEY, isRuleId } from './names.js';
import { decodeSigmaSet, denyDigest, lintSigmaSet, parseDenyValue, sigmaDigest, type DenyValue } from './policy-values.js';
import { policyBucket } from './setup.js';

export interface PolicyAgentOptions {
  stateDir: string;
  /** the deny rule store the exec guard reads (the agent's db) */
  rulesDb: string;
  log: Logger;
  onDenyChanged?: () => void;
  /** resync period as a safety net besides the watch (default 5 min) */
  resyncMs?: number;
}

interface DenyState {
  rev: number;
  value: DenyValue;
  digest: string;
}

interface Applied {
  localId: number;
  digest: string;
}

export interface Rejection {
  key: string;
  revision: number;
  error: string;
  at: string;
}

export interface PolicyStatus {
  /** bucket revision of the policy in force */
  revision: number;
  /** where it came from: the server, or the last good policy on disk (offline start) */
  source: 'server' | 'disk' | 'none';
  deny_rules: number;
  sigma: { revision: number; files: number; digest: string } | null;
  rejected: Rejection[];
  applied_at: string | null;
}

interface SavedPolicy {
  format: 1;
  revision: number;
  deny: Record<string, { rev: number; value: DenyValue; local_id: number | null; digest: string }>;
  sigma: { rev: number; digest: string; files: string[] } | null;
  rejected: Rejection[];
  applied_at: string | null;
}

const TAG = /^\[fleet ([A-Za-z0-9_-]{1,64})\]/;

export class PolicyAgent {
  readonly sigmaDir: string;
  private readonly file: string;
  private revision = 0;
  private source: PolicyStatus['source'] = 'none';
  private deny = new Map<string, DenyState>();
  private applied = new Map<string, Applied>();
  private sigma: { rev: number; files: Record<string, string>; digest: string } | null = null;
  private sigmaApplied: { rev: number; digest: string; files: string[] } | null = null;
  private rejected: Rejection[] = [];
  private readonly logged = new Set<string>();
  private appliedAt: string | null = null;
  private applying: Promise<void> = Promise.resolve();
  private applyTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private watch: { stop(): void } | null = null;
  private wake: (() => void) | null = null;
  private allowNoted = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: PolicyAgentOptions) {
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    this.sigmaDir = join(opts.stateDir, 'sigma');
    mkdirSync(this.sigmaDir, { recursive: true, mode: 0o700 });
    this.file = join(opts.stateDir, 'policy.json');
  }

  /** Load the last good policy from disk and apply it (a start without the server). */
  async loadLastGood(): Promise<void> {
    if (!existsSync(this.file)) return;
    let saved: SavedPolicy;
    try {
      saved = JSON.parse(readFileSync(this.file, 'utf8'));
      if (saved.format !== 1) throw new Error(`unknown format ${String(saved.format)}`);
    } catch (e) {
      this.opts.log.error({ file: this.file }, `fleet: last good policy unreadable (${(e as Error).message}); starting without it`);
      return;
    }
    this.revision = saved.revision;
    this.source = 'disk';
    this.rejected = saved.rejected ?? [];
    for (const [id, d] of Object.entries(saved.deny ?? {})) {
      this.deny.set(id, { rev: d.rev, value: d.value, digest: d.digest });
      if (d.local_id !== null) this.applied.set(id, { localId: d.local_id, digest: d.digest });
    }
    if (saved.sigma) {
      // the files in force are the ones in the directory (written when the set was accepted)
      const files: Record<string, string> = {};
      for (const name of saved.sigma.files) {
        try {
          files[name] = readFileSync(join(this.sigmaDir, name), 'utf8');
        } catch {
          /* removed by hand: the next set from the server restores it */
        }
      }
      this.sigma = { rev: saved.sigma.rev, files, digest: saved.sigma.digest };
      this.sigmaApplied = { ...saved.sigma };
    }
    await this.applyNow();
    this.opts.log.info({ policy_revision: this.revision, deny_rules: this.deny.size, sigma_files: this.sigma ? Object.keys(this.sigma.files).length : 0 }, `fleet: last good policy (revision ${this.revision}) applied from ${this.file}`);
  }

  /** Keep the policy in step with the bucket on this connection (runs until stop()). */
  attach(nc: NatsConnection): void {
    void (async () => {
      for await (const st of nc.status()) {
        if (st.type === 'reconnect') this.restartWatch();
      }
    })().catch(() => undefined);
    this.loop = this.run(nc);
  }

  private restartWatch(): void {
    this.watch?.stop();
    this.wake?.();
  }

  private async run(nc: NatsConnection): Promise<void> {
    let delay = 500;
    while (!this.stopped && !nc.isClosed()) {
      try {
        const kv = await policyBucket(nc);
        if (this.stopped) break;
        const from = await this.resync(kv);
        if (this.stopped) break;
        delay = 500;
        const w = await kv.watch({ resumeFromRevision: from + 1 });
        this.watch = w;
        if (this.stopped) w.stop();
        const timer = setTimeout(() => w.stop(), this.opts.resyncMs ?? 300_000);
        timer.unref();
        for await (const e of w) {
          if (this.stopped) break;
          this.onEntry(e);
          this.revision = Math.max(this.revision, e.revision);
          this.scheduleApply();
        }
        clearTimeout(timer);
      } catch (e) {
        if (this.stopped || nc.isClosed()) break;
        this.opts.log.warn({ err: String((e as Error)?.message ?? e) }, `fleet: policy watch failed (${String((e as Error)?.message ?? e)}); retrying`);
      }
      this.watch = null;
      if (this.stopped) break;
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** Read the whole bucket; returns the revision it covers. */
  private async resync(kv: KV): Promise<number> {
    const st = await kv.status();
    const last = st.streamInfo.state.last_seq;
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const entries = (await Promise.all(keys.map((k) => kv.get(k)))).filter((e): e is KvEntry => !!e && e.operation === 'PUT');
    const present = new Set(entries.map((e) => e.key));
    for (const id of [...this.deny.keys()]) if (!present.has(`${DENY_PREFIX}${id}`)) this.deny.delete(id);
    if (this.sigma && !present.has(SIGMA_KEY)) this.sigma = null;
    for (const e of entries) this.onEntry(e);
    this.revision = Math.max(last, ...entries.map((e) => e.revision));
    this.source = 'server';
    await this.applyNow();
    return last;
  }

  private onEntry(e: KvEntry): void {
    const del = e.operation !== 'PUT';
    if (e.key.startsWith(DENY_PREFIX)) {
      const id = e.key.slice(DENY_PREFIX.length);
      if (!isRuleId(id)) return this.reject(e, `rule id "${id}": letters, digits, '_' and '-' only`);
      if (del) {
        this.deny.delete(id);
        return this.settled(e);
      }
      const cur = this.deny.get(id);
      if (cur && cur.rev >= e.revision) return;
      let value: DenyValue;
      try {
        value = parseDenyValue(e.value);
      } catch (err) {
        return this.reject(e, (err as Error).message);
      }
      this.deny.set(id, { rev: e.revision, value, digest: denyDigest(value) });
      return this.settled(e);
    }
    if (e.key === SIGMA_KEY) {
      if (del) {
        this.sigma = null;
        return this.settled(e);
      }
      if (this.sigma && this.sigma.rev >= e.revision) return;
      try {
        const set = decodeSigmaSet(e.value);
        const lint = lintSigmaSet(set.files);
        if (lint.errors.length) {
          const first = lint.errors.slice(0, 3).map((x) => `${x.path}:${x.line}:${x.col}: ${x.message}`).join('; ');
          throw new Error(`${lint.errors.length} rule error(s): ${first}`);
        }
        this.sigma = { rev: e.revision, files: set.files, digest: sigmaDigest(set.files) };
        this.settled(e);
      } catch (err) {
        this.reject(e, (err as Error).message);
      }
      return;
    }
    if (e.key.startsWith(ALLOW_PREFIX)) {
      if (!this.allowNoted) this.opts.log.info(`fleet: allow lists (${e.key}) are not supported by this agent yet; ignored`);
      this.allowNoted = true;
      return;
    }
    this.opts.log.debug({ key: e.key }, 'fleet: unknown policy key ignored');
  }

  /** A newer good value (or a delete) of a key clears its older rejections. */
  private settled(e: KvEntry): void {
    this.rejected = this.rejected.filter((r) => r.key !== e.key || r.revision > e.revision);
  }

  private reject(e: KvEntry, error: string): void {
    const id = `${e.key}@${e.revision}`;
    if (this.logged.has(id)) return;
    this.logged.add(id);
    const r: Rejection = { key: e.key, revision: e.revision, error: error.slice(0, 500), at: new Date().toISOString() };
    this.rejected = [...this.rejected.filter((x) => x.key !== e.key), r].slice(-10);
    this.opts.log.error({ policy_key: e.key, revision: e.revision, error: r.error }, `fleet: policy value ${e.key} (revision ${e.revision}) rejected: ${r.error}; the previous policy stays in force`);
  }

  private scheduleApply(): void {
    if (this.applyTimer) return;
    this.applyTimer = setTimeout(() => {
      this.applyTimer = null;
      void this.applyNow();
    }, 50);
    this.applyTimer.unref();
  }

  /** Apply the accepted state (serialized: one apply at a time). */
  applyNow(): Promise<void> {
    this.applying = this.applying.then(() => this.apply()).catch((e) => this.opts.log.error({ err: String(e) }, `fleet: applying the policy failed: ${(e as Error).message}`));
    return this.applying;
  }

  private async apply(): Promise<void> {
    const denyChanged = await this.applyDeny();
    this.applySigma();
    this.appliedAt = new Date().toISOString();
    this.save();
    if (denyChanged) this.opts.onDenyChanged?.();
  }

  private async applyDeny(): Promise<boolean> {
    const store = RulesStore.open(this.opts.rulesDb);
    let changed = false;
    try {
      const existing = new Map(store.list().map((r) => [r.id, r]));
      for (const [id, a] of [...this.applied]) {
        const want = this.deny.get(id);
        if (want && want.digest === a.digest && existing.has(a.localId)) continue;
        if (existing.has(a.localId) && store.remove(a.localId)) changed = true;
        existing.delete(a.localId);
        this.applied.delete(id);
      }
      // rules tagged by the fleet that no mapping owns (state lost, or a duplicate): ours to remove
      for (const r of existing.values()) {
        const tag = r.comment ? TAG.exec(r.comment) : null;
        if (tag && this.applied.get(tag[1]!)?.localId !== r.id && store.remove(r.id)) changed = true;
      }
      for (const [id, d] of this.deny) {
        if (this.applied.has(id)) continue;
        try {
          const rule = await makeRule({
            ...(d.value.path ? { path: d.value.path } : {}),
            ...(d.value.sha256 ? { sha256: d.value.sha256 } : {}),
            mode: d.value.mode,
          });
          const added = store.add({ ...rule, comment: `[fleet ${id}]${d.value.comment ? ` ${d.value.comment}` : ''}` });
          this.applied.set(id, { localId: added.id, digest: d.digest });
          changed = true;
          this.opts.log.info({ fleet_rule: id, rule_id: added.id, revision: d.rev }, `fleet: deny rule ${id} applied as local rule ${added.id}`);
        } catch (e) {
          this.reject({ key: `${DENY_PREFIX}${id}`, revision: d.rev } as KvEntry, `cannot apply on this host: ${(e as Error).message}`);
        }
      }
    } finally {
      store.close();
    }
    return changed;
  }

  private applySigma(): void {
    const want = this.sigma;
    if ((want?.digest ?? null) === (this.sigmaApplied?.digest ?? null)) {
      if (want && this.sigmaApplied) this.sigmaApplied.rev = want.rev;
      return;
    }
    const files = want?.files ?? {};
    const keep = new Set(Object.keys(files));
    for (const [name, text] of Object.entries(files)) {
      const p = join(this.sigmaDir, name);
      let cur: string | null = null;
      try {
        cur = readFileSync(p, 'utf8');
      } catch {
        /* new */
      }
      if (cur === text) continue;
      mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
      const tmp = join(dirname(p), `.${p.slice(dirname(p).length + 1)}.tmp`);
      // rules are records too: owner only (created fresh each time, so the mode holds)
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, p);
    }
    for (const f of listFiles(this.sigmaDir)) {
      const rel = relative(this.sigmaDir, f);
      if (!keep.has(rel)) unlinkSync(f);
    }
    removeEmptyDirs(this.sigmaDir);
    this.sigmaApplied = want ? { rev: want.rev, digest: want.digest, files: Object.keys(files) } : null;
    this.opts.log.info({ sigma_revision: want?.rev ?? null, files: keep.size }, want ? `fleet: Sigma rule set (revision ${want.rev}, ${keep.size} files) written to ${this.sigmaDir}` : `fleet: Sigma rule set removed from ${this.sigmaDir}`);
  }

  private save(): void {
    const saved: SavedPolicy = {
      format: 1,
      revision: this.revision,
      deny: Object.fromEntries([...this.deny].map(([id, d]) => [id, { rev: d.rev, value: d.value, digest: d.digest, local_id: this.applied.get(id)?.localId ?? null }])),
      sigma: this.sigmaApplied,
      rejected: this.rejected,
      applied_at: this.appliedAt,
    };
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (e) {
      this.opts.log.error({ file: this.file }, `fleet: cannot save the last good policy: ${(e as Error).message}`);
    }
  }

  status(): PolicyStatus {
    return {
      revision: this.revision,
      source: this.source,
      deny_rules: this.applied.size,
      sigma: this.sigmaApplied ? { revision: this.sigmaApplied.rev, files: this.sigmaApplied.files.length, digest: this.sigmaApplied.digest } : null,
      rejected: this.rejected,
      applied_at: this.appliedAt,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    this.wake?.();
    if (this.applyTimer) clearTimeout(this.applyTimer);
    this.applyTimer = null;
    await this.loop?.catch(() => undefined);
    await this.applying;
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

function removeEmptyDirs(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = join(dir, e.name);
    removeEmptyDirs(p);
    try {
      rmdirSync(p);
    } catch {
      /* not empty */
    }
  }
}
