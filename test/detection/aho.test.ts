/**
 * The literal automaton in both of its forms (full DFA, and sparse trie + failure links
 * for large alphabets × many states) reports exactly the hits a brute-force search finds.
 */
import { describe, expect, it } from 'vitest';
import { AhoCorasick, F_CT, F_EQ, F_EW, F_SW, HitSet } from '../../src/detection/aho.js';

function brute(patterns: string[], s: string): Map<number, number> {
  const out = new Map<number, number>();
  patterns.forEach((p, i) => {
    let f = 0;
    for (let at = s.indexOf(p); at >= 0; at = s.indexOf(p, at + 1)) {
      f |= F_CT;
      if (at === 0) f |= F_SW;
      if (at + p.length === s.length) f |= at === 0 ? F_EW | F_EQ : F_EW;
    }
    if (f) out.set(i, f);
  });
  return out;
}

function hits(ac: AhoCorasick, n: number, s: string): Map<number, number> {
  const hs = new HitSet(n);
  hs.next();
  ac.scan(s, hs);
  return new Map(hs.list.map((pid) => [pid, hs.flags[pid]!]));
}

function build(patterns: string[], denseCells: number): AhoCorasick {
  const g = AhoCorasick.build(patterns, patterns.map((_, i) => i), undefined, denseCells);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

describe('Aho-Corasick', () => {
  it('dense and sparse forms agree with brute force (random patterns, suffix-rich sets, wide alphabets)', () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let round = 0; round < 60; round++) {
      const alpha = round % 3 === 0 ? 'ab' : round % 3 === 1 ? 'abcde/-' : '一二三四五六七八九十ab';
      const word = (len: number): string => Array.from({ length: len }, () => alpha[rnd(alpha.length)]).join('');
      const patterns = [...new Set(Array.from({ length: 1 + rnd(30) }, () => word(1 + rnd(6))))];
      if (round % 10 === 0) patterns.push(...['a', 'aa', 'aaa', 'aaaa'].filter((p) => !patterns.includes(p)));
      const dense = build(patterns, Number.MAX_SAFE_INTEGER);
      const sparse = build(patterns, 0);
      expect(dense.dense).toBe(true);
      expect(sparse.dense).toBe(false);
      for (let k = 0; k < 40; k++) {
        const s = word(rnd(40));
        const want = brute(patterns, s);
        expect(hits(dense, patterns.length, s), `${JSON.stringify(patterns)} on ${s}`).toEqual(want);
        expect(hits(sparse, patterns.length, s), `${JSON.stringify(patterns)} on ${s}`).toEqual(want);
      }
    }
  });

  it('a large alphabet with many states uses the sparse form', () => {
    let p = '';
    for (let i = 0; i < 5000; i++) p += String.fromCharCode(0x4e00 + i);
    const ac = new AhoCorasick([p, 'x'], [0, 1]);
    expect(ac.dense).toBe(false);
    expect(hits(ac, 2, `x${p}`)).toEqual(new Map([[1, F_CT | F_SW], [0, F_CT | F_EW]]));
  });
});
