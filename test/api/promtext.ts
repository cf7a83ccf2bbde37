/**
 * A strict parser of the Prometheus text exposition format 0.0.4 (for tests):
 * every sample belongs to a family declared by # TYPE before it, names and
 * labels are well formed, values are floats, histogram buckets are cumulative
 * and end with le="+Inf" equal to _count. Throws with the line number.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: string;
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(v: string, at: string): number {
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`${at}: not a float: ${v}`);
  return Number(v);
}

function parseLabels(s: string, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (!m) throw new Error(`${at}: bad label at ${s.slice(i, i + 20)}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      if (i >= s.length) throw new Error(`${at}: unterminated label value`);
      const c = s[i]!;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === 'n') v += '\n';
        else if (n === '\\' || n === '"') v += n;
        else throw new Error(`${at}: bad escape \\${n}`);
        i += 2;
      } else if (c === '"') {
        i++;
        break;
      } else if (c === '\n') throw new Error(`${at}: raw newline in label`);
      else {
        v += c;
        i++;
      }
    }
    if (m[1]! in out) throw new Error(`${at}: label ${m[1]} twice`);
    out[m[1]!] = v;
    if (s[i] === ',') i++;
    else if (i < s.length) throw new Error(`${at}: expected , between labels`);
  }
  return out;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const fams = new Map<string, Family>();
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  const familyOf = (sample: string): Family | undefined => {
    const f = fams.get(sample);
    if (f) return f;
    for (const suf of ['_bucket', '_sum', '_count']) {
      if (sample.endsWith(suf)) {
        const g = fams.get(sample.slice(0, -suf.length));
        if (g && (g.type === 'histogram' || (g.type === 'summary' && suf !== '_bucket'))) return g;
      }
    }
    return undefined;
  };
  lines.forEach((line, idx) => {
    const at = `line ${idx + 1}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) (.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`${at}: malformed ${line}`);
        return;
      }
      const [, kw, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`${at}: bad metric name ${name}`);
      const f = fams.get(name!) ?? { name: name!, type: 'untyped', samples: [] };
      if (kw === 'TYPE') {
        if (!TYPES.has(rest!)) throw new Error(`${at}: bad type ${rest}`);
        if (f.samples.length) throw new Error(`${at}: TYPE after samples of ${name}`);
        f.type = rest!;
      } else f.help = rest!;
      fams.set(name!, f);
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`${at}: not a sample: ${line.slice(0, 80)}`);
    const f = familyOf(m[1]!);
    if (!f) throw new Error(`${at}: sample ${m[1]} without a # TYPE before it`);
    f.samples.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2], at) : {}, value: parseValue(m[3]!, at) });
  });
  for (const f of fams.values()) {
    if (f.type !== 'histogram' || !f.samples.length) continue;
    // one series per label set (le aside): buckets ascending and cumulative, +Inf equal to _count
    const key = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le').sort());
    const series = new Map<string, Sample[]>();
    for (const s of f.samples) if (s.name === `${f.name}_bucket`) series.set(key(s.labels), [...(series.get(key(s.labels)) ?? []), s]);
    for (const [k, buckets] of series) {
      let prev = -Infinity;
      let last = -1;
      for (const b of buckets) {
        const le = parseValue(b.labels.le ?? 'x', `${f.name} le`);
        if (le <= prev) throw new Error(`${f.name}${k}: buckets not ascending`);
        if (b.value < last) throw new Error(`${f.name}${k}: buckets not cumulative`);
        prev = le;
        last = b.value;
      }
      const count = f.samples.find((s) => s.name === `${f.name}_count` && key(s.labels) === k);
      if (prev !== Infinity) throw new Error(`${f.name}${k}: no le="+Inf" bucket`);
      if (!count || count.value !== last) throw new Error(`${f.name}${k}: _count differs from the +Inf bucket`);
    }
  }
  return fams;
}

/** The value of a sample by family and labels (all given labels must match). */
export function sampleValue(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of fams.values()) for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return undefined;
}
