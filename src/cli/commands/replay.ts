// `sandtrace replay FILE`: run the engine over a recording or an imported trace and write the report.
import { replay } from '../../replay.js';
import { SandtraceError } from '../../errors.js';
import { parseFlags, displayPath } from '../args.js';

export const summary = 'run the engine over a recorded (--record) or imported trace and write the same report';

const USAGE = 'sandtrace replay FILE [--out DIR] [--json] [--rules FILE]... [--model FILE] [--abi x86_64|i386]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    out: { type: 'string' }, json: { type: 'boolean' }, rules: { type: 'string', multiple: true },
    model: { type: 'string' }, abi: { type: 'string' },
  }, USAGE);
  if (positionals.length !== 1) throw new SandtraceError('USAGE', `replay takes one trace file; usage: ${USAGE}`);
  const abi = values.abi;
  if (abi !== undefined && abi !== 'x86_64' && abi !== 'i386') throw new SandtraceError('USAGE', `--abi must be x86_64 or i386`);
  const res = await replay({
    file: positionals[0] as string, outDir: values.out ?? 'analysis',
    ...(values.rules ? { rules: values.rules } : {}), ...(values.model ? { model: values.model } : {}), ...(abi ? { abi } : {}),
  });
  const r = res.report;
  if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else {
    process.stdout.write(`verdict: ${r.verdict.label} (score ${r.verdict.score.toFixed(1)}/10), ${r.findings.length} finding(s), ` +
      `${r.processes.length} process(es), ${r.syscalls.total.toLocaleString('en-US')} syscalls: ${displayPath(res.reportPath)}\n`);
  }
  return 0;
}
