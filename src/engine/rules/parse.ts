// Parser for Falco's condition language: and/or/not, parentheses, `field op value`, lists and
// macro references. Produces an AST that compile.ts turns into closures.

export interface FieldRef {
  name: string;
  /** The bracketed argument of `proc.aname[2]` or `evt.arg[0]`. */
  arg?: string;
}

export type Value =
  | { k: 'str'; v: string }
  | { k: 'list'; items: string[] }
  /** Falco's `val(field)`: compare against another field of the same event. */
  | { k: 'field'; ref: FieldRef };

export type Node =
  | { k: 'and' | 'or'; items: Node[] }
  | { k: 'not'; item: Node }
  | { k: 'cmp'; field: FieldRef; op: string; value?: Value }
  | { k: 'macro'; name: string }
  | { k: 'const'; v: boolean };

export class ConditionSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

/** How deeply parentheses and `not`s may nest in one condition. Real rules stay far below;
 *  the bound keeps a hostile or generated rule from exhausting the stack (here and when it is
 *  compiled), so it becomes a diagnostic for that rule instead. */
export const MAX_CONDITION_DEPTH = 256;

/** A condition nested deeper than MAX_CONDITION_DEPTH (diagnostic code CONDITION_TOO_DEEP). */
export class ConditionDepthError extends ConditionSyntaxError {
  readonly code = 'CONDITION_TOO_DEEP';
}

const WORD_OPS = new Set([
  'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'glob', 'iglob',
  'pmatch', 'in', 'intersects', 'exists', 'regex',
]);
const SYM_OPS = ['==', '!=', '<=', '>=', '=', '<', '>'];
const IDENT = /[A-Za-z_][A-Za-z0-9_.\-]*/y;
const BARE = /[^\s(),="']+/y;

export function parseCondition(src: string): Node {
  let i = 0;
  let depth = 0;
  const n = src.length;

  const ws = () => {
    while (i < n && /\s/.test(src[i]!)) i++;
  };
  const fail = (msg: string): never => {
    throw new ConditionSyntaxError(`${msg} at column ${i + 1} of condition`, i);
  };
  const enter = () => {
    if (++depth > MAX_CONDITION_DEPTH) {
      throw new ConditionDepthError(`condition nested deeper than ${MAX_CONDITION_DEPTH} levels (parentheses and 'not') at column ${i + 1}`, i);
    }
  };
  const peekWord = (w: string): boolean => {
    ws();
    if (src.startsWith(w, i)) {
      const c = src[i + w.length];
      return c === undefined || !/[A-Za-z0-9_.]/.test(c);
    }
    return false;
  };

  const quoted = (): string => {
    const q = src[i]!;
    i++;
    let out = '';
    while (i < n && src[i] !== q) {
      if (src[i] === '\\' && i + 1 < n) {
        i++;
        const c = src[i]!;
        out += c === 'n' ? '\n' : c === 't' ? '\t' : c;
      } else out += src[i];
      i++;
    }
    if (i >= n) fail('unterminated string');
    i++;
    return out;
  };

  const scalar = (): string => {
    ws();
    const c = src[i];
    if (c === '"' || c === "'") return quoted();
    BARE.lastIndex = i;
    const m = BARE.exec(src);
    if (!m) fail('expected a value');
    i += m![0].length;
    return m![0];
  };

  const fieldRef = (): FieldRef => {
    ws();
    IDENT.lastIndex = i;
    const m = IDENT.exec(src);
    if (!m) fail('expected a field name');
    i += m![0].length;
    const ref: FieldRef = { name: m![0] };
    if (src[i] === '[') {
      const end = src.indexOf(']', i);
      if (end < 0) fail("unbalanced '['");
      ref.arg = src.slice(i + 1, end).trim().replace(/^["']|["']$/g, '');
      i = end + 1;
    }
    return ref;
  };

  const value = (op: string): Value => {
    ws();
    if (src[i] === '(') {
      i++;
      const items: string[] = [];
      ws();
      if (src[i] === ')') {
        i++;
        return { k: 'list', items };
      }
      for (;;) {
        items.push(scalar());
        ws();
        if (src[i] === ',') {
          i++;
          continue;
        }
        if (src[i] === ')') {
          i++;
          break;
        }
        fail("expected ',' or ')' in list");
      }
      return { k: 'list', items };
    }
    if (op === 'in' || op === 'intersects' || op === 'pmatch') {
      // Falco also accepts a bare list name after these operators.
      return { k: 'list', items: [scalar()] };
    }
    if (src.startsWith('val(', i)) {
      i += 4;
      const ref = fieldRef();
      ws();
      if (src[i] !== ')') fail("expected ')' after val(field");
      i++;
      return { k: 'field', ref };
    }
    return { k: 'str', v: scalar() };
  };

  const primary = (): Node => {
    ws();
    if (i >= n) fail('unexpected end of condition');
    if (src[i] === '(') {
      enter();
      i++;
      const e = orExpr();
      ws();
      if (src[i] !== ')') fail("expected ')'");
      i++;
      depth--;
      return e;
    }
    const start = i;
    const ref = fieldRef();
    ws();
    if (src[i] === '(') {
      i = start;
      fail(`unsupported construct '${ref.name}(...)' (field transformers)`);
    }
    for (const op of SYM_OPS) {
      if (src.startsWith(op, i)) {
        i += op.length;
        const o = op === '==' ? '=' : op;
        return { k: 'cmp', field: ref, op: o, value: value(o) };
      }
    }
    IDENT.lastIndex = i;
    const w = IDENT.exec(src);
    if (w && WORD_OPS.has(w[0])) {
      i += w[0].length;
      if (w[0] === 'exists') return { k: 'cmp', field: ref, op: 'exists' };
      return { k: 'cmp', field: ref, op: w[0], value: value(w[0]) };
    }
    if (ref.arg === undefined && !ref.name.includes('.')) return { k: 'macro', name: ref.name };
    return fail(`field '${ref.name}' without an operator`);
  };

  const notExpr = (): Node => {
    if (peekWord('not')) {
      i += 3;
      enter();
      const item = notExpr();
      depth--;
      return { k: 'not', item };
    }
    return primary();
  };
  const andExpr = (): Node => {
    const items = [notExpr()];
    while (peekWord('and')) {
      i += 3;
      items.push(notExpr());
    }
    return items.length === 1 ? items[0]! : { k: 'and', items };
  };
  function orExpr(): Node {
    const items = [andExpr()];
    while (peekWord('or')) {
      i += 2;
      items.push(andExpr());
    }
    return items.length === 1 ? items[0]! : { k: 'or', items };
  }

  const root = orExpr();
  ws();
  if (i < n) fail(src[i] === ')' ? "unbalanced ')'" : `unexpected '${src.slice(i, i + 12)}'`);
  return root;
}
