/**
 * Sigma rule files → position-annotated rule models.
 *
 * The YAML is read with the `yaml` package's Document API so every error names
 * file:line:col. A file may hold several YAML documents (rules, correlations, filters);
 * each document is parsed on its own so one bad document is reported without hiding
 * the others, and one bad file never stops other files from loading.
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import { ConditionError, expandPattern, parseCondition, type Cond } from './condition.js';
import { limitMessages, ruleLimits, type RuleLimits } from './limits.js';
import type { LogSource, RuleError } from './types.js';
import { compileValue, parseModifiers, type ValuePred, type ValueContext } from './values.js';

export interface SelLeaf {
  t: 'leaf';
  /** Sigma field name; null for keyword (any field) search */
  field: string | null;
  preds: ValuePred[];
  /** preds are AND-ed (`|all`) instead of OR-ed */
  all: boolean;
  /** `|neq`: the leaf is true when no predicate holds */
  neg: boolean;
}
export type SelNode = SelLeaf | { t: 'and' | 'or'; items: SelNode[] };

export interface Detection {
  /** identifier → selection tree, in file order */
  selections: Map<string, SelNode>;
  condition: Cond;
}

interface Base {
  path: string;
  line: number;
  col: number;
  docIndex: number;
  id: string;
  name?: string;
  title: string;
  level: string;
  status?: string;
  description?: string;
  tags: string[];
  /** position of the `id` value (the document start when there is none) */
  idAt: Pos;
}

/** A 1-based line:col in the rule file. */
export interface Pos {
  line: number;
  col: number;
}

export interface ParsedRule extends Base {
  kind: 'rule';
  logsource: LogSource;
  detection: Detection;
  /** Sigma field name → position of its first use in the detection */
  fieldAt: Record<string, Pos>;
}

export interface CorrelationCondition {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  eq?: number;
  neq?: number;
  field?: string;
}

export interface ParsedCorrelation extends Base {
  kind: 'correlation';
  type: 'event_count' | 'value_count' | 'temporal' | 'temporal_ordered' | 'value_sum' | 'value_avg';
  rules: string[];
  groupBy: string[];
  timespanMs: number;
  condition: CorrelationCondition;
  aliases: Record<string, Record<string, string>>;
  generate: boolean;
  /** position of each entry of `rules` */
  rulesAt: Pos[];
}

export interface ParsedFilter extends Base {
  kind: 'filter';
  logsource: LogSource;
  rules: string[];
  detection: Detection;
  /** position of each entry of `rules` */
  rulesAt: Pos[];
}

export type ParsedDoc = ParsedRule | ParsedCorrelation | ParsedFilter;

export interface ParseResult {
  docs: ParsedDoc[];
  errors: RuleError[];
}

class DocError extends Error {
  constructor(
    message: string,
    public readonly offset: number,
  ) {
    super(message);
  }
}

/** Every error found in one document (a document is refused when it has any). */
class DocErrors extends Error {
  constructor(readonly errors: DocError[]) {
    super(errors[0]?.message ?? 'errors');
  }
}

export interface ParseOptions extends Partial<ValueContext> {
  limits?: Partial<RuleLimits>;
}

/** State of one document's parse: positions, collected errors and warnings. */
interface PCtx {
  vctx: ValueContext;
  limits: RuleLimits;
  pos: (off: number) => Pos;
  /** errors collected so far; parsing goes on after an error to report every one */
  errs: DocError[];
  warn: (message: string, off: number) => void;
  /** Sigma field name → offset of its first key */
  fieldAt: Map<string, number>;
}

/** Run `f`; a DocError it throws is recorded and `undefined` returned, so parsing goes on. */
function attempt<T>(c: PCtx, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof DocErrors) c.errs.push(...e.errors);
    else if (e instanceof DocError) c.errs.push(e);
    else throw e;
    return undefined;
  }
}

/** Parse one rule file. Never throws. */
export function parseRuleFile(path: string, text: string, opts: ParseOptions = {}): ParseResult {
  const lc = new LineCounter();
  const out: ParseResult = { docs: [], errors: [] };
  const vctx: ValueContext = { placeholders: opts.placeholders ?? {} };
  const limits = ruleLimits(opts.limits);
  const pos = (off: number): Pos => {
    const p = lc.linePos(Math.max(0, off));
    return { line: p.line, col: p.col };
  };
  let documents;
  try {
    documents = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    out.errors.push({ path, line: 1, col: 1, message: `cannot parse YAML: ${(e as Error).message}`, severity: 'error' });
    return out;
  }
  const docs = Array.isArray(documents) ? documents : [];
  docs.forEach((doc, docIndex) => {
    if (doc.errors.length) {
      for (const e of doc.errors) {
        const lp = e.linePos?.[0] ?? pos(e.pos[0]);
        out.errors.push({ path, line: lp.line, col: lp.col, message: `YAML: ${e.message.split('\n')[0]}`, severity: 'error' });
      }
      return;
    }
    const root = doc.contents as Node | null;
    if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return; // empty document
    const warnings: RuleError[] = [];
    const c: PCtx = {
      vctx,
      limits,
      pos,
      errs: [],
      warn: (message, o) => {
        const p = pos(o);
        warnings.push({ path, line: p.line, col: p.col, message, severity: 'warning' });
      },
      fieldAt: new Map(),
    };
    let parsed: ParsedDoc | undefined;
    try {
      parsed = parseDoc(root, path, docIndex, c);
    } catch (e) {
      if (e instanceof DocErrors) c.errs.push(...e.errors);
      else if (e instanceof DocError) c.errs.push(e);
      else c.errs.push(new DocError(`internal error: ${(e as Error).message}`, off(root)));
    }
    if (c.errs.length || !parsed) {
      const idNode = isMap(root) ? root.get('id') : undefined;
      const seen = new Set<string>();
      for (const e of [...c.errs].sort((a, b) => a.offset - b.offset)) {
        const p = pos(e.offset);
        const key = `${p.line}:${p.col}:${e.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.errors.push({
          path,
          line: p.line,
          col: p.col,
          message: e.message,
          severity: 'error',
          ...(typeof idNode === 'string' ? { rule_id: idNode } : {}),
        });
      }
      return;
    }
    out.docs.push(parsed);
    for (const w of warnings) out.errors.push({ ...w, rule_id: parsed.id });
  });
  return out;
}

function off(n: Node | Pair | null | undefined): number {
  if (!n) return 0;
  const r = (n as Node).range ?? ((n as Pair).key as Node | null)?.range;
  return r ? r[0] : 0;
}

function getPair(m: YAMLMap, key: string): Pair<Scalar, Node | null> | undefined {
  for (const it of m.items) {
    if (isScalar(it.key) && it.key.value === key) return it as Pair<Scalar, Node | null>;
  }
  return undefined;
}

/** Refuse a scalar string longer than the value limit. */
function checkLen(c: PCtx, what: string, v: unknown, at: number): void {
  if (typeof v === 'string' && v.length > c.limits.maxValueChars) throw new DocError(limitMessages.value(what, v.length, c.limits), at);
}

function str(c: PCtx, m: YAMLMap, key: string, required: boolean, at: number): string | undefined {
  const p = getPair(m, key);
  if (!p) {
    if (required) throw new DocError(`missing '${key}'`, at);
    return undefined;
  }
  const v = p.value;
  if (!isScalar(v) || v.value === null || typeof v.value === 'object') {
    if (required) throw new DocError(`'${key}' must be a string`, off(v ?? p));
    return undefined;
  }
  checkLen(c, `'${key}'`, v.value, off(v));
  return String(v.value);
}

function strList(c: PCtx, m: YAMLMap, key: string): { values: string[]; at: number[] } {
  const p = getPair(m, key);
  if (!p || !p.value) return { values: [], at: [] };
  if (isScalar(p.value)) {
    checkLen(c, `'${key}'`, p.value.value, off(p.value));
    return p.value.value === null ? { values: [], at: [] } : { values: [String(p.value.value)], at: [off(p.value)] };
  }
  if (!isSeq(p.value)) throw new DocError(`'${key}' must be a list`, off(p.value));
  const values: string[] = [];
  const at: number[] = [];
  for (const x of p.value.items) {
    if (!isScalar(x)) throw new DocError(`'${key}' entries must be strings`, off(x as Node));
    checkLen(c, `an entry of '${key}'`, x.value, off(x));
    values.push(String(x.value));
    at.push(off(x));
  }
  return { values, at };
}

function parseDoc(root: Node, path: string, docIndex: number, c: PCtx): ParsedDoc {
  if (!isMap(root)) throw new DocError(`a Sigma document must be a YAML mapping`, off(root));
  const at = off(root);
  const action = attempt(c, () => str(c, root, 'action', false, at));
  if (action)
    throw new DocError(`'action: ${action}' rule collections (Sigma v1) are not supported; write each rule as a complete document`, off(getPair(root, 'action')));
  const title = attempt(c, () => str(c, root, 'title', true, at)) ?? '';
  let id = attempt(c, () => str(c, root, 'id', false, at));
  const p0 = c.pos(at);
  const idPair = getPair(root, 'id');
  const idAt = idPair ? c.pos(off(idPair.value ?? idPair)) : p0;
  if (!id) {
    id = `${path}#${docIndex}`;
    c.warn(`rule has no 'id'; using '${id}'`, at);
  }
  const tags = attempt(c, () => strList(c, root, 'tags').values) ?? [];
  const base: Base = {
    path,
    line: p0.line,
    col: p0.col,
    docIndex,
    id,
    title,
    level: attempt(c, () => str(c, root, 'level', false, at)) ?? 'medium',
    tags,
    idAt,
  };
  const name = attempt(c, () => str(c, root, 'name', false, at));
  if (name) base.name = name;
  const status = attempt(c, () => str(c, root, 'status', false, at));
  if (status) base.status = status;
  const desc = attempt(c, () => str(c, root, 'description', false, at));
  if (desc) base.description = desc;
  if (!['informational', 'low', 'medium', 'high', 'critical'].includes(base.level))
    c.warn(`unknown level '${base.level}' (expected informational, low, medium, high or critical)`, off(getPair(root, 'level')));

  const corr = getPair(root, 'correlation');
  if (corr) return finish(c, parseCorrelation(c, base, corr, root));
  const filt = getPair(root, 'filter');
  const detP = getPair(root, 'detection');
  if (filt && !detP) {
    if (!isMap(filt.value)) throw new DocError(`'filter' must be a mapping`, off(filt.value ?? filt));
    const fv = filt.value;
    const refs = attempt(c, () => strList(c, fv, 'rules')) ?? { values: [], at: [] };
    if (!refs.values.length && !c.errs.length) c.errs.push(new DocError(`filter needs a non-empty 'rules' list`, off(filt)));
    const logsource = attempt(c, () => parseLogsource(c, root, at, false)) ?? {};
    const detection = parseDetection(c, fv, new Set(['rules']), off(filt));
    return finish(c, { ...base, kind: 'filter', rules: refs.values, rulesAt: refs.at.map(c.pos), logsource, detection });
  }
  if (!detP) {
    attempt(c, () => parseLogsource(c, root, at, true));
    throw new DocError(`missing 'detection' (or 'correlation' / 'filter')`, at);
  }
  const logsource = attempt(c, () => parseLogsource(c, root, at, true)) ?? {};
  if (!isMap(detP.value)) throw new DocError(`'detection' must be a mapping`, off(detP.value ?? detP));
  const detection = parseDetection(c, detP.value, new Set(), off(detP));
  const fieldAt: Record<string, Pos> = {};
  for (const [f, o] of c.fieldAt) fieldAt[f] = c.pos(o);
  return finish(c, { ...base, kind: 'rule', logsource, detection, fieldAt });
}

/** The document, or every error collected while parsing it. */
function finish<T>(c: PCtx, d: T): T {
  if (c.errs.length) throw new DocErrors(c.errs);
  return d;
}

function parseLogsource(c: PCtx, root: YAMLMap, at: number, required: boolean): LogSource {
  const p = getPair(root, 'logsource');
  if (!p) {
    if (required) throw new DocError(`missing 'logsource'`, at);
    return {};
  }
  if (!isMap(p.value)) throw new DocError(`'logsource' must be a mapping`, off(p.value ?? p));
  const ls: LogSource = {};
  for (const k of ['product', 'category', 'service'] as const) {
    const v = attempt(c, () => str(c, p.value as YAMLMap, k, false, at));
    if (v) ls[k] = v.toLowerCase();
  }
  return ls;
}

const SPECIAL_DETECTION_KEYS = new Set(['condition', 'timeframe']);

const EMPTY_SEL: SelNode = { t: 'or', items: [] };

function parseDetection(c: PCtx, det: YAMLMap, skip: Set<string>, keyAtOff: number): Detection {
  const selections = new Map<string, SelNode>();
  const keyAt = new Map<string, number>();
  /** identifiers that are defined but failed to parse: the condition may name them */
  const broken = new Set<string>();
  let condPair: Pair<Scalar, Node | null> | undefined;
  for (const it of det.items) {
    const key = it.key as Node;
    if (!isScalar(key)) {
      c.errs.push(new DocError(`detection keys must be plain names`, off(key)));
      continue;
    }
    const name = String(key.value);
    if (skip.has(name)) continue;
    if (name === 'condition') {
      condPair = it as Pair<Scalar, Node | null>;
      continue;
    }
    if (name === 'timeframe') {
      c.warn(`'timeframe' belongs to Sigma v1 aggregations and is ignored; use a correlation rule`, off(key));
      continue;
    }
    if (SPECIAL_DETECTION_KEYS.has(name)) continue;
    const sel = attempt(c, () => {
      checkLen(c, 'a detection identifier', name, off(key));
      return parseSelection(c, it.value as Node | null, off(key), name);
    });
    if (sel) selections.set(name, sel);
    else {
      broken.add(name);
      selections.set(name, EMPTY_SEL);
    }
    keyAt.set(name, off(key));
  }
  if (!condPair) throw new DocError(`detection has no 'condition'`, keyAtOff);
  const cv = condPair.value;
  const conds: { src: string; at: number }[] = [];
  const condAt = (s: Scalar): number => off(s) + (s.type === 'QUOTE_DOUBLE' || s.type === 'QUOTE_SINGLE' ? 1 : 0);
  if (isScalar(cv) && typeof cv.value === 'string') {
    checkLen(c, `'condition'`, cv.value, off(cv));
    conds.push({ src: cv.value, at: condAt(cv) });
  } else if (isSeq(cv)) {
    for (const x of cv.items) {
      if (!isScalar(x) || typeof x.value !== 'string') {
        c.errs.push(new DocError(`condition list entries must be strings`, off(x as Node)));
        continue;
      }
      checkLen(c, `'condition'`, x.value, off(x));
      conds.push({ src: x.value, at: condAt(x) });
    }
    if (!cv.items.length) throw new DocError(`empty condition list`, off(cv));
  } else throw new DocError(`'condition' must be a string or a list of strings`, off(cv ?? condPair));
  const names = [...selections.keys()];
  const parsed: Cond[] = [];
  for (const cs of conds) {
    let cond: Cond;
    try {
      cond = parseCondition(cs.src);
    } catch (e) {
      if (e instanceof ConditionError) {
        c.errs.push(new DocError(`condition: ${e.message}`, cs.at + e.off));
        continue;
      }
      throw e;
    }
    checkRefs(c, cond, names, cs.at);
    parsed.push(cond);
  }
  if (!parsed.length) return { selections, condition: { t: 'or', items: [] } };
  // a list of conditions: the rule matches when any of them matches
  const condition: Cond = parsed.length === 1 ? parsed[0]! : { t: 'or', items: parsed };
  for (const n of names)
    if (!broken.has(n) && !mentions(condition, n, names)) c.warn(`detection identifier '${n}' is not used by the condition`, keyAt.get(n) ?? 0);
  return { selections, condition };
}

/** Record an error for every unknown identifier and empty pattern of the condition. */
function checkRefs(c: PCtx, cond: Cond, names: string[], at: number): void {
  switch (cond.t) {
    case 'id':
      if (!names.includes(cond.name))
        c.errs.push(new DocError(`condition: unknown detection identifier '${cond.name}'${names.length ? ` (defined: ${names.join(', ')})` : ''}`, at + cond.off));
      return;
    case 'of':
      if (!expandPattern(cond.pattern, names).length)
        c.errs.push(new DocError(`condition: '${cond.pattern === '*' ? 'them' : cond.pattern}' matches no detection identifier`, at + cond.off));
      return;
    case 'not':
      return checkRefs(c, cond.item, names, at);
    default:
      for (const x of cond.items) checkRefs(c, x, names, at);
  }
}

function mentions(c: Cond, n: string, names: string[]): boolean {
  switch (c.t) {
    case 'id':
      return c.name === n;
    case 'of':
      return expandPattern(c.pattern, names).includes(n) || (c.pattern === '*' && n.startsWith('_'));
    case 'not':
      return mentions(c.item, n, names);
    default:
      return c.items.some((x) => mentions(x, n, names));
  }
}

type Raw = string | number | boolean | null;

function scalarValue(c: PCtx, n: Node | null, what: string): Raw {
  if (n === null) return null;
  if (!isScalar(n)) throw new DocError(`expected a scalar value`, off(n));
  const v = n.value;
  checkLen(c, what, v, off(n));
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  return String(v);
}

function parseSelection(c: PCtx, node: Node | null, at: number, name: string): SelNode {
  if (node === null || (isScalar(node) && node.value === null)) throw new DocError(`detection identifier '${name}' is empty`, at);
  if (isMap(node)) return parseFieldMap(c, node);
  if (isSeq(node)) {
    if (!node.items.length) throw new DocError(`detection identifier '${name}' is an empty list`, off(node));
    const items: SelNode[] = [];
    const keywords: Node[] = [];
    for (const x of node.items as Node[]) {
      if (isMap(x)) {
        const m = attempt(c, () => parseFieldMap(c, x));
        if (m) items.push(m);
      } else if (isScalar(x)) keywords.push(x);
      else c.errs.push(new DocError(`list entries of '${name}' must be field maps or keyword strings`, off(x)));
    }
    if (keywords.length) {
      const k = attempt(c, () => fieldLeaf(c, null, [], keywords, off(keywords[0])));
      if (k) items.push(k);
    }
    return items.length === 1 ? items[0]! : { t: 'or', items };
  }
  if (isScalar(node)) return fieldLeaf(c, null, [], [node], off(node));
  throw new DocError(`unsupported detection value for '${name}'`, off(node));
}

function parseFieldMap(c: PCtx, m: YAMLMap): SelNode {
  if (!m.items.length) throw new DocError(`empty field map`, off(m));
  const items: SelNode[] = [];
  for (const it of m.items) {
    const key = it.key as Node;
    if (!isScalar(key)) {
      c.errs.push(new DocError(`field names must be strings`, off(key)));
      continue;
    }
    const leaf = attempt(c, () => {
      checkLen(c, 'a field name', key.value, off(key));
      const raw = key.value === null ? '' : String(key.value);
      const [field, ...mods] = raw.split('|');
      const v = it.value as Node | null;
      let values: Node[];
      if (v === null) values = [];
      else if (isSeq(v)) {
        values = v.items as Node[];
        if (!values.length) throw new DocError(`field '${raw}' has an empty value list`, off(v));
      } else if (isScalar(v)) values = [v];
      else throw new DocError(`field '${raw}': value must be a scalar or a list of scalars`, off(v));
      if (field && !c.fieldAt.has(field)) c.fieldAt.set(field, off(key));
      return fieldLeaf(c, field ? field : null, mods, values, off(key), v === null);
    });
    if (leaf) items.push(leaf);
  }
  return items.length === 1 ? items[0]! : { t: 'and', items };
}

function fieldLeaf(c: PCtx, field: string | null, mods: string[], values: Node[], at: number, isNull = false): SelNode {
  const label = [field ?? 'keywords', ...mods].join('|');
  const spec = parseModifiers(mods);
  if (typeof spec === 'string') throw new DocError(`field '${label}': ${spec}`, at);
  if (field === null && (spec.exists || spec.fieldref)) throw new DocError(`keyword search cannot use '${spec.exists ? 'exists' : 'fieldref'}'`, at);
  const preds: ValuePred[] = [];
  const groups: ValuePred[][] = [];
  const raws: { raw: Raw; at: number }[] = [];
  if (isNull) raws.push({ raw: null, at });
  else
    for (const n of values) {
      const r = attempt(c, () => scalarValue(c, n, `value of '${label}'`));
      if (r !== undefined) raws.push({ raw: r, at: off(n) });
    }
  const before = c.errs.length;
  for (const { raw, at: vat } of raws) {
    // keywords are free-text searches: the value may appear anywhere in a field
    const s = field === null && spec.match === 'eq' && !spec.re && !spec.cidr && !spec.numOp && !spec.time ? { ...spec, match: 'contains' as const } : spec;
    // a rule that already has an error is refused: its regexes are not probed (200 ms each)
    const vctx = c.errs.length ? { ...c.vctx, probe: false } : c.vctx;
    const r = compileValue(field === null && typeof raw !== 'string' && raw !== null ? String(raw) : raw, s, vctx);
    if (typeof r === 'string') {
      c.errs.push(new DocError(`field '${label}': ${r}`, vat));
      continue;
    }
    preds.push(...r);
    groups.push(r);
  }
  if (c.errs.length > before || raws.length < (isNull ? 1 : values.length)) throw new DocErrors([]);
  if (field === null && preds.some((p) => p.k === 'null')) throw new DocError(`keyword search cannot use null`, at);
  // `|all` combines the rule's values; encodings of one value stay OR-ed inside it.
  if (spec.all && raws.length > 1 && preds.length !== raws.length) {
    // an encoding produced several variants per value: AND over values of OR over variants
    if (spec.neq) throw new DocError(`'neq' with 'all' and multi-variant encodings is not supported`, at);
    return { t: 'and', items: groups.map((g) => ({ t: 'leaf', field, preds: g, all: false, neg: false }) as SelLeaf) };
  }
  return { t: 'leaf', field, preds, all: spec.all, neg: spec.neq };
}

function parseCorrelation(c: PCtx, base: Base, p: Pair<Scalar, Node | null>, root: YAMLMap): ParsedCorrelation {
  const m = p.value;
  if (!isMap(m)) throw new DocError(`'correlation' must be a mapping`, off(m ?? p));
  const type = attempt(c, () => str(c, m, 'type', true, off(m)));
  const types = ['event_count', 'value_count', 'temporal', 'temporal_ordered', 'value_sum', 'value_avg'];
  if (type !== undefined && !types.includes(type)) {
    const tp = getPair(m, 'type');
    c.errs.push(
      new DocError(
        type === 'value_percentile' || type === 'value_median'
          ? `correlation type '${type}' is not supported by vigil (supported: ${types.join(', ')})`
          : `unknown correlation type '${type}' (expected ${types.join(', ')})`,
        off(tp?.value ?? tp),
      ),
    );
  }
  const refs = attempt(c, () => strList(c, m, 'rules'));
  if (refs && !refs.values.length) c.errs.push(new DocError(`correlation needs a non-empty 'rules' list`, off(getPair(m, 'rules') ?? m)));
  const groupBy = attempt(c, () => strList(c, m, 'group-by').values) ?? [];
  let timespanMs = 0;
  attempt(c, () => {
    const ts = str(c, m, 'timespan', true, off(m))!;
    const tm = /^(\d+)\s*([smhdwMy]?)$/.exec(ts.trim());
    if (!tm) throw new DocError(`invalid timespan '${ts}' (expected e.g. 30s, 5m, 1h, 1d)`, off(getPair(m, 'timespan')?.value));
    const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 }[tm[2] as 's'] ?? 1;
    timespanMs = Number(tm[1]) * unit * 1000;
  });
  const condition: CorrelationCondition = {};
  const cp = getPair(m, 'condition');
  if (cp) {
    if (!isMap(cp.value)) c.errs.push(new DocError(`correlation 'condition' must be a mapping (e.g. gte: 10)`, off(cp.value ?? cp)));
    else
      for (const it of cp.value.items) {
        const k = String((it.key as Scalar).value);
        const v = (it.value as Scalar | null)?.value;
        if (k === 'field') condition.field = String(v);
        else if (['gt', 'gte', 'lt', 'lte', 'eq', 'neq'].includes(k)) {
          if (typeof v !== 'number') c.errs.push(new DocError(`correlation condition '${k}' needs a number`, off(it.value as Node)));
          else condition[k as 'gt'] = v;
        } else c.errs.push(new DocError(`unknown correlation condition key '${k}'`, off(it.key as Node)));
      }
  } else if (type === 'event_count' || type === 'value_count' || type === 'value_sum' || type === 'value_avg')
    c.errs.push(new DocError(`correlation type '${type}' needs a 'condition'`, off(m)));
  if ((type === 'value_count' || type === 'value_sum' || type === 'value_avg') && cp && isMap(cp.value) && !condition.field)
    c.errs.push(new DocError(`correlation type '${type}' needs 'field' in its condition`, off(cp.value)));
  const bounds = ['gt', 'gte', 'eq'].filter((k) => k in condition);
  if (cp && isMap(cp.value) && !bounds.length && type !== 'value_avg')
    c.errs.push(
      new DocError(
        Object.keys(condition).some((k) => k !== 'field')
          ? `correlation condition with only an upper bound (lt/lte/neq) can only be decided when the window closes; vigil evaluates correlations as events arrive and needs a lower bound (gt, gte or eq)`
          : `correlation condition needs a comparison with a lower bound (gt, gte or eq)`,
        off(cp.value),
      ),
    );
  const aliases: Record<string, Record<string, string>> = {};
  const ap = getPair(m, 'aliases');
  if (ap && isMap(ap.value)) {
    for (const it of ap.value.items) {
      const alias = String((it.key as Scalar).value);
      if (!isMap(it.value)) {
        c.errs.push(new DocError(`alias '${alias}' must map rule names to fields`, off(it.value as Node)));
        continue;
      }
      aliases[alias] = {};
      for (const r of (it.value as YAMLMap).items) aliases[alias]![String((r.key as Scalar).value)] = String((r.value as Scalar).value);
    }
  }
  const gp = getPair(m, 'generate') ?? getPair(root, 'generate');
  const generate = gp ? (gp.value as Scalar | null)?.value === true : false;
  return {
    ...base,
    kind: 'correlation',
    type: (type ?? 'event_count') as ParsedCorrelation['type'],
    rules: refs?.values ?? [],
    rulesAt: (refs?.at ?? []).map(c.pos),
    groupBy,
    timespanMs,
    condition,
    aliases,
    generate,
  };
}
