/**
 * Aho-Corasick automaton over lower-cased field values.
 *
 * All literal patterns of one field (across every rule of a category) are matched in a
 * single pass. Each hit records which relations hold for the pattern: anywhere
 * (contains), at the start (startswith), at the end (endswith), or the whole value
 * (equals), so one scan answers all four literal modifiers.
 *
 * Characters are mapped to a compact alphabet; characters that occur in no pattern map
 * to class 0, which always leads back to the root. When states × classes fits in
 * DENSE_CELLS the automaton is a full DFA in a flat Int32Array (state * classes + class);
 * otherwise (many states over a large alphabet, e.g. long literals of distinct CJK
 * characters, which once needed gigabytes) it keeps the sparse trie in a hash of edges
 * and follows failure links while scanning: memory stays linear in the pattern text.
 * Outputs are each state's own patterns plus a dictionary-suffix link, so suffix-rich
 * pattern sets (a, aa, aaa...) cost linear memory too.
 *
 * Construction is a generator that yields every few thousand steps, so a large set can
 * be built in slices between events (see RuleSet.build).
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

/** Largest full DFA table (cells = states × alphabet classes); above it the sparse form is used. */
export const DENSE_CELLS = 4 * 1024 * 1024;
/** Work between two yields of the construction generator. */
const STEP = 1024;

/**
 * Open-addressing hash of trie edges (state, class) → child state, in typed arrays. Keys
 * are stored as state + 1 so a zeroed (fresh, untouched) slot means empty.
 */
class EdgeMap {
  private mask: number;
  private ks: Int32Array;
  private kc: Int32Array;
  private vs: Int32Array;
  size = 0;
  constructor(cap = 1024) {
    let c = 16;
    while (c < cap * 2) c <<= 1;
    this.mask = c - 1;
    this.ks = new Int32Array(c);
    this.kc = new Int32Array(c);
    this.vs = new Int32Array(c);
  }
  private slot(s: number, c: number): number {
    return (Math.imul(s, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca77)) & this.mask;
  }
  get(s: number, c: number): number {
    const ks = this.ks;
    const key = s + 1;
    for (let i = this.slot(s, c); ; i = (i + 1) & this.mask) {
      const k = ks[i]!;
      if (k === 0) return -1;
      if (k === key && this.kc[i] === c) return this.vs[i]!;
    }
  }
  set(s: number, c: number, v: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const key = s + 1;
    for (let i = this.slot(s, c); ; i = (i + 1) & this.mask) {
      const k = this.ks[i]!;
      if (k === 0) {
        this.ks[i] = key;
        this.kc[i] = c;
        this.vs[i] = v;
        this.size++;
        return;
      }
      if (k === key && this.kc[i] === c) {
        this.vs[i] = v;
        return;
      }
    }
  }
  private grow(): void {
    const { ks, kc, vs } = this;
    const c = (this.mask + 1) * 2;
    this.mask = c - 1;
    this.ks = new Int32Array(c);
    this.kc = new Int32Array(c);
    this.vs = new Int32Array(c);
    this.size = 0;
    for (let i = 0; i < ks.length; i++) if (ks[i] !== 0) this.set(ks[i]! - 1, kc[i]!, vs[i]!);
  }
}

/** A growable Int32 array. */
class IntVec {
  a = new Int32Array(256);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  done(): Int32Array {
    return this.a.slice(0, this.n);
  }
}

export class AhoCorasick {
  private cls!: Uint16Array | Int32Array;
  private ncls!: number;
  /** full DFA (dense form), or null */
  private delta!: Int32Array | null;
  /** trie edges and failure links (sparse form) */
  private edges!: EdgeMap | null;
  private fail!: Int32Array | null;
  /** state → 1 + (itself when it has own outputs, else its dictionary-suffix link); 0: none */
  private term!: Int32Array;
  /** state → 1 + next state down the suffix chain with own outputs; 0: none */
  private dict!: Int32Array;
  private outStart!: Int32Array;
  private outPid!: Int32Array;
  private outLen!: Int32Array;
  private nstates = 0;

  /** `patterns[i]` gets global pattern id `pids[i]`. Patterns must be non-empty. */
  constructor(patterns: string[], pids: number[]) {
    const g = AhoCorasick.build(patterns, pids, this);
    while (!g.next().done);
  }

  /** Build in steps: yields every few thousand units of work; returns the automaton. */
  static *build(patterns: string[], pids: number[], into?: AhoCorasick, denseCells = DENSE_CELLS): Generator<void, AhoCorasick, void> {
    const ac = into ?? (Object.create(AhoCorasick.prototype) as AhoCorasick);
    // alphabet
    // 16-bit classes; only a pattern set using all 65,536 code units needs wider ones
    let cls: Uint16Array | Int32Array = new Uint16Array(65536);
    let ncls = 1;
    let work = 0;
    for (const p of patterns) {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        if (cls[c] === 0) {
          if (ncls === 65536 && cls instanceof Uint16Array) cls = Int32Array.from(cls);
          cls[c] = ncls++;
        }
      }
      if ((work += p.length) >= STEP) {
        work = 0;
        yield;
      }
    }
    // trie: edges in a hash (sized once: there are at most as many edges as pattern
    // characters), children as linked lists (for the breadth-first pass)
    let chars = 0;
    for (const p of patterns) chars += p.length;
    const edges = new EdgeMap(chars + 1);
    const firstChild = new IntVec();
    const nextSibling = new IntVec();
    const edgeCls = new IntVec();
    firstChild.push(-1);
    nextSibling.push(-1);
    edgeCls.push(0);
    const ownOf: number[][] = [];
    let n = 1;
    for (let idx = 0; idx < patterns.length; idx++) {
      const p = patterns[idx]!;
      let s = 0;
      for (let i = 0; i < p.length; i++) {
        const c = cls[p.charCodeAt(i)]!;
        let nx = edges.get(s, c);
        if (nx < 0) {
          nx = n++;
          edges.set(s, c, nx);
          firstChild.push(-1);
          edgeCls.push(c);
          nextSibling.push(firstChild.a[s]!);
          firstChild.a[s] = nx;
        }
        s = nx;
      }
      (ownOf[s] ??= []).push(idx);
      if ((work += p.length) >= STEP) {
        work = 0;
        yield;
      }
    }
    const fc = firstChild.a;
    const ns = nextSibling.a;
    const ec = edgeCls.a;
    const fail = new Int32Array(n);
    // 1 + state, 0 for none: fresh zeroed arrays need no fill
    const dict = new Int32Array(n);
    const term = new Int32Array(n);
    const dense = n * ncls <= denseCells;
    const delta = dense ? new Int32Array(n * ncls) : null;
    // breadth-first: failure links, dictionary links, and (dense) the DFA rows
    const queue = new Int32Array(n);
    let qn = 0;
    queue[qn++] = 0;
    for (let qi = 0; qi < qn; qi++) {
      const s = queue[qi]!;
      const f = fail[s]!;
      if (s !== 0) {
        dict[s] = ownOf[f] ? f + 1 : dict[f]!;
        term[s] = ownOf[s] ? s + 1 : dict[s]!;
        if (delta) delta.copyWithin(s * ncls, f * ncls, f * ncls + ncls);
      }
      for (let ch = fc[s]!; ch >= 0; ch = ns[ch]!) {
        const c = ec[ch]!;
        if (s === 0) fail[ch] = 0;
        else if (delta) fail[ch] = delta[f * ncls + c]!;
        else {
          let g = f;
          let t = edges.get(g, c);
          while (t < 0 && g !== 0) {
            g = fail[g]!;
            t = edges.get(g, c);
          }
          fail[ch] = t >= 0 ? t : 0;
        }
        queue[qn++] = ch;
      }
      if (delta) for (let ch = fc[s]!; ch >= 0; ch = ns[ch]!) delta[s * ncls + ec[ch]!] = ch;
      if (qi % STEP === STEP - 1) yield;
    }
    // own outputs, CSR
    const outStart = new Int32Array(n + 1);
    let total = 0;
    for (let s = 0; s < n; s++) {
      outStart[s] = total;
      total += ownOf[s]?.length ?? 0;
      if (s % (STEP * 16) === 0) yield;
    }
    outStart[n] = total;
    const outPid = new Int32Array(total);
    const outLen = new Int32Array(total);
    let k = 0;
    for (let s = 0; s < n; s++) {
      const own = ownOf[s];
      if (own)
        for (const idx of own) {
          outPid[k] = pids[idx]!;
          outLen[k] = patterns[idx]!.length;
          k++;
        }
      if (s % (STEP * 16) === 0) yield;
    }
    ac.cls = cls;
    ac.ncls = ncls;
    ac.delta = delta;
    ac.edges = delta ? null : edges;
    ac.fail = delta ? null : fail;
    ac.term = term;
    ac.dict = dict;
    ac.outStart = outStart;
    ac.outPid = outPid;
    ac.outLen = outLen;
    ac.nstates = n;
    return ac;
  }

  get states(): number {
    return this.nstates;
  }

  /** true when the automaton is a full DFA table (false: sparse trie + failure links) */
  get dense(): boolean {
    return this.delta !== null;
  }

  /** Scan `s` (already lower-cased) and record hits into `hs`. */
  scan(s: string, hs: HitSet): void {
    const cls = this.cls;
    const delta = this.delta;
    const ncls = this.ncls;
    const term = this.term;
    const n = s.length;
    let st = 0;
    if (delta) {
      for (let i = 0; i < n; i++) {
        st = delta[st * ncls + cls[s.charCodeAt(i)]!]!;
        const t = term[st]!;
        if (t !== 0) this.emit(t - 1, i, n - 1, hs);
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      const c = cls[s.charCodeAt(i)]!;
      st = c === 0 ? 0 : this.step(st, c);
      const t = term[st]!;
      if (t !== 0) this.emit(t - 1, i, n - 1, hs);
    }
  }

  /** Sparse form: follow failure links until an edge on class c exists. */
  private step(st: number, c: number): number {
    const edges = this.edges!;
    const fail = this.fail!;
    for (;;) {
      const t = edges.get(st, c);
      if (t >= 0) return t;
      if (st === 0) return 0;
      st = fail[st]!;
    }
  }

  private emit(t: number, i: number, last: number, hs: HitSet): void {
    const outStart = this.outStart;
    for (; t >= 0; t = this.dict[t]! - 1) {
      const b = outStart[t + 1]!;
      for (let k = outStart[t]!; k < b; k++) {
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
