// The rule engine's public surface: load Falco-format rule files (ours and users'), find the
// built-in pack, and make a Detector that runs them.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRuleSources, readRuleFiles, type RuleDiagnostic, type RuleSet, type SourceText } from './load.js';
import { SandtraceError } from '../../errors.js';
import { checkInputFile } from '../../sample.js';

export { createRuleDetector } from './detector.js';
export { severityOf } from './load.js';
export type { CompiledRule, RuleDiagnostic, RuleSet, DiagnosticCode } from './load.js';

export async function loadRuleFiles(paths: string[]): Promise<{ ruleset: RuleSet; diagnostics: RuleDiagnostic[] }> {
  const { sources, diagnostics } = await readRuleFiles(paths);
  const r = loadRuleSources(sources);
  return { ruleset: r.ruleset, diagnostics: [...diagnostics, ...r.diagnostics] };
}

/**
 * The rules an analysis, a replay or a monitor runs: the built-in pack (unless `builtin: false`)
 * and the user's files read after it, so that they may use and extend its macros and lists, as
 * Falco rule files extend falco_rules.yaml. The user's files are checked before any work: a
 * missing one is INPUT_MISSING (a named FIFO refused, a piped /dev/stdin read), one with errors
 * RULES_INVALID naming the first with its line, rather than an analysis that runs without them.
 * The diagnostics returned are the pack's own errors (none when it is sound) and the warnings.
 */
export async function loadRules(user: readonly string[], opts: { builtin?: boolean } = {}): Promise<{ ruleset: RuleSet; diagnostics: RuleDiagnostic[] }> {
  for (const r of user) await checkInputFile(r, 'rule file');
  const loaded = await loadRuleFiles([...(opts.builtin === false ? [] : builtinRulePaths()), ...user]);
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error' && user.includes(d.file));
  const first = errors[0];
  if (first) {
    throw new SandtraceError('RULES_INVALID', `${first.file}${first.line > 0 ? `:${first.line}` : ''}: ${first.rule ? `${first.rule}: ` : ''}${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more error(s) in the rule files)` : ''}`,
      { details: { errors: errors.length } });
  }
  return loaded;
}

/** Loads rules from YAML text (tests, rules embedded elsewhere). */
export function loadRuleStrings(sources: SourceText[] | string): { ruleset: RuleSet; diagnostics: RuleDiagnostic[] } {
  return loadRuleSources(typeof sources === 'string' ? [{ file: '<string>', text: sources }] : sources);
}

/** The package root: the nearest ancestor holding package.json (works from src/ and dist/src/). */
export function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'rules'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('sandtrace package root not found');
    d = up;
  }
}

/** The built-in rule pack: rules/*.yaml at the package root, in name order. */
export function builtinRulePaths(): string[] {
  const dir = join(packageRoot(), 'rules');
  return readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort().map((f) => join(dir, f));
}

/** Falco's own rule files vendored for tests and the benchmark. */
export function falcoRulePaths(): string[] {
  const dir = join(packageRoot(), 'test', 'fixtures', 'falco');
  return ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => join(dir, f));
}
