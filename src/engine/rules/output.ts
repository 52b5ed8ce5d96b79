// A rule's `output`: literal text with `%field` placeholders, delimited as Falco's formatter
// (libsinsp eventformatter.cpp) delimits them, compiled once per rule into a renderer.
//
// After a '%': an optional width (`%20proc.name`: padded with spaces or cut to 20 characters), then
// a field transformer (`%toupper(proc.name)`, nestable) or a field: Falco's FieldName, dotted
// identifiers (`user.name`, `evt.arg.flags`), with an optional `[arg]` (`proc.aname[2]`). A '.'
// not followed by an identifier ends the name and is text: `%user.name.` is user.name then ".".
// A '%' not followed by a name (`100%`, `%%`) is text.
//
// Falco, which knows every field, shortens an unknown token to the longest field name it knows.
// sandtrace knows fewer fields, and shortening would split a Falco field it lacks into a known one
// and text (`%evt.time.iso8601` into evt.time and ".iso8601", `%proc.pidns_init_start_ts` into
// proc.pid and "ns_init_start_ts"), so it takes the whole name: the same placeholder as Falco's for
// every name Falco knows.
//
// A placeholder naming no field sandtrace knows (Falco fields whose data it has no source for,
// such as `evt.time.iso8601` or `evt.plugininfo`, or a misspelt one) renders as `<NA>` and is
// reported as a problem, which the loader turns into a warning: the rule still runs.
import type { EnrichedEvent } from '../../semantics/types.js';
import { resolveField, type EvalCtx, type Scalar } from './fields.js';

/** A part of a compiled output: literal text or a value getter. */
type Piece = string | ((e: EnrichedEvent, ctx: EvalCtx) => string);

/** A placeholder sandtrace cannot fill: what was written after '%' and why. */
export interface OutputProblem {
  text: string;
  reason: string;
}

export interface CompiledOutput {
  render(e: EnrichedEvent, ctx: EvalCtx): string;
  problems: OutputProblem[];
}

const NA = '<NA>';
/** Falco's field transformers (libsinsp parser::supported_field_transformers). */
const TRANSFORMERS = ['tolower', 'toupper', 'b64', 'basename', 'len', 'join'] as const;
type Transformer = (typeof TRANSFORMERS)[number];
/** The ones sandtrace applies; the others are recognised (delimited) but render as <NA>. */
const APPLIED: Partial<Record<Transformer, (v: Scalar) => Scalar>> = {
  tolower: (v) => (v === null ? null : String(v).toLowerCase()),
  toupper: (v) => (v === null ? null : String(v).toUpperCase()),
  basename: (v) => (v === null ? null : String(v).slice(String(v).lastIndexOf('/') + 1)),
  len: (v) => (v === null ? 0 : String(v).length),
};

/** A field token: dotted identifiers and an optional [arg] (Falco's FieldName and FieldArg). */
const FIELD_TOKEN = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\[[^\]\s]*\])?/y;
const TRANSFORMER_START = new RegExp(`(${TRANSFORMERS.join('|')})\\(`, 'y');

type Getter = (e: EnrichedEvent, ctx: EvalCtx) => Scalar;
interface Parsed {
  /** Characters consumed after the '%' (and width). */
  length: number;
  get: Getter;
  problem?: OutputProblem;
}

/** The field token at `pos`, taken whole (see the header: no shortening to a known prefix). */
function parseField(s: string, pos: number): Parsed | undefined {
  FIELD_TOKEN.lastIndex = pos;
  const m = FIELD_TOKEN.exec(s);
  if (!m) return undefined;
  const token = m[0];
  const br = token.indexOf('[');
  const r = resolveField(br < 0 ? token : token.slice(0, br), br < 0 ? undefined : token.slice(br + 1, -1));
  if (r.ok) return { length: token.length, get: r.def.get };
  return { length: token.length, get: () => null, problem: { text: token, reason: r.reason } };
}

/** A transformer call `name(inner)` at `pos` (inner: a field or another transformer). */
function parseTransformer(s: string, pos: number): Parsed | undefined {
  TRANSFORMER_START.lastIndex = pos;
  const m = TRANSFORMER_START.exec(s);
  if (!m) return undefined;
  const fn = m[1] as Transformer;
  const inner = parseTransformer(s, pos + m[0].length) ?? parseField(s, pos + m[0].length);
  const close = pos + m[0].length + (inner?.length ?? 0);
  const text = s.slice(pos, close + 1);
  if (!inner || s[close] !== ')') return { length: Math.max(m[0].length, close - pos), get: () => null, problem: { text: s.slice(pos, close), reason: `malformed field transformer '${fn}(...)'` } };
  const apply = APPLIED[fn];
  if (!apply) return { length: text.length, get: () => null, problem: { text, reason: `field transformer '${fn}(...)' is not supported` } };
  const g = inner.get;
  return { length: text.length, get: (e, ctx) => apply(g(e, ctx)), ...(inner.problem ? { problem: inner.problem } : {}) };
}

/** Compile an output format: its renderer and the placeholders it cannot fill. */
export function compileOutput(output: string): CompiledOutput {
  const pieces: Piece[] = [];
  const problems: OutputProblem[] = [];
  let text = '';
  let i = 0;
  while (i < output.length) {
    const pct = output.indexOf('%', i);
    if (pct < 0) break;
    let j = pct + 1;
    while (j < output.length && output.charCodeAt(j) >= 48 && output.charCodeAt(j) <= 57) j++;
    const width = j > pct + 1 ? Number(output.slice(pct + 1, j)) : 0;
    const p = parseTransformer(output, j) ?? parseField(output, j);
    if (!p) {
      // not a placeholder: the '%' is text
      text += output.slice(i, pct + 1);
      i = pct + 1;
      continue;
    }
    text += output.slice(i, pct);
    if (text) pieces.push(text);
    text = '';
    if (p.problem) problems.push(p.problem);
    const g = p.get;
    const str = (e: EnrichedEvent, ctx: EvalCtx): string => {
      const v = g(e, ctx);
      return v === null ? NA : String(v);
    };
    pieces.push(width > 0 ? (e, ctx) => str(e, ctx).padEnd(width, ' ').slice(0, width) : str);
    i = j + p.length;
  }
  text += output.slice(i);
  if (text) pieces.push(text);
  return {
    problems,
    render(e, ctx) {
      let s = '';
      for (const p of pieces) s += typeof p === 'string' ? p : p(e, ctx);
      return s;
    },
  };
}
