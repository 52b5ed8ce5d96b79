// `sandtrace analyze FILE [-- ARGS...]`: detonate a sample and write its report.
import { analyze, type Stage } from '../../analyze.js';
import { SandtraceError } from '../../errors.js';
import { noExtraArgs, numberFlag, parseFlags, splitDoubleDash, displayPath } from '../args.js';
import { checkOutFile } from '../../outpath.js';
import { progressLine } from '../progress.js';
import { termSafe, termSafeJson } from '../terminal.js';
import { MAX_TIMEOUT_S } from '../../sandbox/types.js';
import { EXIT, exitCodeFor } from '../main.js';

export const summary = 'run a sample in a disposable sandbox and write report.json, report.html and an ATT&CK layer';

const USAGE = 'sandtrace analyze FILE [-- ARGS...] [--timeout S] [--out DIR] [--force] [--json] [--image ARCHIVE] [--backend auto|ebpf|ptrace] [--rules FILE]... [--model FILE] [--record FILE] [--vm] [--interpreter PATH] [--dns sinkhole|nxdomain]';
export const usage = USAGE;

export async function run(argv: string[]): Promise<number> {
  const [mine, sampleArgs] = splitDoubleDash(argv);
  const { values, positionals } = parseFlags(mine, {
    timeout: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, image: { type: 'string' },
    backend: { type: 'string' }, rules: { type: 'string', multiple: true }, model: { type: 'string' },
    record: { type: 'string' }, vm: { type: 'boolean' }, force: { type: 'boolean' }, interpreter: { type: 'string' }, dns: { type: 'string' },
  }, USAGE);
  if (positionals.length === 0) throw new SandtraceError('USAGE', `analyze takes one sample file; usage: ${USAGE}`);
  noExtraArgs(positionals, 1, USAGE);
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'ebpf' && backend !== 'ptrace') throw new SandtraceError('USAGE', `--backend must be auto, ebpf or ptrace, not '${backend}'`);
  const timeout = numberFlag(values.timeout, 'timeout', 60, MAX_TIMEOUT_S);
  const dns = values.dns ?? 'sinkhole';
  if (dns !== 'sinkhole' && dns !== 'nxdomain') throw new SandtraceError('USAGE', `--dns must be sinkhole or nxdomain, not '${dns}'`);
  // a program inside the sandbox, so its path cannot be relative to anything of the host's
  if (values.interpreter !== undefined && !/^\/[^\0]*$/.test(values.interpreter)) {
    throw new SandtraceError('USAGE', `--interpreter takes the absolute path of a program inside the sandbox (/usr/bin/python3), not '${values.interpreter}'`);
  }
  // an earlier analysis or recording is never replaced without --force (report.json: in analyze())
  const overwrite = values.force === true;
  if (values.record) checkOutFile(values.record, { overwrite });
  // an image archive that is not one: an input error now, not a failed sandbox later
  if (values.image && !values.vm) (await import('../../sandbox/import.js')).checkArchiveFile(values.image);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const line = progressLine(process.stderr);
  try {
    const res = await analyze({
      sample: positionals[0] as string, args: sampleArgs, timeout,
      outDir: values.out ?? 'analysis', overwrite, backend,
      ...(values.image ? { image: values.image } : {}), ...(values.rules ? { rules: values.rules } : {}),
      ...(values.model ? { model: values.model } : {}), ...(values.record ? { record: values.record } : {}),
      ...(values.vm ? { vm: true } : {}), ...(values.interpreter !== undefined ? { interpreter: values.interpreter } : {}), dns,
      signal: controller.signal,
      onProgress: (p: { stage: Stage; events: number; elapsed: number }) =>
        line.update(`${p.stage.padEnd(10)} ${p.elapsed.toFixed(1).padStart(6)}s ${p.events.toLocaleString('en-US').padStart(11)} events`),
    });
    line.done();
    const r = res.report;
    if (values.json) {
      process.stdout.write(termSafeJson(JSON.stringify(r, null, 2)) + '\n');
    } else {
      const where = displayPath(res.reportPath);
      process.stdout.write(`verdict: ${r.verdict.label} (score ${r.verdict.score.toFixed(1)}/10), ${r.findings.length} finding(s), ` +
        `${r.processes.length} process(es), ${r.syscalls.total.toLocaleString('en-US')} syscalls, ${r.capture.lost} lost: ${where}\n`);
    }
    // the sample never ran: the report says why, and the exit status too (no verdict is not benign)
    const failed = r.verdict.label === 'unknown';
    if (!values.json || failed) {
      // messages quote the sample's paths and output: shown, never acted on by the terminal
      for (const e of r.analysis.errors) process.stderr.write(`sandtrace analyze: ${failed ? 'error' : 'warning'}: ${e.where ? `${termSafe(e.where)}: ` : ''}${termSafe(e.message)} [${termSafe(e.code)}]\n`);
    }
    // the user's own rule files: what was disabled or ignored in them (Falco prints these at load)
    // would otherwise be seen only in report.json
    const mine = (w: { where?: string }) => (values.rules ?? []).some((f) => w.where?.startsWith(`${f}:`));
    const ruleWarnings = values.json ? [] : r.analysis.warnings.filter(mine);
    // how the sample was started, when sandtrace chose an interpreter for it
    if (!values.json) for (const w of r.analysis.warnings.filter((x) => x.code === 'SAMPLE_INTERPRETED')) process.stderr.write(`sandtrace analyze: note: ${termSafe(w.message)}\n`);
    for (const w of ruleWarnings.slice(0, 10)) process.stderr.write(`sandtrace analyze: warning: ${termSafe(w.where)}: ${termSafe(w.message)} [${termSafe(w.code)}]\n`);
    if (ruleWarnings.length > 10) process.stderr.write(`sandtrace analyze: warning: ${ruleWarnings.length - 10} more about the rule files in report.json\n`);
    // the reason the sample did not run, not a rules or render problem reported beside it
    const why = r.analysis.errors.find((e) => e.where === 'sandbox' || e.where === 'capture') ?? r.analysis.errors[0];
    return failed ? exitCodeFor(why?.code ?? 'INTERNAL') : EXIT.ok;
  } finally {
    line.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
