/**
 * The store's text index (records_text, schema 5: a document per chunk of rows): field
 * matches with a literal of three characters or more are answered through it, and it only
 * narrows: every match gives the same rows through the index as through a scan of the table.
 * SQLite's plan is checked so that a change that stops using the index fails here.
 */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore, PMASK, matchTrigrams, toRow, type FieldMatch, type ProcessRow, type StoreQuery, type StoreRow } from '../../src/store/store.js';

const tmp = (name: string) => join(mkdtempSync(join(tmpdir(), 'vigil-search-')), name);

/**
 * What the index holds: its documents, the chunks they stand for, the event rows those
 * cover (each once) and the chunks none of whose rows is left.
 */
function indexed(st: EventStore): { docs: number; chunks: number; covered: number; events: number; orphans: number } {
  const n = (sql: string) => (st.db.prepare(sql).get() as { n: number }).n;
  return {
    docs: n('SELECT COUNT(*) AS n FROM records_text'),
    chunks: n('SELECT COUNT(*) AS n FROM records_text_chunks'),
    covered: n("SELECT COUNT(*) AS n FROM records r JOIN records_text_chunks c ON r.id BETWEEN c.first AND c.last AND r.tkey = c.tkey WHERE r.kind = 'event'"),
    events: n("SELECT COUNT(*) AS n FROM records WHERE kind = 'event'"),
    orphans: n('SELECT COUNT(*) AS n FROM records_text_chunks c WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id BETWEEN c.first AND c.last)'),
  };
}

/** A query gives the same rows (in the same order) through the text index as through a scan of the table. */
function expectSameAsScan(st: EventStore, q: StoreQuery, label: string): number[] {
  const viaScan = st.query({ ...q, textIndex: false }).map((r) => r.id);
  expect(st.query(q).map((r) => r.id), label).toEqual(viaScan);
  return viaScan;
}

/** A store with process rows (moved fields, detail, a parent) and whole rows. */
function fill(st: EventStore): void {
  const procs: ProcessRow[] = [
    [1, '{p-1}', 1, 0, null, '/sbin/init', '/sbin/init splash', '/', 0, null],
    [2, '{p-2}', 200, 1, 1, '/usr/bin/bash', 'bash -i', '/home/u', 1000, null],
    [3, '{p-3}', 300, 200, 2, '/usr/bin/curl', 'curl -s https://Example.org/x?a=1&b="2"', '/tmp', 1000, '{"argc":3,"exe_dev":2049,"exe_ino":"77"}'],
    [4, '{p-4}', 301, 200, 2, '/bin/echo', 'echo a b', '/tmp', 1000, '{"argv":["echo","a b"],"argc":2,"exe_dev":2049,"exe_ino":"78"}'],
  ];
  const all = PMASK.ProcessGuid | PMASK.ProcessId | PMASK.Image | PMASK.CommandLine | PMASK.CurrentDirectory | PMASK.ParentProcessId | PMASK.ParentProcessGuid | PMASK.ParentImage | PMASK.ParentCommandLine | PMASK.Ancestors;
  const rows: StoreRow[] = [
    ['event', 1000, 'process_creation', 3, all | PMASK.Detail, null, null, '{"category":"process_creation","timestamp":"2026-11-29T10:00:01.000000Z","User":"u","vigil":{"schema":1,"seq":1,"comm":"curl","truncated":false}}'],
    ['event', 1001, 'process_creation', 4, all | PMASK.Detail, null, null, '{"category":"process_creation","timestamp":"2026-11-29T10:00:01.001000Z","User":"u","vigil":{"schema":1,"seq":2,"comm":"echo"}}'],
    ['event', 1002, 'network_connection', 3, all, null, null, '{"category":"network_connection","timestamp":"2026-11-29T10:00:01.002000Z","DestinationIp":"93.184.216.34","DestinationPort":443,"vigil":{"schema":1,"seq":3,"flags":[1,2],"note":null}}'],
    ['event', 1003, 'process_termination', 4, all, null, null, '{"category":"process_termination","timestamp":"2026-11-29T10:00:01.003000Z","vigil":{"schema":1,"seq":4,"exit_code":3}}'],
    // a file event: only ProcessId, ProcessGuid and Image moved (no CommandLine, no parent fields): the index holds only those of the process rows
    ['event', 1004, 'file_event', 3, PMASK.ProcessId | PMASK.ProcessGuid | PMASK.Image, null, null, '{"category":"file_event","timestamp":"2026-11-29T10:00:01.004000Z","User":"u","TargetFilename":"/tmp/x-file","vigil":{"schema":1,"seq":5}}'],
  ];
  // whole rows: no process row (an older store's shape, events without a process)
  const whole = [
    { category: 'file_event', timestamp: '2026-11-29T10:00:02.000000Z', Image: '/usr/bin/CURL', CommandLine: 'CURL -o /tmp/a,b "q\\" x', TargetFilename: '/tmp/ünï cødé\n.txt', ProcessId: 77, vigil: { weird: 'a\u001fb', big: 1.5, nest: { deep: 'value-x' } } },
    { category: 'file_event', timestamp: '2026-11-29T10:00:02.001000Z', Image: '/usr/bin/base64', CommandLine: 'base64 -d /tmp/payload', TargetFilename: '/tmp/payload', ProcessId: 12, Ancestors: [{ ProcessId: 1, Image: '/sbin/zz-init', CommandLine: 'zz' }] },
  ];
  for (const w of whole) rows.push(toRow('event', w, JSON.stringify(w)));
  const alert = { rule_id: 'r1', level: 'high', timestamp: '2026-11-29T10:00:03.000000Z', event: whole[1] };
  rows.push(toRow('alert', alert, JSON.stringify(alert)));
  st.insertBatch(rows, procs);
}

const MATCHES: FieldMatch[] = [
  { field: 'Image', op: '=', value: '/usr/bin/curl' },
  { field: 'Image', op: '~', value: '*/curl' },
  { field: 'Image', op: '~', value: '/usr/bin/cu*' },
  { field: 'CommandLine', op: '~', value: '*example.org*' },
  { field: 'CommandLine', op: '~', value: '*b="2"' },
  { field: 'CommandLine', op: '~', value: '*/tmp/a,b*' },
  { field: 'CommandLine', op: '~', value: '*"q\\\\" x' },
  { field: 'CommandLine', op: '=', value: 'base64 -d /tmp/payload' },
  { field: 'ParentImage', op: '=', value: '/usr/bin/bash' },
  { field: 'ParentCommandLine', op: '~', value: 'bash*' },
  { field: 'ProcessGuid', op: '=', value: '{p-3}' },
  { field: 'ParentProcessGuid', op: '=', value: '{p-2}' },
  { field: 'ProcessId', op: '=', value: '300' },
  { field: 'ProcessId', op: '=', value: '12' },
  { field: 'ProcessId', op: '~', value: '30?' },
  { field: 'CurrentDirectory', op: '=', value: '/tmp' },
  { field: 'DestinationIp', op: '~', value: '93.184.*' },
  { field: 'DestinationPort', op: '=', value: '443' },
  { field: 'TargetFilename', op: '~', value: '*ünï cødé*' },
  { field: 'TargetFilename', op: '~', value: '*CØDÉ*' },
  { field: 'vigil.comm', op: '=', value: 'echo' },
  { field: 'vigil.truncated', op: '=', value: '0' },
  { field: 'vigil.exit_code', op: '=', value: '3' },
  { field: 'vigil.argc', op: '=', value: '3' },
  { field: 'vigil.exe_ino', op: '=', value: '78' },
  { field: 'vigil.argv.1', op: '=', value: 'a b' },
  { field: 'vigil.argv.1', op: '=', value: '-s' },
  { field: 'vigil.argv', op: '~', value: '*"https://example.org*' },
  { field: 'vigil.flags', op: '~', value: '[1,2]' },
  { field: 'vigil.flags.1', op: '=', value: '2' },
  { field: 'vigil', op: '~', value: '*"comm":"curl"*' },
  { field: 'vigil', op: '~', value: '*"weird"*' },
  { field: 'vigil.nest', op: '~', value: '*"deep":*' },
  { field: 'vigil.nest', op: '=', value: '{"deep":"value-x"}' },
  { field: 'vigil.weird', op: '=', value: 'a\u001fb' },
  { field: 'vigil.big', op: '=', value: '1.5' },
  { field: 'Ancestors.0.Image', op: '~', value: '*zz-init' },
  { field: 'User', op: '=', value: 'u' },
  { field: 'Image', op: '=', value: '/nonexistent' },
  { field: 'Image', op: '~', value: '*\\*x*' },
];

describe('store: text index (records_text)', () => {
  it('gives the same rows through the index as through a scan, for every kind of match', () => {
    const st = EventStore.open(tmp('s.db'));
    fill(st);
    let indexed = 0;
    for (const m of MATCHES) {
      for (const [order, bounds] of [['asc', {}], ['desc', {}], ['desc', { since: 1001 }], ['asc', { until: 1002 }], ['desc', { since: 1001, until: 3_000_000_000_000 }], ['desc', { until: 3_000_000_000_000, limit: 1 }], ['asc', { since: 0, limit: 1 }]] as const) {
        // (the last two: the rows of the range in time order are tried first, and with limit 1 they can be the answer)
        expectSameAsScan(st, { fields: [m], order, limit: 100, ...bounds }, `${m.field}${m.op}${m.value}`);
      }
      if (st.explain({ fields: [m] }).some((d) => /^SCAN f VIRTUAL TABLE/.test(d))) indexed++;
    }
    // the cases are not all empty: the matches find rows
    const found = MATCHES.filter((m) => st.query({ fields: [m], textIndex: false }).length > 0).length;
    expect(found).toBeGreaterThan(MATCHES.length - 4);
    expect(indexed).toBe(MATCHES.filter((m) => matchTrigrams(m) !== null).length);
    expect(indexed).toBeGreaterThan(MATCHES.length - 10);
    // combined with the other filters
    expect(st.query({ category: 'network_connection', fields: [{ field: 'Image', op: '~', value: '*curl' }] }).length).toBe(1);
    expect(st.query({ since: 1001, until: 1003, fields: [{ field: 'Image', op: '~', value: '*curl' }] }).length).toBe(1);
    st.close();
  });

  it('a wider row after a narrower one of the same process and parent in one chunk: every field of the wider row is found through the index', () => {
    const st = EventStore.open(tmp('given.db'));
    const procs: ProcessRow[] = [
      [1, '{given-parent}', 100, 1, null, '/usr/bin/zsh', 'zsh -l', '/root', 0, null],
      [2, '{given-child}', 200, 100, 1, '/usr/bin/wget', 'wget -q http://given.example/x', '/srv/given-cwd', 0, '{"argv":["wget","-q","http://given.example/x"],"argc":3,"exe_dev":2049,"exe_ino":"4242"}'],
      // a second child of the same parent, in the same chunk (same program)
      [3, '{given-other}', 201, 100, 1, '/usr/bin/wget', 'wget http://other.example/y', '/srv/other-cwd', 0, null],
    ];
    const narrow = PMASK.ProcessId | PMASK.ProcessGuid | PMASK.Image;
    const all = narrow | PMASK.CommandLine | PMASK.CurrentDirectory | PMASK.ParentProcessId | PMASK.ParentProcessGuid | PMASK.ParentImage | PMASK.ParentCommandLine | PMASK.Ancestors;
    const ev = (cat: string, seq: number) => `{"category":"${cat}","timestamp":"2026-11-29T10:00:0${seq}.000000Z","vigil":{"schema":1,"seq":${seq}}}`;
    // process 2: a file event first (its process row gives only ProcessId, ProcessGuid and Image),
    // then its process_creation (every field, the detail too), then its termination (nothing new);
    // process 3: a file event, then a network_connection (CommandLine and CurrentDirectory too),
    // then its process_creation (every field but the detail)
    st.insertBatch(
      [
        ['event', 1000, 'file_event', 2, narrow, null, null, ev('file_event', 1)],
        ['event', 1001, 'process_creation', 2, all | PMASK.Detail, null, null, ev('process_creation', 2)],
        ['event', 1002, 'process_termination', 2, narrow, null, null, ev('process_termination', 3)],
        ['event', 1003, 'file_event', 3, narrow, null, null, ev('file_event', 4)],
        ['event', 1004, 'network_connection', 3, narrow | PMASK.CommandLine | PMASK.CurrentDirectory, null, null, ev('network_connection', 5)],
        ['event', 1005, 'process_creation', 3, all, null, null, ev('process_creation', 6)],
      ],
      procs,
    );
    // one chunk holds them all (one program, one transaction)
    expect(indexed(st)).toMatchObject({ docs: 1, covered: 6 });
    const matches: FieldMatch[] = [
      { field: 'CommandLine', op: '~', value: '*given.example*' },
      { field: 'CommandLine', op: '~', value: '*other.example*' },
      { field: 'CurrentDirectory', op: '=', value: '/srv/given-cwd' },
      { field: 'CurrentDirectory', op: '=', value: '/srv/other-cwd' },
      { field: 'ParentImage', op: '=', value: '/usr/bin/zsh' },
      { field: 'ParentCommandLine', op: '=', value: 'zsh -l' },
      { field: 'ParentProcessGuid', op: '=', value: '{given-parent}' },
      { field: 'ParentProcessId', op: '=', value: '100' },
      { field: 'vigil.exe_ino', op: '~', value: '424?' },
      { field: 'vigil.argv.2', op: '~', value: 'http://given.*' },
      { field: 'ProcessGuid', op: '=', value: '{given-other}' },
      { field: 'Image', op: '=', value: '/usr/bin/wget' },
    ];
    for (const m of matches) {
      const viaScan = expectSameAsScan(st, { fields: [m] }, `${m.field}${m.op}${m.value}`);
      expect(viaScan.length, `${m.field}${m.op}${m.value} finds rows`).toBeGreaterThan(0);
      expect(st.explain({ fields: [m] }).some((d) => /^SCAN f VIRTUAL TABLE/.test(d)), `${m.field} goes through the index`).toBe(true);
    }
    st.close();
  });

  it('a range longer than the rows tried in time order first: a match beyond them is still found', () => {
    const st = EventStore.open(tmp('probe.db'));
    const rows: StoreRow[] = [];
    for (let i = 0; i < 20_100; i++) {
      const ev = { category: 'file_event', TargetFilename: i === 0 ? '/tmp/the-only-one' : `/tmp/other-${i}` };
      rows.push(['event', 1000 + i, 'file_event', null, 0, null, null, JSON.stringify(ev)]);
    }
    st.insertBatch(rows);
    const m = { field: 'TargetFilename', op: '~' as const, value: '*the-only-one' };
    expect(st.query({ fields: [m], until: 1_000_000, limit: 5 }).length).toBe(1);
    expect(st.query({ fields: [m], since: 0, order: 'asc', limit: 5 }).length).toBe(1);
    expect(st.query({ fields: [{ ...m, value: '/tmp/other-2*' }], until: 1_000_000, limit: 5 }).map((r) => r.ts)).toEqual([21099, 21098, 21097, 21096, 21095]);
    st.close();
  });

  it('is what SQLite uses for a field match, newest first without sorting; short literals and Ancestors are not indexed', () => {
    const st = EventStore.open(tmp('p.db'));
    fill(st);
    const plan = st.explain({ fields: [{ field: 'CommandLine', op: '~', value: '*base64 -d*' }], category: 'file_event', since: 0 });
    // the text index is the outer loop, each candidate's row by its rowid, no sort
    expect(plan[0]).toMatch(/^SCAN f VIRTUAL TABLE INDEX/);
    expect(plan.some((d) => /^SEARCH r USING INTEGER PRIMARY KEY/.test(d))).toBe(true);
    expect(plan.some((d) => /TEMP B-TREE/.test(d))).toBe(false);
    expect(plan.some((d) => /^SCAN r\b/.test(d))).toBe(false);
    // without the index the same query reads the table (what the index avoids)
    expect(st.explain({ fields: [{ field: 'CommandLine', op: '~', value: '*base64 -d*' }], textIndex: false }).some((d) => /^SCAN r\b/.test(d))).toBe(true);
    expect(matchTrigrams({ field: 'User', op: '~', value: 'r*' })).toBeNull();
    expect(matchTrigrams({ field: 'Ancestors.0.Image', op: '=', value: '/sbin/init' })).toBeNull();
    expect(matchTrigrams({ field: 'timestamp', op: '~', value: '2026-*' })).toBeNull();
    expect(matchTrigrams({ field: 'User', op: '=', value: 'u' })).toEqual(['\x1fu\x1f']);
    // the other searches keep their indexes
    expect(st.explain({ category: 'file_event' })[0]).toMatch(/USING INDEX records_category/);
    expect(st.explain({ since: 5 })[0]).toMatch(/USING INDEX records_ts/);
    expect(st.explain({ kind: 'alert' })[0]).toMatch(/USING INDEX records_alerts/);
    expect(st.explain({ kind: 'alert', ruleId: 'r1' })[0]).toMatch(/USING INDEX records_rule/);
    // a time range of few rows: read through records_ts, not the index
    expect(st.explain({ since: 1000, until: 1001, fields: [{ field: 'Image', op: '~', value: '*curl' }] })[0]).toMatch(/USING INDEX records_ts/);
    st.close();
  });

  it('chunks: rows of many transactions and chunks come in order, cut at the limit, alerts between them not matched', () => {
    const st = EventStore.open(tmp('chunks.db'));
    let ts = 0;
    // 7 transactions of 50 rows (an alert every 10th): chunks end with a transaction or at 64 ids
    for (let t = 0; t < 7; t++) {
      const rows: StoreRow[] = [];
      for (let i = 0; i < 50; i++) {
        ts++;
        if (i % 10 === 9) rows.push(['alert', ts, 'process_creation', null, 0, 'r1', 'high', JSON.stringify({ TargetFilename: '/tmp/hit-alert' })]);
        else rows.push(['event', ts, 'file_event', null, 0, null, null, JSON.stringify({ category: 'file_event', TargetFilename: i % 3 ? `/tmp/hit-${ts}` : `/var/miss-${ts}` })]);
      }
      st.insertBatch(rows);
    }
    const m = { field: 'TargetFilename', op: '~' as const, value: '/tmp/hit*' };
    for (const order of ['asc', 'desc'] as const) {
      for (const limit of [1, 5, 63, 64, 65, 100, 1000]) {
        for (const bounds of [{}, { since: 120 }, { until: 200 }, { since: 70, until: 290 }]) {
          const q = { fields: [m], order, limit, ...bounds };
          expectSameAsScan(st, q, JSON.stringify(q));
        }
      }
    }
    expect(st.query({ fields: [m], limit: 3 }).map((r) => r.ts)).toEqual([348, 347, 345]);
    expect(indexed(st)).toMatchObject({ covered: indexed(st).events, orphans: 0 });
    st.close();
  });

  it('a process row leaves the writer\'s cache with its process_termination; later rows of it and of its children still carry its fields', () => {
    const st = EventStore.open(tmp('late.db'));
    const cache = (st as unknown as { textProcs: Map<number, unknown> }).textProcs;
    const procs: ProcessRow[] = [
      [1, '{p-1}', 10, 1, null, '/usr/bin/make', 'make all', '/src', 1000, null],
      [2, '{p-2}', 11, 10, 1, '/usr/bin/cc', 'cc -c a.c', '/src', 1000, null],
    ];
    const own = PMASK.ProcessGuid | PMASK.ProcessId | PMASK.Image;
    const parent = PMASK.ParentProcessId | PMASK.ParentImage | PMASK.ParentCommandLine;
    const ev = (category: string, extra: Record<string, unknown> = {}) => JSON.stringify({ category, ...extra });
    st.insertBatch(
      [
        ['event', 1, 'process_termination', 1, own, null, null, ev('process_termination', { vigil: { exit_code: 0 } })],
        // a late event of make (another sensor's ring), and make's child, after make's termination
        ['event', 2, 'file_event', 1, own, null, null, ev('file_event', { TargetFilename: '/src/late-1' })],
        ['event', 3, 'process_creation', 2, own | PMASK.CommandLine | parent, null, null, ev('process_creation')],
      ],
      procs,
    );
    // the next transaction: make's row is read back from the table
    st.insertBatch([
      ['event', 4, 'file_event', 1, own, null, null, ev('file_event', { TargetFilename: '/src/late-2' })],
      ['event', 5, 'process_termination', 2, own | parent, null, null, ev('process_termination', { vigil: { exit_code: 1 } })],
    ]);
    expect(cache.has(2)).toBe(false);
    const q = (field: string, op: '=' | '~', value: string) => expectSameAsScan(st, { fields: [{ field, op, value }], limit: 100 }, `${field} ${op} ${value}`).length;
    expect(q('Image', '=', '/usr/bin/make')).toBe(3);
    expect(q('ProcessId', '=', '10')).toBe(3);
    expect(q('ParentImage', '=', '/usr/bin/make')).toBe(2);
    expect(q('ParentCommandLine', '~', 'make *')).toBe(2);
    expect(q('Image', '=', '/usr/bin/cc')).toBe(2);
    expect(indexed(st)).toMatchObject({ covered: 5, events: 5, orphans: 0 });
    st.close();
  });

  it('chunks hold one program each: two fields of different programs side by side are no candidate', () => {
    const st = EventStore.open(tmp('programs.db'));
    // root's bash and user's ls, alternating in one transaction (and a process row for half of them)
    const procs: ProcessRow[] = [[1, '{p-1}', 10, 1, null, '/usr/bin/ls', 'ls -la', '/home/u', 1000, null]];
    const rows: StoreRow[] = [];
    for (let i = 0; i < 100; i++) {
      if (i % 2) rows.push(['event', i, 'process_creation', 1, PMASK.Image | PMASK.CommandLine, null, null, JSON.stringify({ category: 'process_creation', User: 'user' })]);
      else rows.push(['event', i, 'process_creation', null, 0, null, null, JSON.stringify({ category: 'process_creation', Image: '/usr/bin/bash', User: 'root' })]);
    }
    st.insertBatch(rows, procs);
    // two programs: chunks of up to 64 ids each, side by side
    expect(indexed(st)).toEqual({ docs: 4, chunks: 4, covered: 100, events: 100, orphans: 0 });
    const both = [
      { field: 'User', op: '=' as const, value: 'root' },
      { field: 'Image', op: '~' as const, value: '*/ls' },
    ];
    const grams = [...new Set(both.flatMap((m) => matchTrigrams(m)!))].map((g) => `"${g}"`).join(' AND ');
    expect((st.db.prepare('SELECT COUNT(*) AS n FROM records_text WHERE records_text MATCH ?').get(grams) as { n: number }).n).toBe(0);
    expect(st.query({ fields: both })).toEqual([]);
    expect(st.query({ fields: [both[0]!], limit: 1000 }).length).toBe(50);
    expect(st.query({ fields: [both[1]!, { field: 'User', op: '=', value: 'user' }], limit: 7 }).map((r) => r.ts)).toEqual([99, 97, 95, 93, 91, 89, 87]);
    st.close();
  });

  it('GUIDs and clocks are held in part (a GUID\'s first 6 characters, clocks to 10 ms, seq to its hundreds): matches on them still give what a scan gives', () => {
    const st = EventStore.open(tmp('cut.db'));
    const G = '{313999d7-d7d3-74fc-15c0-8e4d629159e3}';
    const G2 = '{313999d7-d7d3-0000-0000-000000000000}'; // the same kept part: a candidate the exact condition refuses
    const procs: ProcessRow[] = [
      [1, G, 100, 1, null, '/usr/bin/storm', 'storm 3', '/tmp', 0, null],
      [2, G2, 101, 100, 1, '/usr/bin/true', 'true --x', '/tmp', 0, null],
      [3, '{aa000000-0000-0000-0000-000000000001}', 102, 100, 1, '/usr/bin/true', 'true --y', '/tmp', 0, null],
    ];
    const all = PMASK.ProcessGuid | PMASK.ProcessId | PMASK.Image | PMASK.CommandLine | PMASK.ParentProcessGuid | PMASK.ParentImage;
    const rows: StoreRow[] = [];
    for (let i = 0; i < 150; i++) {
      const proc = 1 + (i % 3);
      const vigil = { schema: 1, seq: 6000 + i, boot_ns: String(4453689672597 + i * 1_000_003), start_ns: String(4453689179390 + proc), tid: 100 + proc };
      rows.push(['event', 1000 + i, 'process_creation', proc, proc === 1 ? all & ~(PMASK.ParentProcessGuid | PMASK.ParentImage) : all, null, null, JSON.stringify({ category: 'process_creation', User: 'root', vigil })]);
    }
    // whole rows: the fields in the JSON (a GUID with characters past ASCII, one of four bytes among them), clocks as numbers
    const whole = [
      { category: 'file_event', ProcessGuid: 'ünïcødé-𝒳𝒴-guid-long-value', ParentProcessGuid: G, vigil: { seq: 6013, boot_ns: 4453689672597 } },
      { category: 'file_event', ProcessGuid: '{313999D7-D7D3-74FC-15C0-8E4D629159E3}', vigil: { seq: { nested: 6013 }, boot_ns: null } },
    ];
    for (const w of whole) rows.push(toRow('event', w, JSON.stringify(w)));
    st.insertBatch(rows, procs);
    const matches: FieldMatch[] = [
      { field: 'ProcessGuid', op: '=', value: G },
      { field: 'ProcessGuid', op: '=', value: G2 },
      { field: 'ProcessGuid', op: '~', value: '{313999d7*' },
      { field: 'ProcessGuid', op: '~', value: '{313999D7-D7D3-74FC*' },
      { field: 'ProcessGuid', op: '~', value: '{313999d7-d7d3-74fc-15c0-8e4d629159e?}' },
      { field: 'ProcessGuid', op: '~', value: '*629159e3}' },
      { field: 'ProcessGuid', op: '~', value: '?313999d7-d7d3*' },
      { field: 'ProcessGuid', op: '=', value: 'ünïcødé-𝒳𝒴-guid-long-value' },
      { field: 'ProcessGuid', op: '~', value: 'ünïcødé-𝒳𝒴*' },
      { field: 'ProcessGuid', op: '~', value: '*guid-long-value' },
      { field: 'ParentProcessGuid', op: '=', value: G },
      { field: 'ParentProcessGuid', op: '~', value: '{313999d7-d7d3-74fc-15c0-8e4d629159e3}' },
      { field: 'vigil.boot_ns', op: '=', value: String(4453689672597 + 77 * 1_000_003) },
      { field: 'vigil.boot_ns', op: '=', value: '4453689672597' },
      { field: 'vigil.boot_ns', op: '~', value: String(4453689672597 + 140 * 1_000_003) },
      { field: 'vigil.boot_ns', op: '~', value: '44536896725??' },
      { field: 'vigil.boot_ns', op: '~', value: '4453*' },
      { field: 'vigil.start_ns', op: '=', value: '4453689179392' },
      { field: 'vigil.seq', op: '=', value: '6013' },
      { field: 'vigil.seq', op: '=', value: '6149' },
      { field: 'vigil.seq', op: '=', value: '6150' },
      { field: 'vigil.seq', op: '~', value: '60?3' },
      { field: 'vigil.seq', op: '=', value: '{"nested":6013}' },
      { field: 'vigil.tid', op: '=', value: '103' },
    ];
    for (const m of matches) {
      for (const [order, limit] of [['desc', 100], ['asc', 100], ['desc', 1], ['asc', 3]] as const) {
        expectSameAsScan(st, { fields: [m], order, limit }, `${m.field}${m.op}${m.value} ${order} ${limit}`);
      }
    }
    expect(st.query({ fields: [matches[0]!], limit: 1000 }).length).toBe(50);
    expect(st.query({ fields: [matches[18]!] }).length).toBe(2);
    // the kept part only: the trigrams of a GUID's first 6 characters, a clock's all but its last 7 digits
    expect(matchTrigrams(matches[0]!)).toEqual(['313', '139', '399']);
    expect(matchTrigrams(matches[13]!)).toEqual(['\x1f44', '445', '453', '536', '368']);
    expect(matchTrigrams({ field: 'vigil.seq', op: '=', value: '12' })).toEqual(['\x1f12', '12\x1f']);
    // where the kept part ends is not known: not indexed (the rows are read)
    for (const i of [5, 7, 8, 9, 16]) expect(matchTrigrams(matches[i]!), matches[i]!.value).toBeNull();
    for (const i of [0, 2, 3, 4, 6, 10, 11, 13, 14, 15, 17, 18, 21]) expect(st.explain({ fields: [matches[i]!] })[0], matches[i]!.value).toMatch(/^SCAN f VIRTUAL TABLE/);
    // and the rest is not in the index: a trigram of the GUID's tail, and of a clock's last digits, find no chunk
    const docs = (text: string) => {
      const grams = Array.from({ length: text.length - 2 }, (_, i) => `"${text.slice(i, i + 3)}"`).join(' AND ');
      return (st.db.prepare('SELECT COUNT(*) AS n FROM records_text WHERE records_text MATCH ?').get(grams) as { n: number }).n;
    };
    expect(docs('31399')).toBeGreaterThan(0);
    expect(docs('13999')).toBe(0);
    expect(docs('9159e3')).toBe(0);
    expect(docs('\x1f445368')).toBeGreaterThan(0);
    expect(docs('4453689')).toBe(0);
    st.close();
  });

  it('a version 4 store (a document per row) is indexed again in chunks; a reader of it before that reads the rows', () => {
    const path = tmp('v4.db');
    const st = EventStore.open(path);
    st.insertBatch(Array.from({ length: 100 }, (_, i): StoreRow => ['event', i, 'file_event', null, 0, null, null, JSON.stringify({ category: 'file_event', TargetFilename: `/v4/file-${i}` })]));
    st.close();
    // made as schema 4 made it: a document per row, named by the row's id
    const v4 = new Database(path);
    v4.exec(`DROP TRIGGER records_text_delete; DROP TRIGGER records_text_chunk_delete; DROP TABLE records_text_chunks; DROP TABLE records_text;
      CREATE VIRTUAL TABLE records_text USING fts5(t, tokenize = 'trigram', detail = none, content = '', contentless_delete = 1);
      CREATE TRIGGER records_text_delete AFTER DELETE ON records WHEN old.kind = 'event' BEGIN DELETE FROM records_text WHERE rowid = old.id; END;
      INSERT INTO records_text (rowid, t) SELECT id, char(31) || json_extract(json, '$.TargetFilename') || char(31) FROM records;
      PRAGMA user_version = 4;`);
    v4.close();
    const q = { fields: [{ field: 'TargetFilename', op: '=' as const, value: '/v4/file-70' }] };
    const ro = EventStore.open(path, { readonly: true });
    expect(ro.hasTextIndex()).toBe(false);
    expect(ro.explain(q).some((d) => /VIRTUAL TABLE/.test(d))).toBe(false);
    expect(ro.query(q).map((r) => r.ts)).toEqual([70]);
    ro.close();
    const again = EventStore.open(path);
    expect(again.db.pragma('user_version', { simple: true })).toBe(5);
    expect(indexed(again)).toEqual({ docs: 2, chunks: 2, covered: 100, events: 100, orphans: 0 });
    expect(again.explain(q)[0]).toMatch(/^SCAN f VIRTUAL TABLE/);
    expect(again.query(q).map((r) => r.ts)).toEqual([70]);
    again.close();
  });

  it('migrates a version 3 store: its events are indexed, new ones too, and pruned rows leave the index', () => {
    const path = tmp('v3.db');
    const v3 = new Database(path);
    v3.exec(`
      CREATE TABLE records (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ts INTEGER NOT NULL, category TEXT NOT NULL, proc INTEGER, pmask INTEGER NOT NULL DEFAULT 0, rule_id TEXT, level TEXT, json TEXT NOT NULL);
      CREATE INDEX records_category ON records (category, ts); CREATE INDEX records_ts ON records (ts);
      CREATE INDEX records_alerts ON records (ts) WHERE kind = 'alert'; CREATE INDEX records_rule ON records (rule_id) WHERE rule_id IS NOT NULL;
      CREATE TABLE processes (id INTEGER PRIMARY KEY, guid TEXT NOT NULL, pid INTEGER NOT NULL, ppid INTEGER NOT NULL, parent INTEGER, image TEXT NOT NULL, command_line TEXT NOT NULL, cwd TEXT NOT NULL, uid INTEGER, detail TEXT);
      INSERT INTO processes VALUES (1, '{p-1}', 10, 1, NULL, '/usr/bin/old-tool', 'old-tool --flag', '/', 0, NULL);
      PRAGMA user_version = 3;`);
    const ins = v3.prepare('INSERT INTO records (kind, ts, category, proc, pmask, rule_id, level, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < 300; i++) ins.run('event', i, 'file_event', 1, PMASK.Image | PMASK.CommandLine | PMASK.ProcessId | PMASK.ProcessGuid, null, null, JSON.stringify({ category: 'file_event', timestamp: 'x', TargetFilename: `/old/file-${i}` }));
    v3.close();
    // a reader of the old store (no index yet) still answers, by a scan
    const ro = EventStore.open(path, { readonly: true });
    expect(ro.hasTextIndex()).toBe(false);
    expect(ro.query({ fields: [{ field: 'TargetFilename', op: '=', value: '/old/file-7' }] }).length).toBe(1);
    ro.close();
    const st = EventStore.open(path);
    expect(st.db.pragma('user_version', { simple: true })).toBe(5);
    // 300 rows in chunks of 64 ids
    expect(indexed(st)).toEqual({ docs: 5, chunks: 5, covered: 300, events: 300, orphans: 0 });
    const q = { fields: [{ field: 'TargetFilename', op: '=' as const, value: '/old/file-7' }] };
    expect(st.explain(q)[0]).toMatch(/^SCAN f VIRTUAL TABLE/);
    expect(st.query(q).map((r) => JSON.parse(r.json).CommandLine)).toEqual(['old-tool --flag']);
    expect(st.query({ fields: [{ field: 'Image', op: '~', value: '*old-tool' }] }).length).toBe(100);
    st.insertBatch([toRow('event', { category: 'file_event', TargetFilename: '/new/one' }, '{"category":"file_event","TargetFilename":"/new/one"}')]);
    expect(st.query({ fields: [{ field: 'TargetFilename', op: '~', value: '/new/*' }] }).length).toBe(1);
    expect(indexed(st)).toEqual({ docs: 6, chunks: 6, covered: 301, events: 301, orphans: 0 });
    // ids 1-251 pruned: the chunks that end there go (1-64 … 129-192); 193-256 keeps its rows 252-256
    expect(st.prune(50, false)).toBe(251);
    expect(indexed(st)).toEqual({ docs: 3, chunks: 3, covered: 50, events: 50, orphans: 0 });
    expect(st.query({ fields: [{ field: 'TargetFilename', op: '=', value: '/old/file-251' }] }).length).toBe(1);
    expect(st.query({ fields: [{ field: 'TargetFilename', op: '=', value: '/old/file-7' }] })).toEqual([]);
    expect(st.query({ fields: [{ field: 'TargetFilename', op: '=', value: '/old/file-299' }] }).length).toBe(1);
    st.close();
    // opened again: nothing to migrate
    const again = EventStore.open(path);
    expect(indexed(again)).toEqual({ docs: 3, chunks: 3, covered: 50, events: 50, orphans: 0 });
    again.close();
  });

  it('store.text_index off: a version 3 store migrates without it, a store with it drops it, matches read the rows; on again, every event is indexed', () => {
    const path = tmp('off.db');
    const v3 = new Database(path);
    v3.exec(`
      CREATE TABLE records (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ts INTEGER NOT NULL, category TEXT NOT NULL, proc INTEGER, pmask INTEGER NOT NULL DEFAULT 0, rule_id TEXT, level TEXT, json TEXT NOT NULL);
      CREATE INDEX records_category ON records (category, ts); CREATE INDEX records_ts ON records (ts);
      CREATE TABLE processes (id INTEGER PRIMARY KEY, guid TEXT NOT NULL, pid INTEGER NOT NULL, ppid INTEGER NOT NULL, parent INTEGER, image TEXT NOT NULL, command_line TEXT NOT NULL, cwd TEXT NOT NULL, uid INTEGER, detail TEXT);
      PRAGMA user_version = 3;`);
    const ins = v3.prepare('INSERT INTO records (kind, ts, category, proc, pmask, rule_id, level, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < 20; i++) ins.run('event', i, 'file_event', null, 0, null, null, JSON.stringify({ category: 'file_event', timestamp: 'x', TargetFilename: `/old/file-${i}` }));
    v3.close();
    const table = (st: EventStore) =>
      !!st.db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('records_text', 'records_text_delete', 'records_text_chunks', 'records_text_chunk_delete')").get();
    const q = { fields: [{ field: 'TargetFilename', op: '=' as const, value: '/old/file-7' }] };
    // off: migrated to 4, no index made; matches are a scan of the rows
    const off = EventStore.open(path, { textIndex: false });
    expect(off.db.pragma('user_version', { simple: true })).toBe(5);
    expect(table(off)).toBe(false);
    expect(off.explain(q).some((d) => /VIRTUAL TABLE/.test(d))).toBe(false);
    expect(off.query(q).length).toBe(1);
    off.close();
    // on: the stored events are indexed (what was written while it was off too)
    const on = EventStore.open(path);
    expect(on.hasTextIndex()).toBe(true);
    expect(indexed(on)).toEqual({ docs: 1, chunks: 1, covered: 20, events: 20, orphans: 0 });
    expect(on.explain(q)[0]).toMatch(/^SCAN f VIRTUAL TABLE/);
    expect(on.query(q).length).toBe(1);
    on.close();
    // a store with the index opened with it off: the index and its trigger are dropped; writes and prunes still work
    const again = EventStore.open(path, { textIndex: false });
    expect(table(again)).toBe(false);
    again.insertBatch([toRow('event', { category: 'file_event', TargetFilename: '/new/one' }, '{"category":"file_event","TargetFilename":"/new/one"}')]);
    expect(again.query({ fields: [{ field: 'TargetFilename', op: '~', value: '/new/*' }] }).length).toBe(1);
    expect(again.prune(5, false)).toBe(16);
    again.close();
    // and the same rows through the index and through a scan of a store that never had it, for every kind of match
    const a = EventStore.open(tmp('a.db'));
    const b = EventStore.open(tmp('b.db'), { textIndex: false });
    fill(a);
    fill(b);
    for (const m of MATCHES) expect(b.query({ fields: [m] }).map((r) => r.json), `${m.field}${m.op}${m.value}`).toEqual(a.query({ fields: [m] }).map((r) => r.json));
    a.close();
    b.close();
  });
});
