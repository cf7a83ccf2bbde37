/**
 * Aho-Corasick automaton over lower-cased field values.
 *
 * All literal patterns of one field (across every rule of a category) are matched in a
 * single pass. Each hit records which relations hold for the pattern: anywhere
 * (contains), at the start (startswith), at the end (endswith), or the whole value
 * (equals), so one scan answers all four literal modifiers.
 *
 * The automaton is a full DFA in a flat Int32Array (state * classes + class), with
 * characters mapped to a compact alphabet; characters that occur in no pattern map to
 * class 0, which always leads back to the root.
 */

export const F_CT = 1;
export const F_SW = 2;
export const F_EW = 4;
export const F_EQ = 8;

/** Per-event hit state shared by all automatons of an engine. */
export class HitSet {
  gen = 1;
  hitGen: Int32Array;
  flags: Uint8Array;
  list: number[] = [];
  constructor(n: number) {
    this.hitGen = new Int32Array(n);
    this.flags = new Uint8Array(n);
  }
  next(): void {
    this.gen = (this.gen + 1) | 0;
    if (this.gen === 0) {
      this.hitGen.fill(0);
      this.gen = 1;
    }
    this.list.length = 0;
  }
  has(pid: number, mask: number): boolean {
    return this.hitGen[pid] === this.gen && (this.flags[pid]! & mask) !== 0;
  }
}

export class AhoCorasick {
  private readonly cls: Uint16Array;
  private readonly ncls: number;
  private readonly delta: Int32Array;
  private readonly outStart: Int32Array;
  private readonly outPid: Int32Array;
  private readonly outLen: Int32Array;

  /** `patterns[i]` gets global pattern id `pids[i]`. Patterns must be non-empty. */
  constructor(patterns: string[], pids: number[]) {
    // alphabet
    const cls = new Uint16Array(65536);
    let ncls = 1;
    for (const p of patterns)
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        if (cls[c] === 0) cls[c] = ncls++;
      }
    this.cls = cls;
    this.ncls = ncls;
    // trie
    const gotoRows: Int32Array[] = [new Int32Array(ncls).fill(-1)];
    const outs: number[][] = [[]];
    patterns.forEach((p, idx) => {
      let s = 0;
      for (let i = 0; i < p.length; i++) {
        const c = cls[p.charCodeAt(i)]!;
        let nx = gotoRows[s]![c]!;
        if (nx < 0) {
          nx = gotoRows.length;
          gotoRows.push(new Int32Array(ncls).fill(-1));
          outs.push([]);
          gotoRows[s]![c] = nx;
        }
        s = nx;
      }
      outs[s]!.push(idx);
    });
    const n = gotoRows.length;
    const fail = new Int32Array(n);
    const delta = new Int32Array(n * ncls);
    // BFS
    const queue: number[] = [];
    for (let c = 0; c < ncls; c++) {
      const nx = gotoRows[0]![c]!;
      if (nx > 0 && c !== 0) {
        fail[nx] = 0;
        delta[c] = nx;
        queue.push(nx);
      } else delta[c] = 0;
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      const f = fail[s]!;
      // merged outputs via failure link (already complete for f: BFS order)
      if (outs[f]!.length) outs[s] = outs[s]!.concat(outs[f]!);
      for (let c = 0; c < ncls; c++) {
        const nx = gotoRows[s]![c]!;
        if (nx > 0 && c !== 0) {
          fail[nx] = delta[f * ncls + c]!;
          delta[s * ncls + c] = nx;
          queue.push(nx);
        } else delta[s * ncls + c] = c === 0 ? 0 : delta[f * ncls + c]!;
      }
    }
    this.delta = delta;
    const outStart = new Int32Array(n + 1);
    let total = 0;
    for (let s = 0; s < n; s++) {
      outStart[s] = total;
      total += outs[s]!.length;
    }
    outStart[n] = total;
    const outPid = new Int32Array(total);
    const outLen = new Int32Array(total);
    let k = 0;
    for (let s = 0; s < n; s++)
      for (const idx of outs[s]!) {
        outPid[k] = pids[idx]!;
        outLen[k] = patterns[idx]!.length;
        k++;
      }
    this.outStart = outStart;
    this.outPid = outPid;
    this.outLen = outLen;
  }

  get states(): number {
    return this.outStart.length - 1;
  }

  /** Scan `s` (already lower-cased) and record hits into `hs`. */
  scan(s: string, hs: HitSet): void {
    const cls = this.cls;
    const delta = this.delta;
    const ncls = this.ncls;
    const outStart = this.outStart;
    const n = s.length;
    const last = n - 1;
    let st = 0;
    for (let i = 0; i < n; i++) {
      st = delta[st * ncls + cls[s.charCodeAt(i)]!]!;
      const a = outStart[st]!;
      const b = outStart[st + 1]!;
      if (a === b) continue;
      for (let k = a; k < b; k++) {
        const pid = this.outPid[k]!;
        const start = i - this.outLen[k]! + 1;
        let f = F_CT;
        if (start === 0) f |= F_SW;
        if (i === last) f |= start === 0 ? F_EW | F_EQ : F_EW;
        if (hs.hitGen[pid] !== hs.gen) {
          hs.hitGen[pid] = hs.gen;
          hs.flags[pid] = f;
          hs.list.push(pid);
        } else hs.flags[pid]! |= f;
      }
    }
  }
}
