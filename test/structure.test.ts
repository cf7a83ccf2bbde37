/**
 * The house rules of src/, checked over the import graph (after Playwright's
 * DEPS.list): no import runs upward, no cycle between rooms, only the sensor
 * registry imports a concrete sensor, only src/kernel/ touches koffi.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(__dirname, '../src');

/** Rooms from the bottom up: a room may import only rooms of a lower rank (or itself). */
const RANK: Record<string, number> = {
  util: 0, config: 0, kernel: 0, store: 0,
  events: 1,
  process: 2, sinks: 2,
  sensors: 3, enforcement: 3,
  agent: 4, provenance: 4, // provenance: origin records (xattr, store) from the file sensor's marks; kernel maps via the agent's SharedMaps
  detection: 5, doctor: 5,
  fleet: 6, // imports detection (lints Sigma sets), enforcement (deny rule store), sinks
  api: 6, // local API and console: the agent's stats, detection's rule health, enforcement's deny rules, the store
  watch: 6, // vigil watch: the agent limited to one process tree
  cli: 7,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Edge { from: string; to: string; spec: string }

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      const to = spec.startsWith('.') ? resolve(dirname(f), spec).replace(/\.js$/, '.ts') : spec;
      out.push({ from: relative(SRC, f), to: spec.startsWith('.') ? relative(SRC, to) : to, spec });
    }
  }
  return out;
}

const room = (p: string) => p.split('/')[0]!;

describe('structure of src/', () => {
  const all = edges();
  const local = all.filter((e) => !e.to.startsWith('node:') && (e.spec.startsWith('.')));

  it('every room has a rank', () => {
    const rooms = new Set(files(SRC).map((f) => room(relative(SRC, f))));
    expect([...rooms].filter((r) => !(r in RANK))).toEqual([]);
  });

  it('no import runs upward', () => {
    const bad = local.filter((e) => room(e.from) !== room(e.to) && RANK[room(e.to)]! >= RANK[room(e.from)]!);
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('only src/kernel/ imports koffi or the FFI module', () => {
    const bad = all.filter((e) => !e.from.startsWith('kernel/') && (e.to === 'koffi' || e.to === 'kernel/ffi.ts'));
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('only the registry (src/sensors/index.ts) imports a concrete sensor', () => {
    const concrete = (p: string) => /^sensors\/[^/]+\//.test(p);
    const bad = local.filter((e) => concrete(e.to) && e.from !== 'sensors/index.ts' && !(concrete(e.from) && e.from.split('/')[1] === e.to.split('/')[1]));
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('only the registry (src/sinks/index.ts) imports a concrete output (a folder under src/sinks/)', () => {
    const concrete = (p: string) => /^sinks\/[^/]+\//.test(p);
    const bad = local.filter((e) => concrete(e.to) && e.from !== 'sinks/index.ts' && !(concrete(e.from) && e.from.split('/')[1] === e.to.split('/')[1]));
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('sensors do not import each other', () => {
    const bad = local.filter((e) => /^sensors\/[^/]+\//.test(e.from) && /^sensors\/[^/]+\//.test(e.to) && e.from.split('/')[1] !== e.to.split('/')[1]);
    expect(bad.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('the graph of modules has no cycle', () => {
    const g = new Map<string, string[]>();
    for (const e of local) g.set(e.from, [...(g.get(e.from) ?? []), e.to]);
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (n: string, stack: string[]) => {
      if (state.get(n) === 2) return;
      if (state.get(n) === 1) {
        cycles.push([...stack.slice(stack.indexOf(n)), n].join(' -> '));
        return;
      }
      state.set(n, 1);
      for (const m of g.get(n) ?? []) visit(m, [...stack, n]);
      state.set(n, 2);
    };
    for (const n of g.keys()) visit(n, []);
    expect(cycles).toEqual([]);
  });
});
