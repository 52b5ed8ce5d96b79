// Compiles a parsed condition into a predicate closure: macros inlined, lists expanded, fields
// resolved once, and the set of event types the condition can match computed for indexing.
import type { EnrichedEvent } from '../../semantics/types.js';
import { ConditionDepthError, MAX_CONDITION_DEPTH, parseCondition, type FieldRef, type Node, type Value } from './parse.js';
import { cidrTest, FD_NAME_DERIVED, openFlagTest, resolveField, type EvalCtx, type FieldDef, type Scalar } from './fields.js';

export type Pred = (e: EnrichedEvent, ctx: EvalCtx) => boolean;

/** Why a condition cannot be compiled; `code` is a stable diagnostic code. */
export class CompileError extends Error {
  constructor(readonly code: 'UNKNOWN_MACRO' | 'UNSUPPORTED_FIELD' | 'UNSUPPORTED_OPERATOR' | 'CONDITION_SYNTAX' | 'MACRO_CYCLE' | 'BAD_VALUE' | 'CONDITION_TOO_DEEP', message: string) {
    super(message);
  }
}

/** How deeply macros may use macros (m1 uses m2 uses m3 ...); Falco's own files stay under 10. */
export const MAX_MACRO_DEPTH = 64;
/** How deeply one rule's condition may nest with its macros inlined (each macro may nest up to
 *  MAX_CONDITION_DEPTH itself), so compiling never exhausts the stack. */
export const MAX_EXPANDED_DEPTH = 4 * MAX_CONDITION_DEPTH;
/** Current recursion depth of gen() (compiling is synchronous, so one counter suffices). */
let genDepth = 0;

export interface MacroDef {
  condition: string;
  ast?: Node;
  error?: string;
  /** The diagnostic code of `error` (CONDITION_SYNTAX when absent). */
  errorCode?: 'CONDITION_SYNTAX' | 'CONDITION_TOO_DEEP';
  /** Compiled once and shared by every rule that uses the macro; memoized per event. */
  compiled?: { pred: Pred; types: Set<string> | null; fields: Map<string, FieldDef> };
}

export interface Env {
  macros: Map<string, MacroDef>;
  lists: Map<string, string[]>;
  /** Each list with the lists it names expanded (see expandLists); made on first use. */
  expanded?: Map<string, string[]>;
  /** Per string field, the memo of its string tests by value (made on first use). */
  memos?: Map<string, FieldMemo>;
}

/** Operators whose test on a string is worth remembering by value (string searches, globs,
 *  regexes, list lookups); `=`, `!=` and `exists` are cheaper than a lookup. */
const MEMO_OPS = new Set(['contains', 'bcontains', 'icontains', 'startswith', 'bstartswith', 'endswith', 'glob', 'iglob',
  'regex', 'pmatch', 'in', 'intersects']);
const MEMO_SLOTS = 4096;
/** Longer values (sample-controlled command lines can be huge) are tested each time rather
 *  than kept as keys, so the memo holds at most MEMO_SLOTS × MEMO_MAX_LEN characters per field. */
const MEMO_MAX_LEN = 512;

/**
 * The string tests all rules make on one field, remembered by the field's value. Opens name the
 * same files again and again (libraries, /etc, /proc/self), and a path meets dozens of
 * `contains`/`startswith`/`glob` tests across the rules of its event type: each distinct value
 * runs each test once (until MEMO_SLOTS values have been seen, when the memo starts over), and
 * the value is read from the event once. Tests are pure functions of the value, so results
 * are the same as computing them every time.
 */
export class FieldMemo {
  readonly tests: ((x: Scalar) => boolean)[] = [];
  private readonly slots = new Map<string, number>();
  /** Results by slot × stride + test: 0 not yet computed, 1 false, 2 true. */
  private buf: Int8Array | null = null;
  private stride = 0;
  private lastE: EnrichedEvent | null = null;
  private lastV: Scalar = null;
  /** Offset of the current value's row; -1 when the value is not remembered (not a string, or too long). */
  private base = -1;
  constructor(private readonly get: (e: EnrichedEvent, x: EvalCtx) => Scalar) {}

  add(test: (x: Scalar) => boolean): number {
    this.tests.push(test);
    return this.tests.length - 1;
  }

  private load(e: EnrichedEvent, x: EvalCtx): void {
    const v = this.get(e, x);
    this.lastE = e;
    this.lastV = v;
    if (typeof v !== 'string' || v.length > MEMO_MAX_LEN) {
      this.base = -1;
      return;
    }
    if (this.buf === null) {
      this.stride = this.tests.length;
      this.buf = new Int8Array(MEMO_SLOTS * this.stride);
    }
    let slot = this.slots.get(v);
    if (slot === undefined) {
      if (this.slots.size >= MEMO_SLOTS) this.slots.clear();
      slot = this.slots.size;
      this.slots.set(v, slot);
      this.buf.fill(0, slot * this.stride, (slot + 1) * this.stride);
    }
    this.base = slot * this.stride;
  }

  /** Test `i` on the field's value in event `e`. */
  t(i: number, e: EnrichedEvent, x: EvalCtx): boolean {
    if (e !== this.lastE) this.load(e, x);
    if (this.base < 0 || i >= this.stride) return this.tests[i]!(this.lastV);
    const buf = this.buf!;
    const r = buf[this.base + i]!;
    if (r !== 0) return r === 2;
    const ok = this.tests[i]!(this.lastV);
    buf[this.base + i] = ok ? 2 : 1;
    return ok;
  }
}

/** Fields whose string tests are remembered by value: plain string fields of the event's
 *  process, descriptor and paths (not evt.*, whose values change with every event). */
function memoizable(def: FieldDef, field: string, op: string): boolean {
  return def.kind === 'str' && !def.any && MEMO_OPS.has(op)
    && (field.startsWith('fd.') || field.startsWith('fs.path.') || field.startsWith('proc.') || field.startsWith('user.'));
}

function memoOf(env: Env, name: string, def: FieldDef): FieldMemo {
  if (!env.memos) env.memos = new Map();
  let m = env.memos.get(name);
  if (!m) env.memos.set(name, (m = new FieldMemo(def.get)));
  return m;
}

export interface Compiled {
  pred: Pred;
  /** Event types the condition can match; null when it could match any event. */
  types: Set<string> | null;
  /** Fields the condition reads (evidence shows their values). */
  fields: Map<string, FieldDef>;
}

export function macroAst(env: Env, name: string): Node {
  const m = env.macros.get(name);
  if (!m) throw new CompileError('UNKNOWN_MACRO', `unknown macro '${name}'`);
  if (m.error) throw new CompileError(m.errorCode ?? 'CONDITION_SYNTAX', `macro '${name}': ${m.error}`);
  if (!m.ast) {
    try {
      m.ast = parseCondition(m.condition);
    } catch (e) {
      m.error = (e as Error).message;
      if (e instanceof ConditionDepthError) m.errorCode = 'CONDITION_TOO_DEEP';
      throw new CompileError(m.errorCode ?? 'CONDITION_SYNTAX', `macro '${name}': ${m.error}`);
    }
  }
  return m.ast;
}

/**
 * Strongly connected components of a directed graph (Tarjan's algorithm, iterative so that a
 * chain of 100,000 lists or macros cannot exhaust the stack). Components come out in reverse
 * topological order: every component a component points to comes out before it.
 * `succ` must name only nodes of the graph.
 */
export function stronglyConnected(nodes: Iterable<string>, succ: (n: string) => readonly string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { n: string; s: readonly string[]; i: number }[] = [];
    const visit = (n: string) => {
      index.set(n, next);
      low.set(n, next);
      next++;
      stack.push(n);
      onStack.add(n);
      work.push({ n, s: succ(n), i: 0 });
    };
    visit(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.s.length) {
        const w = top.s[top.i++]!;
        if (!index.has(w)) visit(w);
        else if (onStack.has(w)) low.set(top.n, Math.min(low.get(top.n)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.n, Math.min(low.get(parent.n)!, low.get(top.n)!));
      if (low.get(top.n) === index.get(top.n)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.n);
        out.push(comp);
      }
    }
  }
  return out;
}

/** A component is a cycle when it has more than one member or a member that names itself. */
export function isCycle(comp: readonly string[], succ: (n: string) => readonly string[]): boolean {
  return comp.length > 1 || succ(comp[0]!).includes(comp[0]!);
}

/** The shortest way round a cycle from `start` (start ... start), for messages. */
export function cyclePath(start: string, members: ReadonlySet<string>, succ: (n: string) => readonly string[]): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const n = queue[q]!;
    for (const w of succ(n)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const back = [start];
        for (let p = n; p !== start; p = from.get(p)!) back.push(p);
        back.push(start);
        return back.reverse();
      }
      if (!from.has(w)) {
        from.set(w, n);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** The lists each list names among its items (Falco lets lists include other lists). */
export function listEdges(env: Env): (n: string) => string[] {
  return (n) => (env.lists.get(n) ?? []).filter((it) => env.lists.has(it));
}

/**
 * Expands every list once: a list holds its own items with the lists it names replaced by their
 * items (without repeats). Lists that include each other (a names b, b names a) form a cycle:
 * each of them holds the items of all of them, and their names are not items. Returns the
 * cycles so that the loader can report them.
 */
export function expandLists(env: Env): { cycles: string[][] } {
  const expanded = new Map<string, string[]>();
  const succ = listEdges(env);
  const cycles: string[][] = [];
  const order = new Map([...env.lists.keys()].map((n, i) => [n, i]));
  for (const comp of stronglyConnected(env.lists.keys(), succ)) {
    const members = new Set(comp);
    // Members in definition order, so a list's own items keep their order.
    if (comp.length > 1) comp.sort((a, b) => order.get(a)! - order.get(b)!);
    if (isCycle(comp, succ)) cycles.push(comp);
    const items = new Set<string>();
    for (const name of comp) {
      for (const it of env.lists.get(name)!) {
        if (members.has(it)) continue;
        const sub = expanded.get(it);
        if (sub) for (const x of sub) items.add(x);
        else items.add(it);
      }
    }
    const all = [...items];
    for (const m of comp) expanded.set(m, all);
  }
  env.expanded = expanded;
  return { cycles };
}

/** The items of a condition's value list with list names replaced by the lists' items. */
export function expandItems(env: Env, items: string[]): string[] {
  const expanded = env.expanded ?? (expandLists(env), env.expanded!);
  const out: string[] = [];
  for (const it of items) {
    const sub = expanded.get(it);
    if (sub) out.push(...sub);
    else out.push(it);
  }
  return out;
}

function intersect(a: Set<string> | null, b: Set<string>): Set<string> {
  if (a === null) return new Set(b);
  const out = new Set<string>();
  for (const t of a) if (b.has(t)) out.add(t);
  return out;
}

const TRUE: Pred = () => true;
const FALSE: Pred = () => false;

/** POSIX character classes a glob's bracket expression may name (`[[:digit:]]`), as in the C locale. */
const GLOB_CLASSES: Record<string, string> = {
  alnum: 'A-Za-z0-9', alpha: 'A-Za-z', blank: ' \\t', cntrl: '\\x00-\\x1f\\x7f', digit: '0-9', graph: '!-~',
  lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: ' \\t\\n\\r\\f\\v', upper: 'A-Z', xdigit: '0-9A-Fa-f',
};

/** Thrown by compileGlob for a pattern fnmatch would not read as written. */
export class GlobError extends Error {}

/**
 * A glob as Falco matches it (libsinsp: fnmatch(3) without flags; iglob with FNM_CASEFOLD): `*`
 * and `?` match any characters, `/` and newlines included; `[...]` a character class (`!` or `^`
 * first negates it, a `]` first is a member, ranges, `[:alpha:]`-style classes); a backslash
 * makes the next character literal, inside a class too. Patterns fnmatch reads as something other
 * than what they say are refused (GlobError): a `[` no `]` closes (fnmatch then takes the `[` as
 * text, so `/tmp/[ab` never matches /tmp/a), a trailing lone backslash (never matches), a range
 * written backwards (`[z-a]`, matches nothing), an unknown class name. Also returns the literal
 * text before the first wildcard and the longest literal run, cheap tests that must pass first.
 */
export function compileGlob(g: string, flags = ''): { re: RegExp; prefix: string; piece: string } {
  const chars = Array.from(g); // code points: a class member may be outside the BMP
  // escaped for a regular expression with the u flag: outside a class, and inside one
  const special = (c: string) => (/[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c);
  const member = (c: string) => (/[\\\]\[^-]/.test(c) ? `\\${c}` : c);
  let re = '';
  let lit = '';
  let prefix: string | undefined;
  let piece = '';
  const endLiteral = () => {
    prefix ??= lit;
    if (lit.length > piece.length) piece = lit;
    lit = '';
  };
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*' || c === '?') {
      endLiteral();
      re += c === '*' ? '.*' : '.';
    } else if (c === '[') {
      const start = i;
      let j = i + 1;
      let negate = false;
      if (chars[j] === '!' || chars[j] === '^') { negate = true; j++; }
      let body = '';
      let closed = false;
      for (let first = true; j < chars.length; first = false) {
        let m = chars[j]!;
        if (m === ']' && !first) { closed = true; break; }
        if (m === '[' && chars[j + 1] === ':') {
          const end = chars.indexOf(':', j + 2);
          if (end > 0 && chars[end + 1] === ']') {
            const name = chars.slice(j + 2, end).join('');
            const set = GLOB_CLASSES[name];
            if (set === undefined) throw new GlobError(`unknown character class '[:${name}:]' (${Object.keys(GLOB_CLASSES).join(', ')})`);
            body += set;
            j = end + 2;
            continue;
          }
        }
        if (m === '[' && (chars[j + 1] === '.' || chars[j + 1] === '=')) {
          throw new GlobError(`collating elements and equivalence classes ('[${chars[j + 1]}') are not supported`);
        }
        if (m === '\\') {
          if (j + 1 >= chars.length) break; // unterminated: reported below
          m = chars[++j]!;
        }
        j++;
        // a range: m-x, unless the '-' is the last member (then it is a member itself)
        if (chars[j] === '-' && j + 1 < chars.length && chars[j + 1] !== ']') {
          let hi = chars[j + 1]!;
          j += 2;
          if (hi === '\\') {
            if (j >= chars.length) break;
            hi = chars[j++]!;
          }
          if (hi.codePointAt(0)! < m.codePointAt(0)!) throw new GlobError(`range '${m}-${hi}' is written backwards: it matches nothing (write '${hi}-${m}')`);
          body += `${member(m)}-${member(hi)}`;
        } else body += member(m);
      }
      if (!closed) {
        throw new GlobError(`the '[' at character ${start + 1} opens a character class that no ']' closes (a literal '[' is written '[[]')`);
      }
      endLiteral();
      re += `[${negate ? '^' : ''}${body}]`;
      i = j;
    } else {
      let x = c;
      if (c === '\\') {
        if (i + 1 >= chars.length) throw new GlobError("it ends in a lone '\\', which escapes nothing");
        x = chars[++i]!;
      }
      lit += x;
      re += special(x);
    }
  }
  endLiteral();
  try {
    return { re: new RegExp(`^${re}$`, `su${flags}`), prefix: prefix ?? '', piece };
  } catch (e) {
    throw new GlobError(`it cannot be compiled (${(e as Error).message})`);
  }
}

function valueItems(env: Env, v: Value | undefined): string[] {
  if (!v) return [];
  if (v.k === 'list') return expandItems(env, v.items);
  if (v.k === 'str') return [v.v];
  return [];
}

/** A test on one field value. */
function scalarTest(kind: FieldDef['kind'], op: string, env: Env, v: Value | undefined, fieldName: string): (x: Scalar) => boolean {
  const items = valueItems(env, v);
  const one = items[0] ?? '';
  const bad = (msg: string): never => {
    throw new CompileError('BAD_VALUE', `${fieldName} ${op}: ${msg}`);
  };
  if (op === 'exists') return (x) => x !== null;
  if (kind === 'bool') {
    if (op !== '=' && op !== '!=') throw new CompileError('UNSUPPORTED_OPERATOR', `operator '${op}' on boolean field ${fieldName}`);
    const want = one === 'true' || one === '1';
    return op === '=' ? (x) => x === want : (x) => x !== null && x !== want;
  }
  if (kind === 'net') {
    const tests = items.map((s) => cidrTest(s) ?? bad(`'${s}' is not an IPv4 network`));
    // Loops rather than tests.some(...): no closure allocated per event.
    const anyOf = (x: string): boolean => {
      for (let i = 0; i < tests.length; i++) if (tests[i]!(x)) return true;
      return false;
    };
    if (op === '=' || op === 'in') return (x) => typeof x === 'string' && anyOf(x);
    if (op === '!=') return (x) => typeof x === 'string' && !anyOf(x);
    throw new CompileError('UNSUPPORTED_OPERATOR', `operator '${op}' on network field ${fieldName}`);
  }
  if (kind === 'num') {
    const nums = items.map((s) => {
      const n = Number(s);
      return Number.isFinite(n) ? n : bad(`'${s}' is not a number`);
    });
    const n = nums[0] ?? 0;
    switch (op) {
      case '=': return (x) => x === n;
      case '!=': return (x) => x !== null && x !== n;
      case '<': return (x) => x !== null && (x as number) < n;
      case '<=': return (x) => x !== null && (x as number) <= n;
      case '>': return (x) => x !== null && (x as number) > n;
      case '>=': return (x) => x !== null && (x as number) >= n;
      case 'in': case 'intersects': {
        const s = new Set(nums);
        return (x) => s.has(x as number);
      }
    }
    throw new CompileError('UNSUPPORTED_OPERATOR', `operator '${op}' on numeric field ${fieldName}`);
  }
  // string fields (numbers from evt.arg.* compare as their decimal text)
  const str = (x: Scalar): string | null => (x === null ? null : typeof x === 'string' ? x : String(x));
  switch (op) {
    case '=': return (x) => str(x) === one;
    case '!=': return (x) => x !== null && str(x) !== one;
    case 'contains': case 'bcontains': return (x) => str(x)?.includes(one) ?? false;
    case 'icontains': {
      const lo = one.toLowerCase();
      return (x) => str(x)?.toLowerCase().includes(lo) ?? false;
    }
    case 'startswith': case 'bstartswith': return (x) => str(x)?.startsWith(one) ?? false;
    case 'endswith': return (x) => str(x)?.endsWith(one) ?? false;
    case 'glob': case 'iglob': {
      let glob: ReturnType<typeof compileGlob>;
      try {
        glob = compileGlob(one, op === 'iglob' ? 'i' : '');
      } catch (e) {
        if (!(e instanceof GlobError)) throw e;
        return bad(`bad pattern '${one}': ${e.message}`);
      }
      const re = glob.re;
      // Cheap necessary conditions first: the literal prefix and the longest literal piece.
      const prefix = op === 'glob' ? glob.prefix : '';
      const piece = op === 'glob' ? glob.piece : '';
      return (x) => {
        const s = str(x);
        return s !== null && s.startsWith(prefix) && s.includes(piece) && re.test(s);
      };
    }
    case 'regex': {
      let re: RegExp;
      try {
        re = new RegExp(one);
      } catch {
        return bad(`bad regular expression '${one}'`);
      }
      return (x) => {
        const s = str(x);
        return s !== null && re.test(s);
      };
    }
    case 'in': case 'intersects': {
      const s = new Set(items);
      return (x) => {
        const t = str(x);
        return t !== null && s.has(t);
      };
    }
    case 'pmatch': {
      const prefixes = items.map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p));
      return (x) => {
        const s = str(x);
        if (s === null) return false;
        for (const p of prefixes) if (s === p || (s.startsWith(p) && (p === '/' || s[p.length] === '/'))) return true;
        return false;
      };
    }
    case '<': case '<=': case '>': case '>=': {
      const n = Number(one);
      if (!Number.isFinite(n)) return bad(`'${one}' is not a number`);
      return (x) => {
        const v = typeof x === 'number' ? x : Number(x);
        if (x === null || !Number.isFinite(v)) return false;
        return op === '<' ? v < n : op === '<=' ? v <= n : op === '>' ? v > n : v >= n;
      };
    }
  }
  throw new CompileError('UNSUPPORTED_OPERATOR', `unsupported operator '${op}'`);
}

function fieldName(r: FieldRef): string {
  return r.arg === undefined ? r.name : `${r.name}[${r.arg}]`;
}

function resolve(r: FieldRef): FieldDef {
  const res = resolveField(r.name, r.arg);
  if (!res.ok) throw new CompileError('UNSUPPORTED_FIELD', res.reason);
  return res.def;
}

interface Gen {
  /** Constants the generated code refers to as K[i]: getters, tests, macro predicates. */
  K: unknown[];
}

function konst(g: Gen, v: unknown): string {
  g.K.push(v);
  return `K[${g.K.length - 1}]`;
}

function compileMacro(env: Env, name: string, fields: Map<string, FieldDef>, stack: string[]): { pred: Pred; types: Set<string> | null } {
  if (stack.includes(name)) throw new CompileError('MACRO_CYCLE', `macro cycle through '${name}'`);
  if (stack.length >= MAX_MACRO_DEPTH) {
    throw new CompileError('CONDITION_TOO_DEEP',
      `macros nested deeper than ${MAX_MACRO_DEPTH} levels (${stack.slice(0, 3).join(' -> ')} -> ... -> ${name})`);
  }
  const def = env.macros.get(name);
  if (def?.compiled) {
    for (const [k, v] of def.compiled.fields) fields.set(k, v);
    return { pred: def.compiled.pred, types: def.compiled.types };
  }
  const own = new Map<string, FieldDef>();
  const c = build(env, macroAst(env, name), own, [...stack, name], `macro_${name}`);
  for (const [k, v] of own) fields.set(k, v);
  // Many rules share a macro (open_write, spawned_process, ...): evaluate it once per event.
  // Each memo is its own generated function so that its call site stays monomorphic.
  let pred = c.pred;
  if (pred !== TRUE && pred !== FALSE) {
    pred = new Function('inner', `'use strict'; let last = null; let v = false;
      return function macro(e, x) { if (e === last) return v; v = inner(e, x); last = e; return v; };`)(c.pred) as Pred;
  }
  if (def) def.compiled = { pred, types: c.types, fields: own };
  return { pred, types: c.types };
}

/** Ops a whole pure subtree may use (every scalarTest op on strings). */
const PURE_OPS = new Set([...MEMO_OPS, '=', '!=', 'exists']);

/** The memo (and how to derive the field from the memo's value) for a string field. */
function memoKey(name: string, arg: string | undefined): { key: string; derive: ((s: string) => string) | undefined } {
  const derive = arg === undefined ? FD_NAME_DERIVED[name] : undefined;
  return derive ? { key: 'fd.name', derive } : { key: name, derive: undefined };
}

interface PureTest {
  key: string;
  /** The field the memo reads (fd.name for the fields derived from it). */
  def: FieldDef;
  test: (x: Scalar) => boolean;
  /** The fields the subtree reads, in the order gen() would record them (evidence order). */
  reads: [string, FieldDef][];
  leaves: number;
}

/** When a subtree (and/or/not over comparisons) reads only one string field (fd.name and the
 *  fields derived from it count as one), it is a pure function of that field's value: the whole
 *  subtree becomes one remembered test. null when it is not (gen compiles it as usual). */
function pureTest(env: Env, node: Node): PureTest | null {
  switch (node.k) {
    case 'cmp': {
      if (node.value?.k === 'field' || !PURE_OPS.has(node.op)) return null;
      const res = resolveField(node.field.name, node.field.arg);
      if (!res.ok) return null;
      const def = res.def;
      if (!memoizable(def, node.field.name, 'in')) return null;
      const name = fieldName(node.field);
      let test: (x: Scalar) => boolean;
      try {
        test = scalarTest(def.kind, node.op, env, node.value, name);
      } catch {
        return null; // gen reports the error
      }
      const { key, derive } = memoKey(name, node.field.arg);
      let keyDef = def;
      if (derive) {
        const inner = test;
        test = (v) => inner(typeof v === 'string' ? derive(v) : v);
        keyDef = resolve({ name: key });
      }
      return { key, def: keyDef, test, reads: [[name, def]], leaves: 1 };
    }
    case 'not': {
      const c = pureTest(env, node.item);
      if (!c) return null;
      const inner = c.test;
      return { ...c, test: (x) => !inner(x) };
    }
    case 'and': case 'or': {
      const parts: PureTest[] = [];
      for (const item of node.items) {
        const c = pureTest(env, item);
        if (!c || (parts.length > 0 && c.key !== parts[0]!.key)) return null;
        parts.push(c);
      }
      if (parts.length === 0) return null;
      const tests = parts.map((p) => p.test);
      const test = node.k === 'and'
        ? (x: Scalar) => {
          for (let i = 0; i < tests.length; i++) if (!tests[i]!(x)) return false;
          return true;
        }
        : (x: Scalar) => {
          for (let i = 0; i < tests.length; i++) if (tests[i]!(x)) return true;
          return false;
        };
      return { key: parts[0]!.key, def: parts[0]!.def, test, reads: parts.flatMap((p) => p.reads), leaves: parts.reduce((n, p) => n + p.leaves, 0) };
    }
    default:
      return null;
  }
}

/** Generates a JS expression for a node; each rule becomes one function with its own call sites. */
function gen(env: Env, node: Node, fields: Map<string, FieldDef>, stack: string[], g: Gen): { src: string; types: Set<string> | null } {
  if (genDepth >= MAX_EXPANDED_DEPTH) {
    throw new CompileError('CONDITION_TOO_DEEP', `condition nested deeper than ${MAX_EXPANDED_DEPTH} levels with its macros expanded`);
  }
  genDepth++;
  try {
    return genNode(env, node, fields, stack, g);
  } finally {
    genDepth--;
  }
}

function genNode(env: Env, node: Node, fields: Map<string, FieldDef>, stack: string[], g: Gen): { src: string; types: Set<string> | null } {
  switch (node.k) {
    case 'const':
      return { src: node.v ? 'true' : 'false', types: null };
    case 'macro': {
      const m = compileMacro(env, node.name, fields, stack);
      if (m.pred === TRUE || m.pred === FALSE) return { src: m.pred === TRUE ? 'true' : 'false', types: m.types };
      return { src: `${konst(g, m.pred)}(e, x)`, types: m.types };
    }
    case 'not': case 'and': case 'or': {
      const pure = pureTest(env, node);
      if (pure && pure.leaves > 1) {
        for (const [k, v] of pure.reads) fields.set(k, v);
        const memo = memoOf(env, pure.key, pure.def);
        return { src: `${konst(g, memo)}.t(${memo.add(pure.test)}, e, x)`, types: null };
      }
      break;
    }
  }
  switch (node.k) {
    case 'not': {
      const c = gen(env, node.item, fields, stack, g);
      return { src: c.src === 'true' ? 'false' : c.src === 'false' ? 'true' : `!(${c.src})`, types: null };
    }
    case 'and': case 'or': {
      const parts = node.items.map((n) => gen(env, n, fields, stack, g));
      let types: Set<string> | null = null;
      if (node.k === 'and') {
        for (const p of parts) if (p.types) types = intersect(types as Set<string> | null, p.types);
      } else if (parts.every((p) => p.types)) {
        types = new Set();
        for (const p of parts) for (const t of p.types!) types!.add(t);
      }
      const isAnd = node.k === 'and';
      const unit = isAnd ? 'true' : 'false';
      const zero = isAnd ? 'false' : 'true';
      const srcs = parts.map((p) => p.src).filter((x) => x !== unit);
      if (srcs.includes(zero)) return { src: zero, types };
      if (srcs.length === 0) return { src: unit, types };
      return { src: srcs.length === 1 ? srcs[0]! : `(${srcs.join(isAnd ? ' && ' : ' || ')})`, types };
    }
    case 'cmp': {
      const name = fieldName(node.field);
      if (node.field.name === 'evt.dir') {
        // Our events are complete calls: both directions' arguments are known.
        return { src: node.op === '!=' ? 'false' : 'true', types: null };
      }
      const def = resolve(node.field);
      fields.set(name, def);
      let types: Set<string> | null = null;
      if ((node.field.name === 'evt.type' || node.field.name === 'syscall.type') && (node.op === '=' || node.op === 'in')) {
        types = new Set(valueItems(env, node.value));
        // evt.type is computed once per event by the detector (x.type when x.cur is this event).
        const set = konst(g, types);
        return { src: `${set}.has(x.cur === e ? x.type : ${konst(g, def.get)}(e, x))`, types };
      }
      const get = konst(g, def.get);
      const inlineRead = INLINE_FIELDS[name];
      const read = inlineRead ? inlineRead(get) : `${get}(e, x)`;
      if (node.value?.k === 'field') {
        const other = resolve(node.value.ref);
        fields.set(fieldName(node.value.ref), other);
        const op = node.op;
        if (!['=', '!=', 'contains', 'startswith', 'endswith'].includes(op)) {
          throw new CompileError('UNSUPPORTED_OPERATOR', `operator '${op}' with val()`);
        }
        const cmp = (a: Scalar, b: Scalar): boolean => {
          if (a === null || b === null) return false;
          const sa = String(a);
          const sb = String(b);
          return op === '=' ? sa === sb : op === '!=' ? sa !== sb : op === 'contains' ? sa.includes(sb)
            : op === 'startswith' ? sa.startsWith(sb) : sa.endsWith(sb);
        };
        return { src: `${konst(g, cmp)}(${get}(e, x), ${konst(g, other.get)}(e, x))`, types };
      }
      if (def.any && node.op !== 'exists') {
        const neg = node.op === '!=';
        const test = konst(g, scalarTest(def.kind, neg ? '=' : node.op, env, node.value, name));
        const any = konst(g, def.any);
        return { src: `${neg ? '!' : ''}${any}(e, x, ${test})`, types };
      }
      if (memoizable(def, node.field.name, node.op)) {
        let test = scalarTest(def.kind, node.op, env, node.value, name);
        let memo: FieldMemo;
        const { key, derive } = memoKey(name, node.field.arg);
        if (derive) {
          // fd.filename, fd.directory, fd.nameraw: one memo keyed by fd.name for all of them.
          memo = memoOf(env, key, resolve({ name: key }));
          const inner = test;
          test = (v) => inner(typeof v === 'string' ? derive(v) : v);
        } else memo = memoOf(env, name, def);
        const i = memo.add(test);
        return { src: `${konst(g, memo)}.t(${i}, e, x)`, types };
      }
      const inl = inlineCmp(def, node.field.name, node.op, env, node.value, read, g);
      if (inl) return { src: inl, types };
      const test = konst(g, scalarTest(def.kind, node.op, env, node.value, name));
      if (name === 'evt.arg.flags' && node.op === 'contains' && node.value?.k === 'str') {
        const bits = openFlagTest(node.value.v);
        if (bits) {
          // Opens test the flag bit directly; other calls compare the rendered flags.
          const b = konst(g, (e: EnrichedEvent, x: EvalCtx, t: (v: Scalar) => boolean, gt: (e: EnrichedEvent, x: EvalCtx) => Scalar) => {
            const r = bits(e);
            return r === null ? t(gt(e, x)) : r;
          });
          return { src: `${b}(e, x, ${test}, ${get})`, types };
        }
      }
      return { src: `${test}(${get}(e, x))`, types };
    }
  }
}

/** Hot fields read straight from the event in generated code (the getter is the fallback). */
const INLINE_FIELDS: Record<string, (fallback: string) => string> = {
  'fd.name': (f) => `(e.fd !== undefined ? e.fd.name : ${f}(e, x))`,
  'proc.name': () => `(e.proc.name || null)`,
  'proc.pname': () => `(e.proc.parent !== undefined ? (e.proc.parent.name || null) : null)`,
  'user.uid': () => `e.proc.uid`,
  'proc.pid': () => `e.proc.pid`,
};

/** The common comparisons written straight into the rule's code (one call fewer per test).
 *  Values are constants in K; `v` is a scratch variable of the generated function. */
function inlineCmp(def: FieldDef, field: string, op: string, env: Env, value: Value | undefined, read: string, g: Gen): string | null {
  // evt.arg.* may yield numbers for string comparisons; those keep the generic tests.
  if (field.startsWith('evt.arg') || field.startsWith('evt.rawarg') || def.kind === 'net') return null;
  const items = valueItems(env, value);
  if (def.kind === 'str') {
    const c = () => konst(g, items[0] ?? '');
    switch (op) {
      case '=': return `(${read} === ${c()})`;
      case '!=': return `((v = ${read}) !== null && v !== ${c()})`;
      case 'in': case 'intersects': return `${konst(g, new Set(items))}.has(${read})`;
      case 'startswith': case 'bstartswith': return `((v = ${read}) !== null && v.startsWith(${c()}))`;
      case 'endswith': return `((v = ${read}) !== null && v.endsWith(${c()}))`;
      case 'contains': case 'bcontains': return `((v = ${read}) !== null && v.includes(${c()}))`;
    }
    return null;
  }
  if (def.kind === 'num') {
    const nums = items.map(Number);
    if (nums.some((n) => !Number.isFinite(n))) return null; // the generic path reports the bad value
    const c = () => konst(g, nums[0] ?? 0);
    switch (op) {
      case '=': return `(${read} === ${c()})`;
      case '!=': return `((v = ${read}) !== null && v !== ${c()})`;
      case '<': case '<=': case '>': case '>=': return `((v = ${read}) !== null && v ${op} ${c()})`;
      case 'in': case 'intersects': return `${konst(g, new Set(nums))}.has(${read})`;
    }
    return null;
  }
  if (def.kind === 'bool' && (op === '=' || op === '!=')) {
    const want = konst(g, items[0] === 'true' || items[0] === '1');
    return op === '=' ? `(${read} === ${want})` : `((v = ${read}) !== null && v !== ${want})`;
  }
  return null;
}

function build(env: Env, node: Node, fields: Map<string, FieldDef>, stack: string[], label = 'rule'): { pred: Pred; types: Set<string> | null } {
  const g: Gen = { K: [] };
  const { src, types } = gen(env, node, fields, stack, g);
  if (src === 'true') return { pred: TRUE, types };
  if (src === 'false') return { pred: FALSE, types };
  // Structure only: every value from a rule file is passed in K, never spliced into the source.
  // The function's name (letters, digits and _ only) makes profiles show which rule costs what.
  const fname = `${label.startsWith('macro_') ? '' : 'rule_'}${label.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60)}`;
  const pred = new Function('K', `'use strict'; return function ${fname}(e, x) { let v; return ${src}; };`)(g.K) as Pred;
  return { pred, types };
}

export function compileNode(env: Env, node: Node, fields: Map<string, FieldDef>, stack: string[] = [], label = 'rule'): { pred: Pred; types: Set<string> | null } {
  return build(env, node, fields, stack, label);
}

export function compileCondition(env: Env, condition: string | Node, label = 'rule'): Compiled {
  const ast = typeof condition === 'string' ? parseCondition(condition) : condition;
  const fields = new Map<string, FieldDef>();
  const { pred, types } = compileNode(env, ast, fields, [], label);
  return { pred, types, fields };
}
