// `sandtrace replay FILE`: run the engine over a recording or an imported trace and write the report.
import { replay } from '../../replay.js';
import { SandtraceError } from '../../errors.js';
import { refuseExistingAnalysis } from '../../outpath.js';
import { noExtraArgs, parseFlags, displayPath } from '../args.js';
import { termSafe, termSafeJson } from '../terminal.js';

export const summary = 'run the engine over a recorded (--record) or imported trace and write the same report';

const USAGE = 'sandtrace replay FILE [--out DIR] [--force] [--json] [--rules FILE]... [--model FILE] [--abi x86_64|i386]';
export const usage = USAGE;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    out: { type: 'string' }, json: { type: 'boolean' }, rules: { type: 'string', multiple: true },
    model: { type: 'string' }, abi: { type: 'string' }, force: { type: 'boolean' },
  }, USAGE);
  if (positionals.length === 0) throw new SandtraceError('USAGE', `replay takes one trace file; usage: ${USAGE}`);
  noExtraArgs(positionals, 1, USAGE);
  const abi = values.abi;
  if (abi !== undefined && abi !== 'x86_64' && abi !== 'i386') throw new SandtraceError('USAGE', `--abi must be x86_64 or i386`);
  // an empty --out would be the current directory: the report and its files among the user's own
  if (values.out === '') throw new SandtraceError('USAGE', `--out needs a directory (an empty one would write into the current directory); usage: ${USAGE}`);
  const outDir = values.out ?? 'analysis';
  // an earlier analysis in the output directory is never replaced without --force
  if (values.force !== true) refuseExistingAnalysis(outDir);
  const res = await replay({
    file: positionals[0] as string, outDir,
    ...(values.rules ? { rules: values.rules } : {}), ...(values.model ? { model: values.model } : {}), ...(abi ? { abi } : {}),
  });
  const r = res.report;
  if (values.json) process.stdout.write(termSafeJson(JSON.stringify(r, null, 2)) + '\n');
  else {
    process.stdout.write(`verdict: ${r.verdict.label} (score ${r.verdict.score.toFixed(1)}/10), ${r.findings.length} finding(s), ` +
      `${r.processes.length} process(es), ${r.syscalls.total.toLocaleString('en-US')} syscalls: ${displayPath(res.reportPath)}${res.cutShort ? ` (${res.cutShort})` : ''}\n`);
  }
  // what went wrong is said where the user looks, as analyze says it, not only inside report.json
  const failed = r.verdict.label === 'unknown';
  if (!values.json || failed) {
    // messages quote the sample's paths (a dropped file's name): shown, never acted on by the terminal
    for (const e of r.analysis.errors) process.stderr.write(`sandtrace replay: ${failed ? 'error' : 'warning'}: ${e.where ? `${termSafe(e.where)}: ` : ''}${termSafe(e.message)} [${termSafe(e.code)}]\n`);
    for (const w of r.analysis.warnings) process.stderr.write(`sandtrace replay: warning: ${w.where ? `${termSafe(w.where)}: ` : ''}${termSafe(w.message)} [${termSafe(w.code)}]\n`);
  }
  return 0;
}
