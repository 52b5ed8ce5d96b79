// Loads Falco-format rule files (rule/macro/list items, append and override, exceptions) plus
// sandtrace's stateful extension (`threshold:` and `sequence:` on a rule) into a RuleSet.
// Problems become diagnostics with file, line, rule and a stable code; a bad rule disables
// only itself.
import { readFile } from 'node:fs/promises';
import { LineCounter, parseAllDocuments, isMap, isSeq, type Document } from 'yaml';
import type { Severity } from '../types.js';
import { CompileError, compileCondition, type Env, type MacroDef, type Pred } from './compile.js';
import { ConditionDepthError, ConditionSyntaxError, parseCondition, type Node, type Value } from './parse.js';
import { resolveField, type FieldDef } from './fields.js';

export type DiagnosticCode =
  | 'FILE_UNREADABLE' | 'YAML_SYNTAX' | 'INVALID_ITEM' | 'CONDITION_SYNTAX' | 'UNKNOWN_MACRO' | 'MACRO_CYCLE'
  | 'UNSUPPORTED_FIELD' | 'UNSUPPORTED_OPERATOR' | 'UNSUPPORTED_SOURCE' | 'BAD_VALUE' | 'APPEND_WITHOUT_BASE'
  | 'BAD_STATEFUL' | 'CONDITION_TOO_DEEP';

export interface RuleDiagnostic {
  code: DiagnosticCode;
  /** error: the file is wrong; warning: valid Falco that this engine does not support. */
  severity: 'error' | 'warning';
  file: string;
  line: number;
  rule?: string;
  message: string;
}

export interface ThresholdSpec {
  count: number;
  withinNs: number;
  by: 'proc' | 'sample';
  distinct?: FieldDef;
  distinctName?: string;
}

export interface SequenceSpec {
  withinNs: number;
  by: 'proc' | 'sample';
  /** Conditions that must match, in order, before the rule's own condition. */
  steps: Pred[];
  /** Event types any step can match (null: any), so other events skip the sequence. */
  stepTypes: Set<string> | null;
}

export interface CompiledRule {
  name: string;
  id: string;
  description: string;
  severity: Severity;
  priority: string;
  attack: string[];
  tags: string[];
  confidence: number;
  output: string;
  pred: Pred;
  types: Set<string> | null;
  fields: Map<string, FieldDef>;
  threshold?: ThresholdSpec;
  sequence?: SequenceSpec;
  file: string;
  line: number;
}

export interface RuleSet {
  rules: CompiledRule[];
  /** Every rule definition seen, enabled or not. */
  total: number;
  /** Rules that compiled (enabled or not). */
  loaded: number;
  /** Rules that compiled but are `enabled: false`. */
  off: string[];
  disabled: { rule: string; reason: string; code: DiagnosticCode; file: string; line: number }[];
}

const PRIORITY: Record<string, Severity> = {
  emergency: 'critical', alert: 'critical', critical: 'critical', error: 'high', warning: 'medium',
  notice: 'low', informational: 'info', info: 'info', debug: 'info',
};

export function severityOf(priority: string): Severity | undefined {
  return PRIORITY[priority.toLowerCase()];
}

interface RawRule {
  name: string;
  file: string;
  line: number;
  condition?: string;
  desc: string;
  output: string;
  priority: string;
  tags: string[];
  enabled: boolean;
  exceptions: unknown[];
  source: string;
  id?: string;
  /** As written; checked to be a number in 0..1 when the rule is compiled. */
  confidence?: unknown;
  threshold?: Record<string, unknown>;
  sequence?: Record<string, unknown>;
  condLine: number;
}

export interface SourceText {
  file: string;
  text: string;
}

function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return v * 1e9;
  if (typeof v !== 'string') return null;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return null;
  const mult = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] ?? 's'] ?? 1e9;
  return Number(m[1]) * mult;
}

export function loadRuleSources(sources: SourceText[]): { ruleset: RuleSet; diagnostics: RuleDiagnostic[] } {
  const diagnostics: RuleDiagnostic[] = [];
  const env: Env = { macros: new Map(), lists: new Map() };
  const rules = new Map<string, RawRule>();
  const order: string[] = [];
  const macroWhere = new Map<string, { file: string; line: number }>();

  for (const { file, text } of sources) {
    const lc = new LineCounter();
    let docs: Document.Parsed[];
    try {
      docs = parseAllDocuments(text, { lineCounter: lc }) as Document.Parsed[];
    } catch (e) {
      diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line: 1, message: (e as Error).message.split('\n')[0]! });
      continue;
    }
    for (const doc of docs) {
      if (doc.errors.length > 0) {
        for (const err of doc.errors) {
          const line = err.linePos?.[0]?.line ?? 1;
          diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line, message: err.message.split('\n')[0]! });
        }
        continue;
      }
      const root = doc.contents;
      if (root === null) continue;
      if (!isSeq(root)) {
        const line = root.range ? lc.linePos(root.range[0]).line : 1;
        diagnostics.push({ code: 'INVALID_ITEM', severity: 'error', file, line, message: 'a rules file is a YAML list of rule, macro and list items' });
        continue;
      }
      for (const node of root.items) {
        const line = (node as { range?: [number, number, number] }).range ? lc.linePos((node as { range: [number, number, number] }).range[0]).line : 1;
        const item = (node as { toJSON(): unknown }).toJSON() as Record<string, unknown> | null;
        const condNode = isMap(node) ? node.get('condition', true) : undefined;
        const condRange = (condNode as unknown as { range?: [number] } | undefined)?.range;
        const condLine = condRange ? lc.linePos(condRange[0]).line : line;
        const bad = (message: string, rule?: string) => diagnostics.push({ code: 'INVALID_ITEM', severity: 'error', file, line, ...(rule ? { rule } : {}), message });
        if (!item || typeof item !== 'object' || Array.isArray(item)) {
          bad('each item must be a mapping (rule, macro or list)');
          continue;
        }
        const override = (item['override'] ?? {}) as Record<string, string>;
        const append = item['append'] === true;
        if ('list' in item) {
          const name = String(item['list']);
          const items = Array.isArray(item['items']) ? (item['items'] as unknown[]).map((x) => unquote(String(x))) : null;
          if (!items) {
            bad(`list '${name}' needs items: [...]`);
            continue;
          }
          const prev = env.lists.get(name);
          if (append || override['items'] === 'append') {
            if (!prev) diagnostics.push({ code: 'APPEND_WITHOUT_BASE', severity: 'warning', file, line, message: `append to undefined list '${name}'` });
            env.lists.set(name, [...(prev ?? []), ...items]);
          } else env.lists.set(name, items);
        } else if ('macro' in item) {
          const name = String(item['macro']);
          const cond = item['condition'];
          if (typeof cond !== 'string') {
            bad(`macro '${name}' needs a condition`);
            continue;
          }
          const prev = env.macros.get(name);
          const def: MacroDef = (append || override['condition'] === 'append') && prev
            ? { condition: `${prev.condition} ${cond}` } : { condition: cond };
          env.macros.set(name, def);
          macroWhere.set(name, { file, line: condLine });
        } else if ('rule' in item) {
          const name = String(item['rule']);
          const prev = rules.get(name);
          const isAppend = append || Object.keys(override).length > 0;
          if (prev && (isAppend || (Object.keys(item).length === 2 && 'enabled' in item))) {
            // Append/override onto an existing rule, or just switch it on or off.
            if ('enabled' in item) prev.enabled = item['enabled'] !== false;
            if (typeof item['condition'] === 'string') {
              prev.condition = override['condition'] === 'replace' ? item['condition'] : `${prev.condition ?? ''} ${item['condition']}`;
            }
            if (typeof item['output'] === 'string') prev.output = override['output'] === 'replace' ? item['output'] : `${prev.output} ${item['output']}`;
            if (typeof item['desc'] === 'string') prev.desc = override['desc'] === 'append' ? `${prev.desc} ${item['desc']}` : item['desc'];
            if (typeof item['priority'] === 'string') prev.priority = item['priority'];
            if (Array.isArray(item['tags'])) prev.tags = override['tags'] === 'replace' ? item['tags'].map(String) : [...prev.tags, ...item['tags'].map(String)];
            if (Array.isArray(item['exceptions'])) prev.exceptions = override['exceptions'] === 'replace' ? item['exceptions'] : [...prev.exceptions, ...item['exceptions']];
            continue;
          }
          if (isAppend && !prev) {
            diagnostics.push({ code: 'APPEND_WITHOUT_BASE', severity: 'warning', file, line, rule: name, message: `append/override of undefined rule '${name}'` });
            continue;
          }
          if (Object.keys(item).length === 2 && 'enabled' in item) {
            diagnostics.push({ code: 'APPEND_WITHOUT_BASE', severity: 'warning', file, line, rule: name, message: `enabled: for undefined rule '${name}'` });
            continue;
          }
          if (typeof item['condition'] !== 'string') {
            bad(`rule '${name}' needs a condition`, name);
            continue;
          }
          const raw: RawRule = {
            name, file, line, condLine,
            condition: item['condition'],
            desc: String(item['desc'] ?? ''),
            output: String(item['output'] ?? ''),
            priority: String(item['priority'] ?? 'WARNING'),
            tags: Array.isArray(item['tags']) ? item['tags'].map(String) : [],
            enabled: item['enabled'] !== false,
            exceptions: Array.isArray(item['exceptions']) ? item['exceptions'] : [],
            source: String(item['source'] ?? 'syscall'),
          };
          if (typeof item['id'] === 'string') raw.id = item['id'];
          if ('confidence' in item) raw.confidence = item['confidence'];
          if (item['threshold'] && typeof item['threshold'] === 'object') raw.threshold = item['threshold'] as Record<string, unknown>;
          if (item['sequence'] && typeof item['sequence'] === 'object') raw.sequence = item['sequence'] as Record<string, unknown>;
          if (!prev) order.push(name);
          rules.set(name, raw);
        } else if (!('required_engine_version' in item) && !('required_plugin_versions' in item)) {
          bad(`unknown item (keys: ${Object.keys(item).join(', ')})`);
        }
      }
    }
  }

  // Macros with syntax errors are reported once, where they are defined.
  for (const [name, m] of env.macros) {
    try {
      m.ast = parseCondition(m.condition);
    } catch (e) {
      m.error = (e as Error).message;
      if (e instanceof ConditionDepthError) m.errorCode = 'CONDITION_TOO_DEEP';
      const w = macroWhere.get(name)!;
      diagnostics.push({ code: m.errorCode ?? 'CONDITION_SYNTAX', severity: 'error', file: w.file, line: w.line, message: `macro '${name}': ${m.error}` });
    }
  }

  const ruleset: RuleSet = { rules: [], total: order.length, loaded: 0, off: [], disabled: [] };
  for (const name of order) {
    const r = rules.get(name)!;
    const disable = (code: DiagnosticCode, reason: string, level: 'error' | 'warning') => {
      ruleset.disabled.push({ rule: name, reason, code, file: r.file, line: r.condLine });
      diagnostics.push({ code, severity: level, file: r.file, line: r.condLine, rule: name, message: reason });
    };
    if (r.source !== 'syscall') {
      disable('UNSUPPORTED_SOURCE', `event source '${r.source}' is not syscall`, 'warning');
      continue;
    }
    const severity = severityOf(r.priority);
    if (!severity) {
      disable('INVALID_ITEM', `unknown priority '${r.priority}'`, 'error');
      continue;
    }
    const confidence = r.confidence === undefined ? 1 : r.confidence;
    if (typeof confidence !== 'number' || !(confidence >= 0 && confidence <= 1)) {
      disable('INVALID_ITEM', `confidence must be a number from 0 to 1 (got ${JSON.stringify(r.confidence) ?? String(r.confidence)})`, 'error');
      continue;
    }
    try {
      let ast = parseCondition(r.condition ?? '');
      const ex = exceptionsAst(r.exceptions);
      if (ex) ast = { k: 'and', items: [ast, { k: 'not', item: ex }] };
      const c = compileCondition(env, ast, r.id ?? name);
      const rule: CompiledRule = {
        name, id: r.id ?? name, description: r.desc.trim().replace(/\s+/g, ' '), severity,
        priority: r.priority.toUpperCase(), attack: r.tags.filter((t) => /^T\d{4}(\.\d{3})?$/.test(t)),
        tags: r.tags, confidence, output: r.output.trim(), pred: c.pred, types: c.types,
        fields: c.fields, file: r.file, line: r.line,
      };
      if (r.threshold) rule.threshold = thresholdSpec(r.threshold);
      if (r.sequence) rule.sequence = sequenceSpec(env, r.sequence);
      ruleset.loaded++;
      if (r.enabled) ruleset.rules.push(rule);
      else ruleset.off.push(name);
    } catch (e) {
      if (e instanceof ConditionDepthError) disable('CONDITION_TOO_DEEP', e.message, 'error');
      else if (e instanceof ConditionSyntaxError) disable('CONDITION_SYNTAX', e.message, 'error');
      else if (e instanceof CompileError) {
        const level = e.code === 'UNKNOWN_MACRO' || e.code === 'CONDITION_SYNTAX' || e.code === 'MACRO_CYCLE' || e.code === 'BAD_VALUE' || e.code === 'CONDITION_TOO_DEEP' ? 'error' : 'warning';
        disable(e.code, e.message, level);
      } else if (e instanceof StatefulError) disable('BAD_STATEFUL', e.message, 'error');
      // Last resort: a condition the depth limits did not catch still disables only its rule.
      else if (e instanceof RangeError) disable('CONDITION_TOO_DEEP', `condition too complex to compile (${e.message})`, 'error');
      else throw e;
    }
  }
  return { ruleset, diagnostics };
}

class StatefulError extends Error {}

/** List items are pasted into conditions as text in Falco, so '"a b"' is the string a b. */
function unquote(s: string): string {
  const q = s[0];
  if (s.length < 2 || (q !== '"' && q !== "'") || s[s.length - 1] !== q) return s;
  return s.slice(1, -1).replace(/\\(.)/g, '$1');
}

function byOf(v: unknown): 'proc' | 'sample' {
  if (v === undefined || v === 'proc' || v === 'process') return 'proc';
  if (v === 'sample' || v === 'analysis') return 'sample';
  throw new StatefulError(`'by' must be proc or sample, not '${String(v)}'`);
}

function thresholdSpec(t: Record<string, unknown>): ThresholdSpec {
  const count = Number(t['count']);
  const within = parseDuration(t['within']);
  if (!Number.isInteger(count) || count < 1) throw new StatefulError('threshold.count must be a positive integer');
  if (within === null) throw new StatefulError("threshold.within must be a duration like '10s'");
  const spec: ThresholdSpec = { count, withinNs: within, by: byOf(t['by']) };
  if (t['distinct'] !== undefined) {
    const name = String(t['distinct']);
    const m = /^([\w.]+)(?:\[(\w+)\])?$/.exec(name);
    const res = m ? resolveField(m[1]!, m[2]) : { ok: false as const, reason: `bad field '${name}'` };
    if (!res.ok) throw new CompileError('UNSUPPORTED_FIELD', `threshold.distinct: ${res.reason}`);
    spec.distinct = res.def;
    spec.distinctName = name;
  }
  return spec;
}

function sequenceSpec(env: Env, s: Record<string, unknown>): SequenceSpec {
  const within = parseDuration(s['within'] ?? '60s');
  if (within === null) throw new StatefulError("sequence.within must be a duration like '30s'");
  const after = s['after'];
  if (!Array.isArray(after) || after.length === 0) throw new StatefulError('sequence.after must list at least one condition');
  let stepTypes: Set<string> | null = new Set();
  const steps = after.map((c) => {
    if (typeof c !== 'string') throw new StatefulError('sequence.after items are conditions (strings)');
    const cc = compileCondition(env, c);
    if (!cc.types) stepTypes = null;
    else if (stepTypes) for (const t of cc.types) stepTypes.add(t);
    return cc.pred;
  });
  return { withinNs: within, by: byOf(s['by']), steps, stepTypes };
}

/** Falco exceptions: each value row is an AND over the fields; rows and exceptions are ORed. */
function exceptionsAst(exceptions: unknown[]): Node | null {
  const ors: Node[] = [];
  for (const raw of exceptions) {
    if (!raw || typeof raw !== 'object') continue;
    const ex = raw as Record<string, unknown>;
    const values = Array.isArray(ex['values']) ? ex['values'] : [];
    if (values.length === 0) continue;
    const fieldsRaw = ex['fields'];
    const toRef = (f: string) => {
      const m = /^([\w.]+)(?:\[([^\]]+)\])?$/.exec(f.trim());
      return m ? (m[2] !== undefined ? { name: m[1]!, arg: m[2] } : { name: m[1]! }) : { name: f };
    };
    const val = (v: unknown, op: string): Value =>
      Array.isArray(v) ? { k: 'list', items: v.map(String) } : op === 'in' || op === 'pmatch' || op === 'intersects' ? { k: 'list', items: [String(v)] } : { k: 'str', v: String(v) };
    if (typeof fieldsRaw === 'string') {
      const op = typeof ex['comps'] === 'string' ? (ex['comps'] as string) : 'in';
      ors.push({ k: 'cmp', field: toRef(fieldsRaw), op: op === '==' ? '=' : op, value: { k: 'list', items: values.map(String) } });
      continue;
    }
    if (!Array.isArray(fieldsRaw)) continue;
    const comps = Array.isArray(ex['comps']) ? ex['comps'].map(String) : fieldsRaw.map(() => '=');
    for (const row of values) {
      if (!Array.isArray(row)) continue;
      const items: Node[] = fieldsRaw.map((f, i) => {
        const op = comps[i] === '==' ? '=' : comps[i] ?? '=';
        return { k: 'cmp', field: toRef(String(f)), op, value: val(row[i], op) };
      });
      ors.push(items.length === 1 ? items[0]! : { k: 'and', items });
    }
  }
  if (ors.length === 0) return null;
  return ors.length === 1 ? ors[0]! : { k: 'or', items: ors };
}

export async function readRuleFiles(paths: string[]): Promise<{ sources: SourceText[]; diagnostics: RuleDiagnostic[] }> {
  const sources: SourceText[] = [];
  const diagnostics: RuleDiagnostic[] = [];
  for (const p of paths) {
    try {
      sources.push({ file: p, text: await readFile(p, 'utf8') });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      diagnostics.push({ code: 'FILE_UNREADABLE', severity: 'error', file: p, line: 0, message: `cannot read rule file (${code})` });
    }
  }
  return { sources, diagnostics };
}
