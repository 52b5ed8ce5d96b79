// `sandtrace rules check FILE... [--json]` validates Falco-format rule files;
// `sandtrace rules list [--json]` shows the built-in pack.
import { noExtraArgs, parseFlags } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { refuseSpecialFile } from '../../sample.js';
import { builtinRulePaths, loadRuleFiles } from '../../engine/rules/index.js';

export const summary = 'check Falco-format rule files (rules check FILE... [--json]) or list the built-in pack (rules list)';

const USAGE = 'sandtrace rules check FILE... [--json] | sandtrace rules list [--json]';
export const usage = USAGE;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, USAGE);
  const [sub, ...files] = positionals;
  if (sub === 'list') {
    noExtraArgs(positionals, 1, 'sandtrace rules list [--json]');
    const { ruleset } = await loadRuleFiles(builtinRulePaths());
    const rows = ruleset.rules.map((r) => ({ id: r.id, name: r.name, severity: r.severity, attack: r.attack, source: r.source, stateful: r.threshold ? 'threshold' : r.sequence ? 'sequence' : undefined }));
    if (values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else {
      for (const r of rows) {
        const notes = [r.source === 'session' ? 'caught connections' : r.source === 'dns' ? 'DNS lookups' : undefined, r.stateful].filter(Boolean);
        process.stdout.write(`${r.id.padEnd(11)} ${r.severity.padEnd(8)} ${r.attack.join(',').padEnd(24)} ${r.name}${notes.length ? ` (${notes.join(', ')})` : ''}\n`);
      }
    }
    return 0;
  }
  if (sub !== 'check' || files.length === 0) throw new SandtraceError('USAGE', `usage: ${USAGE}`);
  for (const f of files) await refuseSpecialFile(f, 'rule file'); // a named FIFO would block the read; a piped /dev/stdin is read
  const { ruleset, diagnostics } = await loadRuleFiles(files);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (values.json) {
    process.stdout.write(JSON.stringify({
      rules: ruleset.total,
      loaded: ruleset.loaded,
      disabled: ruleset.disabled.map((d) => ({ rule: d.rule, reason: d.reason, code: d.code, file: d.file, line: d.line })),
      diagnostics,
    }, null, 2) + '\n');
  } else {
    for (const d of diagnostics) {
      process.stdout.write(`${d.file}:${d.line}: ${d.severity} ${d.code}${d.rule ? ` [${d.rule}]` : ''}: ${d.message}\n`);
    }
    const pct = ruleset.total ? ((100 * ruleset.loaded) / ruleset.total).toFixed(1) : '100.0';
    process.stdout.write(`${ruleset.loaded} of ${ruleset.total} rules loaded (${pct}%), ${ruleset.disabled.length} disabled, ${ruleset.off.length} switched off (enabled: false); ${errors.length} errors\n`);
  }
  return errors.length > 0 ? 4 : 0;
}
