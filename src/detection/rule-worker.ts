/**
 * Worker thread of the rule store: reads, hashes and parses rule files off the event
 * path. Protocol (structured clone), one scan at a time:
 *   in:  {t: 'scan', id, roots, known: [path, hash][], placeholders, limits}
 *        {t: 'more', id}                        send the next message of scan `id`
 *   out: {id, t: 'chunk', ...}                   a piece of a large array (transfer.ts)
 *        {id, t: 'docs', path, docs}             documents of a changed file
 *        {id, t: 'done', files, watch, errors}   the scan (files without their documents)
 *        {id, t: 'fail', message}                the scan itself failed
 * The results go out one message per 'more', each of bounded size, so the main thread
 * never deserializes much in one turn of its event loop.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { RuleLimits } from './limits.js';
import { scanRules, type ScannedFile } from './scan.js';
import { Splitter } from './transfer.js';

export interface ScanRequest {
  id: number;
  roots: string[];
  known: [string, string][];
  placeholders: Record<string, string[]>;
  limits: Partial<RuleLimits>;
}

/** Documents per message (before their large arrays are split out). */
const CHUNK_DOCS = 100;

if (parentPort) {
  const port = parentPort;
  // background work: this thread yields the CPU to the agent's event loop (Linux: a
  // thread's nice value is set through its thread id)
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 10);
  } catch {
    /* not Linux, or not permitted: normal priority */
  }
  let queue: { id: number; msgs: unknown[]; next: number } | null = null;
  const send = (): void => {
    if (!queue) return;
    const m = queue.msgs[queue.next++];
    if (m !== undefined) port.postMessage(m);
    if (queue.next >= queue.msgs.length) queue = null;
  };
  port.on('message', (req: ({ t: 'scan' } & ScanRequest) | { t: 'more'; id: number }) => {
    if (req.t === 'more') {
      if (queue?.id === req.id) send();
      return;
    }
    const id = req.id;
    const msgs: unknown[] = [];
    try {
      const r = scanRules(req.roots, new Map(req.known), { placeholders: req.placeholders, limits: req.limits });
      const sp = new Splitter((c) => msgs.push({ ...c, id }));
      const files: ScannedFile[] = [];
      for (const f of r.files) {
        if (!f.parsed) {
          files.push(f);
          continue;
        }
        const docs = f.parsed.docs;
        for (let i = 0; i < docs.length; i += CHUNK_DOCS) msgs.push({ id, t: 'docs', path: f.path, docs: sp.encode(docs.slice(i, i + CHUNK_DOCS)) });
        files.push({ path: f.path, hash: f.hash, parsed: { docs: [], errors: f.parsed.errors } });
      }
      msgs.push({ id, t: 'done', files: sp.encode(files), watch: r.watch, errors: r.errors });
    } catch (e) {
      msgs.length = 0;
      msgs.push({ id, t: 'fail', message: (e as Error)?.message ?? String(e) });
    }
    queue = { id, msgs, next: 0 };
    send();
  });
}
