/**
 * Moving parsed rules from the worker thread to the main thread in bounded pieces.
 *
 * Deserializing a message is one uninterruptible step on the receiving thread, so one
 * rule with 100,000 values (or 18,000 rules) in one message would stall the event loop
 * for most of a second. The Splitter cuts every large array or Map out of a value into
 * `chunk` messages of about CHUNK_WEIGHT nodes each, leaving a marker in its place; the
 * Joiner puts them back. Chunks of an inner array always precede the message that holds
 * its marker. The worker sends one message per request (pull), so each message arrives
 * in its own turn of the event loop.
 */

/** Nodes per message (objects, array entries, ~1 KiB of string each count 1). */
export const CHUNK_WEIGHT = 2000;

type Marker = { __vigilArray: number } | { __vigilMap: number };
export interface Chunk {
  t: 'chunk';
  /** the array this piece belongs to */
  aid: number;
  items: unknown[];
}

function isPlain(v: object): boolean {
  return !(v instanceof RegExp) && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer) && !(v instanceof Date);
}

export class Splitter {
  private next = 1;
  constructor(private readonly emit: (c: Chunk) => void) {}

  /** A copy of `v` where large arrays and Maps are replaced by markers (their chunks emitted). */
  encode(v: unknown): unknown {
    return this.enc(v)[0];
  }

  private enc(v: unknown): [unknown, number] {
    if (typeof v === 'string') return [v, 1 + (v.length >> 10)];
    if (v === null || typeof v !== 'object' || !isPlain(v)) return [v, 1];
    if (Array.isArray(v)) {
      const items = v.map((x) => this.enc(x));
      return this.maybeSplit(items, (id) => ({ __vigilArray: id }), (xs) => xs);
    }
    if (v instanceof Map) {
      const items = [...v].map(([k, x]) => {
        const [e, w] = this.enc(x);
        return [[k, e], w + 1] as [unknown, number];
      });
      return this.maybeSplit(items, (id) => ({ __vigilMap: id }), (xs) => new Map(xs as [unknown, unknown][]));
    }
    const o: Record<string, unknown> = {};
    let w = 1;
    for (const k of Object.keys(v)) {
      const [e, kw] = this.enc((v as Record<string, unknown>)[k]);
      o[k] = e;
      w += kw;
    }
    return [o, w];
  }

  private maybeSplit(items: [unknown, number][], marker: (id: number) => Marker, whole: (xs: unknown[]) => unknown): [unknown, number] {
    let total = 1;
    for (const [, w] of items) total += w;
    if (total <= CHUNK_WEIGHT) return [whole(items.map((x) => x[0])), total];
    const id = this.next++;
    let batch: unknown[] = [];
    let bw = 0;
    for (const [x, w] of items) {
      if (batch.length && bw + w > CHUNK_WEIGHT) {
        this.emit({ t: 'chunk', aid: id, items: batch });
        batch = [];
        bw = 0;
      }
      batch.push(x);
      bw += w;
    }
    this.emit({ t: 'chunk', aid: id, items: batch });
    return [marker(id), 1];
  }
}

export class Joiner {
  private readonly parts = new Map<number, unknown[]>();

  /** Take one chunk (its own markers are resolved now). */
  chunk(c: Chunk): void {
    const a = this.parts.get(c.aid);
    const items = c.items.map((x) => this.decode(x));
    if (a) for (const x of items) a.push(x);
    else this.parts.set(c.aid, items);
  }

  /** `v` with every marker replaced by the array or Map its chunks make up. */
  decode(v: unknown): unknown {
    if (v === null || typeof v !== 'object' || !isPlain(v)) return v;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = this.decode(v[i]);
      return v;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) v.set(k, this.decode(x));
      return v;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.__vigilArray === 'number') return this.take(o.__vigilArray);
    if (typeof o.__vigilMap === 'number') return new Map(this.take(o.__vigilMap) as [unknown, unknown][]);
    for (const k of Object.keys(o)) o[k] = this.decode(o[k]);
    return o;
  }

  private take(id: number): unknown[] {
    const a = this.parts.get(id) ?? [];
    this.parts.delete(id);
    return a;
  }
}
