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
}

export interface ParsedRule extends Base {
  kind: 'rule';
  logsource: LogSource;
  detection: Detection;
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
}

export interface ParsedFilter extends Base {
  kind: 'filter';
  logsource: LogSource;
  rules: string[];
  detection: Detection;
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

export interface ParseOptions extends Partial<ValueContext> {}

/** Parse one rule file. Never throws. */
export function parseRuleFile(path: string, text: string, opts: ParseOptions = {}): ParseResult {
  const lc = new LineCounter();
  const out: ParseResult = { docs: [], errors: [] };
  const ctx: ValueContext = { placeholders: opts.placeholders ?? {} };
  const pos = (off: number): { line: number; col: number } => {
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
    try {
      const parsed = parseDoc(root, path, docIndex, pos, ctx, warnings);
      out.docs.push(parsed);
      for (const w of warnings) out.errors.push({ ...w, rule_id: parsed.id });
    } catch (e) {
      if (e instanceof DocError) {
        const p = pos(e.offset);
        const idNode = isMap(root) ? root.get('id') : undefined;
        out.errors.push({
          path,
          line: p.line,
          col: p.col,
          message: e.message,
          severity: 'error',
          ...(typeof idNode === 'string' ? { rule_id: idNode } : {}),
        });
      } else {
        out.errors.push({ path, line: 1, col: 1, message: `internal error: ${(e as Error).message}`, severity: 'error' });
      }
    }
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

function str(m: YAMLMap, key: string, required: boolean, at: number): string | undefined {
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
  return String(v.value);
}

function strList(m: YAMLMap, key: string): string[] {
  const p = getPair(m, key);
  if (!p || !p.value) return [];
  if (isScalar(p.value)) return p.value.value === null ? [] : [String(p.value.value)];
  if (!isSeq(p.value)) throw new DocError(`'${key}' must be a list`, off(p.value));
  return p.value.items.map((x) => {
    if (!isScalar(x)) throw new DocError(`'${key}' entries must be strings`, off(x as Node));
    return String(x.value);
  });
}

function parseDoc(
  root: Node,
  path: string,
  docIndex: number,
  pos: (o: number) => { line: number; col: number },
  ctx: ValueContext,
  warnings: RuleError[],
): ParsedDoc {
  if (!isMap(root)) throw new DocError(`a Sigma document must be a YAML mapping`, off(root));
  const at = off(root);
  const warn = (message: string, o: number): void => {
    const p = pos(o);
    warnings.push({ path, line: p.line, col: p.col, message, severity: 'warning' });
  };
  const action = str(root, 'action', false, at);
  if (action)
    throw new DocError(`'action: ${action}' rule collections (Sigma v1) are not supported; write each rule as a complete document`, off(getPair(root, 'action')));
  const title = str(root, 'title', true, at)!;
  let id = str(root, 'id', false, at);
  const p0 = pos(at);
  if (!id) {
    id = `${path}#${docIndex}`;
    warn(`rule has no 'id'; using '${id}'`, at);
  }
  const tags = strList(root, 'tags');
  const base: Base = {
    path,
    line: p0.line,
    col: p0.col,
    docIndex,
    id,
    title,
    level: str(root, 'level', false, at) ?? 'medium',
    tags,
  };
  const name = str(root, 'name', false, at);
  if (name) base.name = name;
  const status = str(root, 'status', false, at);
  if (status) base.status = status;
  const desc = str(root, 'description', false, at);
  if (desc) base.description = desc;
  if (!['informational', 'low', 'medium', 'high', 'critical'].includes(base.level))
    warn(`unknown level '${base.level}' (expected informational, low, medium, high or critical)`, off(getPair(root, 'level')));

  const corr = getPair(root, 'correlation');
  if (corr) return parseCorrelation(base, corr, root);
  const filt = getPair(root, 'filter');
  const detP = getPair(root, 'detection');
  if (filt && !detP) {
    if (!isMap(filt.value)) throw new DocError(`'filter' must be a mapping`, off(filt.value ?? filt));
    const rules = strList(filt.value, 'rules');
    if (!rules.length) throw new DocError(`filter needs a non-empty 'rules' list`, off(filt));
    const logsource = parseLogsource(root, at, false);
    const detection = parseDetection(filt.value, ctx, warn, new Set(['rules']), off(filt));
    return { ...base, kind: 'filter', rules, logsource, detection };
  }
  if (!detP) throw new DocError(`missing 'detection' (or 'correlation' / 'filter')`, at);
  if (!isMap(detP.value)) throw new DocError(`'detection' must be a mapping`, off(detP.value ?? detP));
  const logsource = parseLogsource(root, at, true);
  const detection = parseDetection(detP.value, ctx, warn, new Set(), off(detP));
  return { ...base, kind: 'rule', logsource, detection };
}

function parseLogsource(root: YAMLMap, at: number, required: boolean): LogSource {
  const p = getPair(root, 'logsource');
  if (!p) {
    if (required) throw new DocError(`missing 'logsource'`, at);
    return {};
  }
  if (!isMap(p.value)) throw new DocError(`'logsource' must be a mapping`, off(p.value ?? p));
  const ls: LogSource = {};
  for (const k of ['product', 'category', 'service'] as const) {
    const v = str(p.value, k, false, at);
    if (v) ls[k] = v.toLowerCase();
  }
  return ls;
}

const SPECIAL_DETECTION_KEYS = new Set(['condition', 'timeframe']);

function parseDetection(
  det: YAMLMap,
  ctx: ValueContext,
  warn: (m: string, o: number) => void,
  skip: Set<string>,
  keyAtOff: number,
): Detection {
  const selections = new Map<string, SelNode>();
  const keyAt = new Map<string, number>();
  let condPair: Pair<Scalar, Node | null> | undefined;
  for (const it of det.items) {
    const key = it.key as Node;
    if (!isScalar(key)) throw new DocError(`detection keys must be plain names`, off(key));
    const name = String(key.value);
    if (skip.has(name)) continue;
    if (name === 'condition') {
      condPair = it as Pair<Scalar, Node | null>;
      continue;
    }
    if (name === 'timeframe') {
      warn(`'timeframe' belongs to Sigma v1 aggregations and is ignored; use a correlation rule`, off(key));
      continue;
    }
    if (SPECIAL_DETECTION_KEYS.has(name)) continue;
    selections.set(name, parseSelection(it.value as Node | null, ctx, off(key), name));
    keyAt.set(name, off(key));
  }
  if (!condPair) throw new DocError(`detection has no 'condition'`, keyAtOff);
  const cv = condPair.value;
  const conds: { src: string; at: number }[] = [];
  const condAt = (s: Scalar): number => off(s) + (s.type === 'QUOTE_DOUBLE' || s.type === 'QUOTE_SINGLE' ? 1 : 0);
  if (isScalar(cv) && typeof cv.value === 'string') conds.push({ src: cv.value, at: condAt(cv) });
  else if (isSeq(cv)) {
    for (const x of cv.items) {
      if (!isScalar(x) || typeof x.value !== 'string') throw new DocError(`condition list entries must be strings`, off(x as Node));
      conds.push({ src: x.value, at: condAt(x) });
    }
    if (!conds.length) throw new DocError(`empty condition list`, off(cv));
  } else throw new DocError(`'condition' must be a string or a list of strings`, off(cv ?? condPair));
  const names = [...selections.keys()];
  const parsed: Cond[] = [];
  for (const c of conds) {
    let cond: Cond;
    try {
      cond = parseCondition(c.src);
    } catch (e) {
      if (e instanceof ConditionError) throw new DocError(`condition: ${e.message}`, c.at + e.off);
      throw e;
    }
    checkRefs(cond, names, c.at);
    parsed.push(cond);
  }
  // a list of conditions: the rule matches when any of them matches
  const condition: Cond = parsed.length === 1 ? parsed[0]! : { t: 'or', items: parsed };
  for (const n of names)
    if (!mentions(condition, n, names)) warn(`detection identifier '${n}' is not used by the condition`, keyAt.get(n) ?? 0);
  return { selections, condition };
}

function checkRefs(c: Cond, names: string[], at: number): void {
  switch (c.t) {
    case 'id':
      if (!names.includes(c.name))
        throw new DocError(`condition: unknown detection identifier '${c.name}'${names.length ? ` (defined: ${names.join(', ')})` : ''}`, at + c.off);
      return;
    case 'of':
      if (!expandPattern(c.pattern, names).length)
        throw new DocError(`condition: '${c.pattern === '*' ? 'them' : c.pattern}' matches no detection identifier`, at + c.off);
      return;
    case 'not':
      return checkRefs(c.item, names, at);
    default:
      for (const x of c.items) checkRefs(x, names, at);
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

function scalarValue(n: Node | null): Raw {
  if (n === null) return null;
  if (!isScalar(n)) throw new DocError(`expected a scalar value`, off(n));
  const v = n.value;
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  return String(v);
}

function parseSelection(node: Node | null, ctx: ValueContext, at: number, name: string): SelNode {
  if (node === null || (isScalar(node) && node.value === null)) throw new DocError(`detection identifier '${name}' is empty`, at);
  if (isMap(node)) return parseFieldMap(node, ctx);
  if (isSeq(node)) {
    if (!node.items.length) throw new DocError(`detection identifier '${name}' is an empty list`, off(node));
    const items: SelNode[] = [];
    const keywords: Node[] = [];
    for (const x of node.items as Node[]) {
      if (isMap(x)) items.push(parseFieldMap(x, ctx));
      else if (isScalar(x)) keywords.push(x);
      else throw new DocError(`list entries of '${name}' must be field maps or keyword strings`, off(x));
    }
    if (keywords.length) items.push(fieldLeaf(null, [], keywords, ctx, off(keywords[0])));
    return items.length === 1 ? items[0]! : { t: 'or', items };
  }
  if (isScalar(node)) return fieldLeaf(null, [], [node], ctx, off(node));
  throw new DocError(`unsupported detection value for '${name}'`, off(node));
}

function parseFieldMap(m: YAMLMap, ctx: ValueContext): SelNode {
  if (!m.items.length) throw new DocError(`empty field map`, off(m));
  const items: SelNode[] = [];
  for (const it of m.items) {
    const key = it.key as Node;
    if (!isScalar(key)) throw new DocError(`field names must be strings`, off(key));
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
    items.push(fieldLeaf(field ? field : null, mods, values, ctx, off(key), v === null));
  }
  return items.length === 1 ? items[0]! : { t: 'and', items };
}

function fieldLeaf(field: string | null, mods: string[], values: Node[], ctx: ValueContext, at: number, isNull = false): SelNode {
  const label = field ?? 'keywords';
  const spec = parseModifiers(mods);
  if (typeof spec === 'string') throw new DocError(`field '${[label, ...mods].join('|')}': ${spec}`, at);
  if (field === null && (spec.exists || spec.fieldref)) throw new DocError(`keyword search cannot use '${spec.exists ? 'exists' : 'fieldref'}'`, at);
  const preds: ValuePred[] = [];
  const groups: ValuePred[][] = [];
  const raws: { raw: Raw; at: number }[] = isNull ? [{ raw: null, at }] : values.map((n) => ({ raw: scalarValue(n), at: off(n) }));
  for (const { raw, at: vat } of raws) {
    // keywords are free-text searches: the value may appear anywhere in a field
    const s = field === null && spec.match === 'eq' && !spec.re && !spec.cidr && !spec.numOp && !spec.time ? { ...spec, match: 'contains' as const } : spec;
    const r = compileValue(field === null && typeof raw !== 'string' && raw !== null ? String(raw) : raw, s, ctx);
    if (typeof r === 'string') throw new DocError(`field '${[label, ...mods].join('|')}': ${r}`, vat);
    preds.push(...r);
    groups.push(r);
  }
  if (field === null && preds.some((p) => p.k === 'null')) throw new DocError(`keyword search cannot use null`, at);
  // `|all` combines the rule's values; encodings of one value stay OR-ed inside it.
  if (spec.all && raws.length > 1 && preds.length !== raws.length) {
    // an encoding produced several variants per value: AND over values of OR over variants
    if (spec.neq) throw new DocError(`'neq' with 'all' and multi-variant encodings is not supported`, at);
    return { t: 'and', items: groups.map((g) => ({ t: 'leaf', field, preds: g, all: false, neg: false }) as SelLeaf) };
  }
  return { t: 'leaf', field, preds, all: spec.all, neg: spec.neq };
}

function parseCorrelation(base: Base, p: Pair<Scalar, Node | null>, root: YAMLMap): ParsedCorrelation {
  const m = p.value;
  if (!isMap(m)) throw new DocError(`'correlation' must be a mapping`, off(m ?? p));
  const type = str(m, 'type', true, off(m))!;
  const types = ['event_count', 'value_count', 'temporal', 'temporal_ordered', 'value_sum', 'value_avg'];
  if (!types.includes(type)) {
    const tp = getPair(m, 'type');
    throw new DocError(
      type === 'value_percentile' || type === 'value_median'
        ? `correlation type '${type}' is not supported by vigil (supported: ${types.join(', ')})`
        : `unknown correlation type '${type}' (expected ${types.join(', ')})`,
      off(tp?.value ?? tp),
    );
  }
  const rules = strList(m, 'rules');
  if (!rules.length) throw new DocError(`correlation needs a non-empty 'rules' list`, off(m));
  const groupBy = strList(m, 'group-by');
  const ts = str(m, 'timespan', true, off(m))!;
  const tm = /^(\d+)\s*([smhdwMy]?)$/.exec(ts.trim());
  if (!tm) throw new DocError(`invalid timespan '${ts}' (expected e.g. 30s, 5m, 1h, 1d)`, off(getPair(m, 'timespan')?.value));
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 }[tm[2] as 's'] ?? 1;
  const timespanMs = Number(tm[1]) * unit * 1000;
  const condition: CorrelationCondition = {};
  const cp = getPair(m, 'condition');
  if (cp) {
    if (!isMap(cp.value)) throw new DocError(`correlation 'condition' must be a mapping (e.g. gte: 10)`, off(cp.value ?? cp));
    for (const it of cp.value.items) {
      const k = String((it.key as Scalar).value);
      const v = (it.value as Scalar | null)?.value;
      if (k === 'field') condition.field = String(v);
      else if (['gt', 'gte', 'lt', 'lte', 'eq', 'neq'].includes(k)) {
        if (typeof v !== 'number') throw new DocError(`correlation condition '${k}' needs a number`, off(it.value as Node));
        condition[k as 'gt'] = v;
      } else throw new DocError(`unknown correlation condition key '${k}'`, off(it.key as Node));
    }
  } else if (type === 'event_count' || type === 'value_count' || type === 'value_sum' || type === 'value_avg')
    throw new DocError(`correlation type '${type}' needs a 'condition'`, off(m));
  if ((type === 'value_count' || type === 'value_sum' || type === 'value_avg') && !condition.field)
    throw new DocError(`correlation type '${type}' needs 'field' in its condition`, off(cp?.value ?? m));
  const bounds = ['gt', 'gte', 'eq'].filter((k) => k in condition);
  if (cp && !bounds.length && type !== 'value_avg')
    throw new DocError(
      `correlation condition with only an upper bound (lt/lte/neq) can only be decided when the window closes; vigil evaluates correlations as events arrive and needs a lower bound (gt, gte or eq)`,
      off(cp.value),
    );
  const aliases: Record<string, Record<string, string>> = {};
  const ap = getPair(m, 'aliases');
  if (ap && isMap(ap.value)) {
    for (const it of ap.value.items) {
      const alias = String((it.key as Scalar).value);
      if (!isMap(it.value)) throw new DocError(`alias '${alias}' must map rule names to fields`, off(it.value as Node));
      aliases[alias] = {};
      for (const r of (it.value as YAMLMap).items) aliases[alias]![String((r.key as Scalar).value)] = String((r.value as Scalar).value);
    }
  }
  const gp = getPair(m, 'generate') ?? getPair(root, 'generate');
  const generate = gp ? (gp.value as Scalar | null)?.value === true : false;
  return {
    ...base,
    kind: 'correlation',
    type: type as ParsedCorrelation['type'],
    rules,
    groupBy,
    timespanMs,
    condition,
    aliases,
    generate,
  };
}
