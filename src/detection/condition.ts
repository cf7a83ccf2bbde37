/**
 * Sigma condition grammar.
 *
 *   expr    := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | primary
 *   primary := '(' expr ')' | quant | IDENT
 *   quant   := ('1' | N | 'all') 'of' (PATTERN | 'them')
 *
 * Precedence: or < and < not < x-of < parentheses. `them` and patterns never match
 * identifiers that start with '_'. The obsolete aggregation syntax (`| count() ...`)
 * is refused: it is expressed with correlation rules in Sigma v2.
 */

export type Cond =
  | { t: 'id'; name: string; off: number }
  | { t: 'and'; items: Cond[] }
  | { t: 'or'; items: Cond[] }
  | { t: 'not'; item: Cond }
  | { t: 'of'; n: number | 'all'; pattern: string; off: number };

export class ConditionError extends Error {
  constructor(
    message: string,
    /** offset in the condition string */
    public readonly off: number,
  ) {
    super(message);
  }
}

interface Tok {
  v: string;
  off: number;
}

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s*(\(|\)|\||[^\s()|]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  re.lastIndex = 0;
  while ((m = re.exec(src))) {
    out.push({ v: m[1]!, off: m.index + m[0].length - m[1]!.length });
    pos = re.lastIndex;
  }
  if (src.slice(pos).trim()) throw new ConditionError(`unexpected character`, pos);
  return out;
}

const KW = new Set(['and', 'or', 'not', 'of', 'them', 'all']);

export function parseCondition(src: string): Cond {
  const toks = tokenize(src);
  let i = 0;
  const peek = (): string | undefined => toks[i]?.v.toLowerCase();
  const offAt = (): number => toks[i]?.off ?? src.length;

  function expr(): Cond {
    const items = [and()];
    while (peek() === 'or') {
      i++;
      items.push(and());
    }
    return items.length === 1 ? items[0]! : { t: 'or', items };
  }
  function and(): Cond {
    const items = [not()];
    while (peek() === 'and') {
      i++;
      items.push(not());
    }
    return items.length === 1 ? items[0]! : { t: 'and', items };
  }
  function not(): Cond {
    if (peek() === 'not') {
      i++;
      return { t: 'not', item: not() };
    }
    return primary();
  }
  function primary(): Cond {
    const tok = toks[i];
    if (!tok) throw new ConditionError(`condition ends early: expected an identifier, '(' or 'not'`, src.length);
    const v = tok.v.toLowerCase();
    if (tok.v === '(') {
      i++;
      const e = expr();
      if (toks[i]?.v !== ')') throw new ConditionError(`missing ')' (opened at column ${tok.off + 1})`, offAt());
      i++;
      return e;
    }
    if (tok.v === '|')
      throw new ConditionError(
        `aggregation expressions ('| count() ...') are obsolete in Sigma v2 and not supported; write a correlation rule`,
        tok.off,
      );
    if (v === 'all' || /^\d+$/.test(v)) {
      if (toks[i + 1]?.v.toLowerCase() !== 'of') {
        if (v === 'all') throw new ConditionError(`'all' must be followed by 'of'`, toks[i + 1]?.off ?? src.length);
      } else {
        const n = v === 'all' ? 'all' : Number(v);
        if (n === 0) throw new ConditionError(`'0 of' never matches anything`, tok.off);
        const target = toks[i + 2];
        if (!target || target.v === '(' || target.v === ')' || target.v === '|' || (KW.has(target.v.toLowerCase()) && target.v.toLowerCase() !== 'them'))
          throw new ConditionError(`'${tok.v} of' must be followed by an identifier pattern or 'them'`, target?.off ?? src.length);
        i += 3;
        return { t: 'of', n, pattern: target.v.toLowerCase() === 'them' ? '*' : target.v, off: target.off };
      }
    }
    if (tok.v === ')') throw new ConditionError(`unexpected ')'`, tok.off);
    if (KW.has(v)) throw new ConditionError(`unexpected keyword '${tok.v}'`, tok.off);
    if (tok.v.includes('*')) throw new ConditionError(`wildcard identifier '${tok.v}' is only allowed after '1 of' / 'all of'`, tok.off);
    i++;
    return { t: 'id', name: tok.v, off: tok.off };
  }

  if (!toks.length) throw new ConditionError(`empty condition`, 0);
  const e = expr();
  if (i < toks.length) {
    const t = toks[i]!;
    if (t.v === '|')
      throw new ConditionError(
        `aggregation expressions ('| count() ...') are obsolete in Sigma v2 and not supported; write a correlation rule`,
        t.off,
      );
    throw new ConditionError(`unexpected '${t.v}' (expected 'and', 'or' or end of condition)`, t.off);
  }
  return e;
}

/** Names a `x of PATTERN` expands to. `them` (pattern '*') and patterns skip '_'-prefixed names. */
export function expandPattern(pattern: string, names: string[]): string[] {
  const re = new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return names.filter((n) => (pattern.startsWith('_') || !n.startsWith('_')) && re.test(n));
}
