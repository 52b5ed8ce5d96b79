// Loads Falco-format rule files (rule/macro/list items, append and override, exceptions) plus
// sandtrace's stateful extension (`threshold:` and `sequence:` on a rule) into a RuleSet.
// Problems become diagnostics with file, line, rule and a stable code; a bad rule disables
// only itself.
import { readFile } from 'node:fs/promises';
import { CST, Composer, LineCounter, Parser, isMap, isScalar, isSeq, type Document } from 'yaml';
import type { Severity } from '../types.js';
import { CompileError, compileCondition, cyclePath, expandLists, isCycle, listEdges, stronglyConnected, type Env, type MacroDef, type Pred } from './compile.js';
import { ConditionDepthError, ConditionSyntaxError, parseCondition, type Node, type Value } from './parse.js';
import { fieldSource, resolveField, type FieldDef } from './fields.js';
import { compileOutput } from './output.js';

export type DiagnosticCode =
  | 'FILE_UNREADABLE' | 'YAML_SYNTAX' | 'INVALID_ITEM' | 'CONDITION_SYNTAX' | 'UNKNOWN_MACRO' | 'MACRO_CYCLE'
  | 'UNSUPPORTED_FIELD' | 'UNSUPPORTED_OPERATOR' | 'UNSUPPORTED_SOURCE' | 'BAD_VALUE' | 'APPEND_WITHOUT_BASE'
  | 'BAD_STATEFUL' | 'CONDITION_TOO_DEEP' | 'UNKNOWN_KEY' | 'LIST_CYCLE' | 'NEWER_ENGINE' | 'EMPTY_FILE';

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
  /** `syscall`: the rule sees the capture's events; `session`: the connections the sandbox caught,
   *  once each after the capture's last event; `dns`: the domains the sample asked the DNS sinkhole
   *  about, once each after that (see detector.ts). */
  source: RuleSource;
  threshold?: ThresholdSpec;
  sequence?: SequenceSpec;
  file: string;
  line: number;
}

export type RuleSource = 'syscall' | 'session' | 'dns';
const SOURCES: readonly string[] = ['syscall', 'session', 'dns'];

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
  /** Where the output (or the last change to it) was written: unknown fields are reported there. */
  outWhere: { file: string; line: number };
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

// The keys each item may have: Falco's rule schema (userspace/engine/rule_json_schema.h), split
// by item kind, plus sandtrace's own (id, confidence, threshold, sequence). Falco's schema
// rejects other keys; Falco reports schema failures as warnings, and so do we (UNKNOWN_KEY).
const RULE_KEYS = ['rule', 'desc', 'condition', 'output', 'priority', 'tags', 'enabled', 'exceptions', 'source', 'append',
  'override', 'warn_evttypes', 'skip-if-unknown-filter', 'capture', 'capture_duration', 'capture_events', 'capture_filesize',
  'id', 'confidence', 'threshold', 'sequence'];
const MACRO_KEYS = ['macro', 'condition', 'append', 'override'];
const LIST_KEYS = ['list', 'items', 'append', 'override'];
const EXCEPTION_KEYS = ['name', 'fields', 'comps', 'values'];
const THRESHOLD_KEYS = ['count', 'within', 'by', 'distinct'];
const SEQUENCE_KEYS = ['within', 'by', 'after'];
const ITEM_KEYS = new Set([...RULE_KEYS, ...MACRO_KEYS, ...LIST_KEYS, 'required_engine_version', 'required_plugin_versions']);
/** What Falco requires of a rule that is defined (not appended to, overridden or switched on/off). */
const REQUIRED_RULE_KEYS = ['condition', 'desc', 'output', 'priority'];

/**
 * The Falco rule engine version this engine is checked against, in Falco's numbering
 * (FALCO_ENGINE_VERSION: a whole number up to 26, "0.26.0" from then on, where
 * `required_engine_version: 26` means 0.26.0): what the vendored Falco rule files ask for
 * (test/fixtures/falco: 26 and 17). A file asking for more gets a NEWER_ENGINE warning, not
 * Falco's refusal: this engine is not Falco's, and a rule using what it does not support is
 * disabled with its own diagnostic anyway (unknown fields, operators, keys), so a newer file that
 * uses only what it knows runs whole.
 */
export const RULE_ENGINE_VERSION = '0.26.0';

/** A required_engine_version as [major, minor, patch] (Falco: a whole number N is 0.N.0), or undefined. */
function engineVersion(v: unknown): [number, number, number] | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? [0, v, 0] : undefined;
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v)) return [0, Number(v), 0];
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** What a required_engine_version says about its file: malformed (an error), newer than this engine (a warning), or nothing. */
function engineVersionProblem(v: unknown): { severity: 'error' | 'warning'; message: string } | undefined {
  const want = engineVersion(v);
  if (!want) {
    return { severity: 'error', message: `required_engine_version must be a whole number (26) or a version x.y.z (0.26.0), not ${v === null ? 'nothing' : typeof v === 'number' ? String(v) : JSON.stringify(v)}` };
  }
  const have = engineVersion(RULE_ENGINE_VERSION)!;
  const newer = want.findIndex((x, i) => x !== have[i]);
  if (newer < 0 || want[newer]! < have[newer]!) return undefined;
  const shown = typeof v === 'number' || /^\d+$/.test(String(v)) ? `${String(v)} (${want.join('.')})` : want.join('.');
  return { severity: 'warning', message: `the file requires rule engine version ${shown}, newer than the ${RULE_ENGINE_VERSION} sandtrace's rule engine is checked against: rules using what this engine does not support are disabled one by one, each with its own diagnostic` };
}

/**
 * How deeply YAML collections may nest in a rules file. Rule files nest a few levels (a rule's
 * exceptions' values are 6 deep); the YAML reader composes nodes recursively, so a file nested
 * hundreds of thousands deep would exhaust the stack: it is measured on the parser's tokens
 * (which the parser builds without recursion) and refused before it is composed.
 */
export const MAX_YAML_DEPTH = 256;
/** YAML syntax errors listed per file; the rest are counted in one more diagnostic. */
export const MAX_YAML_ERRORS = 5;

/** The offset of the first collection nested deeper than MAX_YAML_DEPTH, or undefined. Iterative. */
function tooDeep(tokens: readonly CST.Token[]): number | undefined {
  const todo: [CST.Token, number][] = [];
  for (const t of tokens) if (t.type === 'document' && t.value) todo.push([t.value, 1]);
  for (let next = todo.pop(); next; next = todo.pop()) {
    const [t, depth] = next;
    if (!CST.isCollection(t)) continue;
    if (depth > MAX_YAML_DEPTH) return t.offset;
    for (const item of t.items) {
      if (item.key) todo.push([item.key, depth + 1]);
      if (item.value) todo.push([item.value, depth + 1]);
    }
  }
  return undefined;
}

/** Optimal string alignment distance (Levenshtein plus transpositions), case-insensitive. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) => [i, ...Array<number>(y.length).fill(0)]);
  for (let j = 1; j <= y.length; j++) d[0]![j] = j;
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[x.length]![y.length]!;
}

/** The known key closest to a misspelled one, when it is close enough to be the likely intent. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(key, k);
    if (dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  const limit = key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3;
  return bestD <= limit ? best : undefined;
}

/** Falco reads booleans with yaml-cpp, which also takes these words (any quoting, flexible case). */
const YAML_CPP_BOOL: Record<string, boolean> = { y: true, yes: true, true: true, on: true, n: false, no: false, false: false, off: false };
function yamlCppBool(s: string): boolean | undefined {
  const flexible = s === s.toLowerCase() || s === s.toUpperCase() || (s[0] === s[0]!.toUpperCase() && s.slice(1) === s.slice(1).toLowerCase());
  return flexible ? YAML_CPP_BOOL[s.toLowerCase()] : undefined;
}

/** ` ('priorty' looks like a misspelling of 'priority')` when a misspelt key may be one of the missing ones. */
function hintFor(misspelt: Map<string, string>, missing: readonly string[]): string {
  const hits = [...misspelt].filter(([, k]) => missing.includes(k));
  return hits.length ? ` (${hits.map(([bad, k]) => `'${bad}' looks like a misspelling of '${k}'`).join('; ')})` : '';
}

/** A required key's value is text (numbers are taken as text, as yaml-cpp does); null, empty and
 *  lists or mappings are not. */
function requiredText(v: unknown): string | null {
  if (typeof v === 'string') return v.trim() === '' ? null : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

export function loadRuleSources(sources: SourceText[]): { ruleset: RuleSet; diagnostics: RuleDiagnostic[] } {
  const diagnostics: RuleDiagnostic[] = [];
  const env: Env = { macros: new Map(), lists: new Map() };
  const rules = new Map<string, RawRule>();
  const order: string[] = [];
  const macroWhere = new Map<string, { file: string; line: number }>();
  const listWhere = new Map<string, { file: string; line: number }>();

  for (const { file, text } of sources) {
    const lc = new LineCounter();
    let docs: Document.Parsed[];
    try {
      // parseAllDocuments in two steps, so that the depth is checked between them
      const tokens = [...new Parser(lc.addNewLine).parse(text)];
      const deep = tooDeep(tokens);
      if (deep !== undefined) {
        const at = lc.linePos(deep);
        diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line: at.line,
          message: `YAML nested deeper than ${MAX_YAML_DEPTH} levels (lists and mappings inside each other, at line ${at.line}, column ${at.col}); the file is not read` });
        continue;
      }
      docs = [...new Composer().compose(tokens)] as Document.Parsed[];
    } catch (e) {
      const message = e instanceof RangeError ? 'YAML nested too deeply to read; the file is not read' : (e as Error).message.split('\n')[0]!;
      diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line: 1, message });
      continue;
    }
    /**
     * Warns of keys an item (or one of its exceptions, its threshold or its sequence) does not
     * have, naming the closest known key. Returns each misspelt key with its likely intent, so
     * that an error about a missing key can point at it.
     */
    const checkKeys = (node: unknown, known: readonly string[], kind: string, name: string | undefined): Map<string, string> => {
      const rule = kind === 'rule' ? name : undefined;
      const misspelt = new Map<string, string>();
      const walk = (map: unknown, keys: readonly string[], where: string, top: boolean) => {
        if (!isMap(map)) return;
        for (const pair of map.items) {
          if (!isScalar(pair.key)) continue;
          const key = String(pair.key.value);
          if (keys.includes(key)) continue;
          const r = pair.key.range;
          const at = r ? lc.linePos(r[0]).line : 1;
          const guess = closestKey(key, keys);
          if (guess) misspelt.set(key, guess);
          const message = top && ITEM_KEYS.has(key) && !guess
            ? `'${key}' is not a key of a ${kind}; it is ignored`
            : `unknown key '${key}' in ${where}${guess ? `; did you mean '${guess}'?` : ''} (it is ignored)`;
          diagnostics.push({ code: 'UNKNOWN_KEY', severity: 'warning', file, line: at, ...(rule !== undefined ? { rule } : {}), message });
        }
      };
      walk(node, known, `${kind} '${name}'`, true);
      if (kind === 'rule' && isMap(node)) {
        const exs = node.get('exceptions', true);
        if (isSeq(exs)) for (const ex of exs.items) walk(ex, EXCEPTION_KEYS, 'an exception', false);
        walk(node.get('threshold', true), THRESHOLD_KEYS, 'threshold', false);
        walk(node.get('sequence', true), SEQUENCE_KEYS, 'sequence', false);
      }
      return misspelt;
    };
    // rule, macro and list items, and errors, of this file: a file with neither defines nothing
    let defined = 0;
    const before = diagnostics.filter((d) => d.severity === 'error').length;
    let yamlErrors = 0;
    for (const doc of docs) {
      if (doc.errors.length > 0) {
        for (const err of doc.errors) {
          // one stray quote or bracket makes every later token an error (thousands of lines):
          // the first few say where, the rest are counted
          if (++yamlErrors > MAX_YAML_ERRORS) continue;
          const at = lc.linePos(err.pos[0]);
          // the reader's own recursion ran out (the depth check above should have caught it first)
          const message = /maximum call stack/i.test(err.message) ? 'YAML nested too deeply to read; the file is not read' : err.message.split('\n')[0]!;
          diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line: at.line, message: `${message} at line ${at.line}, column ${at.col}` });
        }
        continue;
      }
      const root = doc.contents;
      // an empty document (nothing, only comments, `null` or `~`) holds no items, as in Falco
      if (root === null || (isScalar(root) && root.value === null)) continue;
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
        const bad = (message: string, rule?: string, at = line) => diagnostics.push({ code: 'INVALID_ITEM', severity: 'error', file, line: at, ...(rule ? { rule } : {}), message });
        if (!item || typeof item !== 'object' || Array.isArray(item)) {
          bad('each item must be a mapping (rule, macro or list)');
          continue;
        }
        /** The line of a key's value (of the key itself when it has none). */
        const lineOf = (key: string): number => {
          if (!isMap(node)) return line;
          const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
          const r = (pair?.value as { range?: [number] } | null | undefined)?.range ?? (pair?.key as { range?: [number] } | undefined)?.range;
          return r ? lc.linePos(r[0]).line : line;
        };
        const kind = 'rule' in item ? 'rule' : 'macro' in item ? 'macro' : 'list' in item ? 'list' : undefined;
        if (kind) defined++;
        const itemName = kind ? String(item[kind]) : undefined;
        const misspelt = kind ? checkKeys(node, kind === 'rule' ? RULE_KEYS : kind === 'macro' ? MACRO_KEYS : LIST_KEYS, kind, itemName) : new Map<string, string>();
        /** A boolean key (enabled, append): true/false, or a word Falco's yaml-cpp reads as one
         *  ("false", no, off: a warning, as other YAML readers take them as text); anything
         *  else is an error (null: the key is invalid, the item is skipped). */
        const boolKey = (key: string): boolean | undefined | null => {
          if (!(key in item)) return undefined;
          const v = item[key];
          if (typeof v === 'boolean') return v;
          const word = typeof v === 'string' ? yamlCppBool(v) : undefined;
          if (word !== undefined) {
            diagnostics.push({ code: 'INVALID_ITEM', severity: 'warning', file, line: lineOf(key), ...(kind === 'rule' ? { rule: itemName! } : {}),
              message: `${key}: ${JSON.stringify(v)} is text, not a boolean; read as ${word}, as Falco does (write ${key}: ${word})` });
            return word;
          }
          bad(`${key} must be true or false (got ${v === null ? 'nothing' : JSON.stringify(v)}); the item is skipped`,
            kind === 'rule' ? itemName : undefined, lineOf(key));
          return null;
        };
        const override = (item['override'] ?? {}) as Record<string, string>;
        // Falco's override: a mapping of a key to 'append' or 'replace'; anything else was taken as
        // an append, and the error then pointed at the rule it was appended to
        if (item['override'] !== undefined) {
          const o = item['override'];
          const wrong = !o || typeof o !== 'object' || Array.isArray(o) ? 'must map keys to append or replace'
            : Object.entries(o).map(([k, v]) => (v === 'append' || v === 'replace' ? '' : `${k}: ${JSON.stringify(v)} is neither append nor replace`)).find(Boolean);
          if (wrong) { bad(`override ${wrong}; the item is skipped`, itemName, lineOf('override')); continue; }
        }
        const appendFlag = boolKey('append');
        if (appendFlag === null) continue;
        const append = appendFlag === true;
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
          if (!listWhere.has(name) || !(append || override['items'] === 'append')) listWhere.set(name, { file, line });
        } else if ('macro' in item) {
          const name = String(item['macro']);
          const cond = item['condition'];
          if (typeof cond !== 'string') {
            bad(`macro '${name}' needs a condition${hintFor(misspelt, ['condition'])}`);
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
          const enabled = boolKey('enabled');
          if (enabled === null) continue;
          // As in Falco, an item with none of condition, output, desc and priority only switches
          // an earlier rule on or off.
          const onlyEnabled = enabled !== undefined && !REQUIRED_RULE_KEYS.some((k) => k in item);
          if (prev && (isAppend || onlyEnabled)) {
            // Append/override onto an existing rule, or just switch it on or off.
            if (enabled !== undefined) prev.enabled = enabled;
            if (typeof item['condition'] === 'string') {
              prev.condition = override['condition'] === 'replace' ? item['condition'] : `${prev.condition ?? ''} ${item['condition']}`;
            }
            if (typeof item['output'] === 'string') {
              prev.output = override['output'] === 'replace' ? item['output'] : `${prev.output} ${item['output']}`;
              prev.outWhere = { file, line: lineOf('output') };
            }
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
          if (onlyEnabled) {
            diagnostics.push({ code: 'APPEND_WITHOUT_BASE', severity: 'warning', file, line, rule: name, message: `enabled: for undefined rule '${name}'` });
            continue;
          }
          // Falco requires all four of a rule it defines (an append or override needs none).
          const missing = REQUIRED_RULE_KEYS.filter((k) => requiredText(item[k]) === null);
          if (missing.length > 0) {
            const what = missing.map((k) => (item[k] === undefined ? `'${k}'` : `a non-empty '${k}'`));
            bad(`rule '${name}' needs ${what.length > 1 ? `${what.slice(0, -1).join(', ')} and ${what.at(-1)}` : what[0]}${hintFor(misspelt, missing)}` +
              ': Falco requires condition, desc, output and priority of a rule that does not append to or override one', name);
            continue;
          }
          const raw: RawRule = {
            name, file, line, condLine,
            condition: requiredText(item['condition'])!,
            desc: requiredText(item['desc'])!,
            output: requiredText(item['output'])!,
            outWhere: { file, line: lineOf('output') },
            priority: requiredText(item['priority'])!,
            tags: Array.isArray(item['tags']) ? item['tags'].map(String) : [],
            enabled: enabled ?? true,
            exceptions: Array.isArray(item['exceptions']) ? item['exceptions'] : [],
            source: String(item['source'] ?? 'syscall'),
          };
          if (typeof item['id'] === 'string') raw.id = item['id'];
          if ('confidence' in item) raw.confidence = item['confidence'];
          if (item['threshold'] && typeof item['threshold'] === 'object') raw.threshold = item['threshold'] as Record<string, unknown>;
          if (item['sequence'] && typeof item['sequence'] === 'object') raw.sequence = item['sequence'] as Record<string, unknown>;
          if (!prev) order.push(name);
          rules.set(name, raw);
        } else if ('required_engine_version' in item) {
          const why = engineVersionProblem(item['required_engine_version']);
          if (why?.severity === 'error') bad(why.message, undefined, lineOf('required_engine_version'));
          else if (why) diagnostics.push({ code: 'NEWER_ENGINE', severity: 'warning', file, line: lineOf('required_engine_version'), message: why.message });
        } else if (!('required_plugin_versions' in item)) {
          bad(`unknown item (keys: ${Object.keys(item).join(', ')})`);
        }
      }
    }
    if (yamlErrors > MAX_YAML_ERRORS) {
      const last = diagnostics.filter((d) => d.file === file && d.code === 'YAML_SYNTAX').at(-1)!;
      diagnostics.push({ code: 'YAML_SYNTAX', severity: 'error', file, line: last.line,
        message: `${yamlErrors - MAX_YAML_ERRORS} more YAML syntax errors after line ${last.line} (most follow from the first ones: fix those and check again)` });
    }
    // A rules file that defines nothing (empty, only comments, `[]`, `null`) loads, as in Falco
    // (its falco_rules.local.yaml template is all comments), but says so: given with --rules by
    // mistake it would otherwise pass silently as "0 of 0 rules". A file of only macros or lists
    // is not empty (rules in later files use them).
    if (defined === 0 && diagnostics.filter((d) => d.severity === 'error').length === before) {
      diagnostics.push({ code: 'EMPTY_FILE', severity: 'warning', file, line: 0,
        message: 'the file defines no rule, macro or list (empty, only comments, [] or null), so it adds nothing' });
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

  // Macros that use each other in a cycle (m1 uses m2 uses m1) are reported where the first of
  // them is defined, used or not (Falco rejects them: a macro sees only the macros before it).
  // Rules that use them are disabled with MACRO_CYCLE when they are compiled.
  const macroSucc = (n: string): string[] => {
    const ast = env.macros.get(n)?.ast;
    return ast ? macroRefs(ast).filter((m) => env.macros.has(m)) : [];
  };
  const macroOrder = new Map([...env.macros.keys()].map((n, i) => [n, i]));
  for (const comp of stronglyConnected(env.macros.keys(), macroSucc)) {
    if (!isCycle(comp, macroSucc)) continue;
    const first = comp.reduce((a, b) => (macroOrder.get(a)! <= macroOrder.get(b)! ? a : b));
    const w = macroWhere.get(first)!;
    diagnostics.push({ code: 'MACRO_CYCLE', severity: 'error', file: w.file, line: w.line,
      message: `macros use each other in a cycle: ${showPath(cyclePath(first, new Set(comp), macroSucc))}` });
  }
  // Lists that include each other: each holds the items of all of them (Falco would keep the
  // names of lists defined later as plain items, so this is a warning, not an error).
  const listSucc = listEdges(env);
  for (const comp of expandLists(env).cycles) {
    const w = listWhere.get(comp[0]!)!;
    diagnostics.push({ code: 'LIST_CYCLE', severity: 'warning', file: w.file, line: w.line,
      message: `lists include each other in a cycle: ${showPath(cyclePath(comp[0]!, new Set(comp), listSucc))}; each holds the items of all of them` });
  }

  const ruleset: RuleSet = { rules: [], total: order.length, loaded: 0, off: [], disabled: [] };
  for (const name of order) {
    const r = rules.get(name)!;
    const disable = (code: DiagnosticCode, reason: string, level: 'error' | 'warning', where = { file: r.file, line: r.condLine }) => {
      ruleset.disabled.push({ rule: name, reason, code, file: where.file, line: where.line });
      diagnostics.push({ code, severity: level, file: where.file, line: where.line, rule: name, message: reason });
    };
    if (!SOURCES.includes(r.source)) {
      disable('UNSUPPORTED_SOURCE', `event source '${r.source}' is none of syscall, session and dns`, 'warning');
      continue;
    }
    const source = r.source as RuleSource;
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
      // a field of another source's events: never there on this rule's events
      const foreign = [...c.fields.keys()].find((f) => { const s = fieldSource(f); return s !== undefined && s !== source; });
      if (foreign) {
        const of = fieldSource(foreign) === 'session' ? 'the connections the sandbox caught' : 'the names the sample asked the DNS sinkhole about';
        disable('UNSUPPORTED_FIELD', `${foreign} is a field of ${of}: the rule needs \`source: ${fieldSource(foreign)}\``, 'error');
        continue;
      }
      if (source === 'session' && r.sequence) throw new StatefulError('sequence applies to rules of source syscall; a rule of source session sees each caught connection once, after the capture');
      if (source === 'dns' && r.sequence) throw new StatefulError('sequence applies to rules of source syscall; a rule of source dns sees each domain asked about once, after the capture');
      const rule: CompiledRule = {
        name, id: r.id ?? name, description: r.desc.trim().replace(/\s+/g, ' '), severity,
        priority: r.priority.toUpperCase(), attack: r.tags.filter((t) => /^T\d{4}(\.\d{3})?$/.test(t)),
        tags: r.tags, confidence, output: r.output.trim(), pred: c.pred, types: c.types,
        fields: c.fields, source, file: r.file, line: r.line,
      };
      if (r.threshold) rule.threshold = thresholdSpec(r.threshold);
      if (r.sequence) rule.sequence = sequenceSpec(env, r.sequence);
      // An output placeholder naming no field sandtrace knows prints <NA> (as before the check
      // existed); it is reported, but the rule still runs: its condition is what detects.
      for (const p of compileOutput(r.output).problems) {
        diagnostics.push({
          code: 'UNSUPPORTED_FIELD', severity: 'warning', file: r.outWhere.file, line: r.outWhere.line, rule: name,
          message: `output: ${p.reason} (%${p.text}); it prints as <NA>, the rule still runs`,
        });
      }
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
      else if (e instanceof ExceptionError) disable('INVALID_ITEM', e.message, 'error');
      // Last resort: a condition the depth limits did not catch still disables only its rule.
      else if (e instanceof RangeError) disable('CONDITION_TOO_DEEP', `condition too complex to compile (${e.message})`, 'error');
      else throw e;
    }
  }
  return { ruleset, diagnostics };
}

class StatefulError extends Error {}

/** A cycle for a message: a -> b -> a, long ones shortened in the middle. */
function showPath(path: string[]): string {
  if (path.length <= 8) return path.join(' -> ');
  return `${path.slice(0, 4).join(' -> ')} -> ... (${path.length - 6} more) -> ${path.slice(-2).join(' -> ')}`;
}

/** The macro names a condition uses (iterative: the tree can be deep). */
function macroRefs(ast: Node): string[] {
  const out: string[] = [];
  const todo: Node[] = [ast];
  for (let n = todo.pop(); n; n = todo.pop()) {
    if (n.k === 'macro') out.push(n.name);
    else if (n.k === 'not') todo.push(n.item);
    else if (n.k === 'and' || n.k === 'or') todo.push(...n.items);
  }
  return out;
}

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

/** A malformed exceptions entry: the rule is disabled with an error, as a bad condition is. */
class ExceptionError extends Error {}

/**
 * Falco exceptions: each value row is an AND over the fields; rows and exceptions are ORed.
 * An entry that is not {name, fields, comps?, values?}, or a row whose length is not the fields',
 * is an error: taken loosely, a missing value was compared with the text "undefined" and the
 * exception silently never matched.
 */
function exceptionsAst(exceptions: unknown[]): Node | null {
  const ors: Node[] = [];
  for (const [i, raw] of exceptions.entries()) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ExceptionError(`exceptions[${i}] must be a mapping with name, fields and values (got ${JSON.stringify(raw)})`);
    const ex = raw as Record<string, unknown>;
    const what = typeof ex['name'] === 'string' ? `exception '${ex['name']}'` : `exceptions[${i}]`;
    if (typeof ex['name'] !== 'string') throw new ExceptionError(`${what} has no name`);
    const f = ex['fields'];
    if (!(typeof f === 'string' || (Array.isArray(f) && f.length > 0 && f.every((x) => typeof x === 'string')))) throw new ExceptionError(`${what}: fields must be a field name or a list of them`);
    if (ex['values'] !== undefined && !Array.isArray(ex['values'])) throw new ExceptionError(`${what}: values must be a list`);
    if (Array.isArray(f)) {
      if (ex['comps'] !== undefined && !(Array.isArray(ex['comps']) && ex['comps'].length === f.length)) throw new ExceptionError(`${what}: comps must list one operator per field (${f.length})`);
      for (const [j, row] of ((ex['values'] ?? []) as unknown[]).entries()) {
        if (!Array.isArray(row) || row.length !== f.length) throw new ExceptionError(`${what}: values[${j}] must list one value per field (${f.length}), got ${JSON.stringify(row)}`);
      }
    }
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
