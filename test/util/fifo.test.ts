import { describe, expect, it } from 'vitest';
import { BoundedFifo } from '../../src/util/fifo.js';

describe('BoundedFifo', () => {
  it('keeps the newest max items and hands back each older one once, oldest first, across compactions of its front', () => {
    const f = new BoundedFifo<number>(3);
    expect([f.push(0), f.push(1), f.push(2)]).toEqual([undefined, undefined, undefined]);
    const out: number[] = [];
    for (let i = 3; i < 10_000; i++) {
      const old = f.push(i);
      expect(old).toBe(i - 3);
      out.push(old!);
      expect(f.size).toBe(3);
    }
    expect(out).toEqual(Array.from({ length: 9_997 }, (_, i) => i));
  });

  it('with max 0 lets every item go at once', () => {
    const f = new BoundedFifo<string>(0);
    expect(f.push('a')).toBe('a');
    expect(f.size).toBe(0);
  });
});
