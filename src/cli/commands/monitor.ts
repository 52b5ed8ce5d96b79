// `sandtrace monitor`: watch a running workload (cgroup, runc container or a process's cgroup)
// with the eBPF probe; learn its normal behaviour, or print one JSON alert per line until stopped.
import { integerFlag, noExtraArgs, parseFlags, numberFlag, splitDoubleDash } from '../args.js';
import type { Collector } from '../../capture/collector.js';
import { SandtraceError } from '../../errors.js';
import { checkOutFile } from '../../outpath.js';
import { EbpfCollector } from '../../capture/ebpf/collector.js';
import { cgroupOfContainer, cgroupOfPid, checkWatchable, monitor } from '../../engine/models/monitor.js';
import { checkModelAbi, loadModel, saveModel, MODEL_KINDS, type ModelKind } from '../../engine/models/index.js';
import type { Detector, Finding } from '../../engine/types.js';
import type { ProcessInfo } from '../../semantics/types.js';
import { termSafeJson } from '../terminal.js';

export const summary = 'monitor a running workload live with the eBPF probe: learn a model, or alert on anomalies and rules';

const USAGE = 'sandtrace monitor (--cgroup PATH | --container ID | --pid PID | --vm --kernel VMLINUZ) [--model MODEL] [--rules FILE...] [--no-builtin-rules] [--learn DURATION --out MODEL [--kind stide|vmm] [--n N] [--far RATE]] [--record FILE] [--force] [-- QEMU-ARGS...]';
export const usage = USAGE;

const MAX_TIMER_MS = 2 ** 31 - 1;

/** '30s', '5m', '1h', '500ms' or plain seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new SandtraceError('USAGE', `bad duration '${v}' (e.g. 30s, 5m, 1h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  if (ms <= 0) throw new SandtraceError('USAGE', `duration must be positive, got '${v}'`);
  // a timer longer than 2^31-1 ms fires at once: the longest a timer can wait is 24 days
  if (ms > MAX_TIMER_MS) throw new SandtraceError('USAGE', `duration '${v}' is longer than the longest supported (24 days)`);
  return ms;
}

function alertLine(f: Finding, proc: ProcessInfo | undefined): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    source: f.source,
    rule: f.rule,
    severity: f.severity,
    pid: f.pid,
    exe: proc?.exe ?? '',
    name: proc?.name ?? '',
    ppid: proc?.ppid ?? 0,
    parent: proc?.parent?.exe ?? '',
    // the exec path led to another file by the time it was named: exe is the path, not a verified program
    ...(f.tags?.includes('exe-unverified') ? { exe_unverified: true } : {}),
    description: f.description,
    ...(f.output !== undefined ? { output: f.output } : {}),
    ...(f.attack.length ? { attack: f.attack } : {}),
    ...(f.anomaly ? { anomaly: f.anomaly } : {}),
    evidence: f.evidence.slice(0, 32),
  });
}

export async function run(argv: string[]): Promise<number> {
  const [mine, qemuArgs] = splitDoubleDash(argv);
  const { values, positionals } = parseFlags(mine, {
    cgroup: { type: 'string' }, container: { type: 'string' }, pid: { type: 'string' }, vm: { type: 'boolean' }, kernel: { type: 'string' },
    model: { type: 'string' }, rules: { type: 'string', multiple: true }, learn: { type: 'string' }, out: { type: 'string' },
    kind: { type: 'string' }, n: { type: 'string' }, far: { type: 'string' }, record: { type: 'string' }, 'no-builtin-rules': { type: 'boolean' }, force: { type: 'boolean' },
  }, USAGE);
  noExtraArgs(positionals, 0, USAGE);
  const targets = [values.cgroup, values.container, values.pid, values.vm || undefined].filter((v) => v !== undefined);
  if (targets.length !== 1) throw new SandtraceError('USAGE', `give exactly one of --cgroup, --container, --pid, --vm; usage: ${USAGE}`);
  if (values.vm && (!values.kernel || qemuArgs.length === 0)) {
    throw new SandtraceError('USAGE', `--vm needs --kernel VMLINUZ (the kernel the guest boots) and the guest's QEMU arguments after --; usage: ${USAGE}`);
  }
  if (!values.vm && (values.kernel || qemuArgs.length)) throw new SandtraceError('USAGE', `--kernel and QEMU arguments go with --vm; usage: ${USAGE}`);
  const learnMs = values.learn === undefined ? undefined : parseDuration(values.learn);
  if (learnMs !== undefined && !values.out) throw new SandtraceError('USAGE', '--learn needs --out MODEL');
  if (learnMs !== undefined && values.model) throw new SandtraceError('USAGE', '--learn and --model are exclusive');
  // checked before learning starts, not after the whole duration; an earlier model and an earlier
  // recording are never replaced without --force (as model train, analyze and trace)
  if (values.out) checkOutFile(values.out, { overwrite: values.force === true });
  if (values.record) checkOutFile(values.record, { overwrite: values.force === true });
  const kind = (values.kind ?? 'vmm') as ModelKind;
  const far = values.far === undefined ? undefined : numberFlag(values.far, 'far', 0);
  if (far !== undefined && (far <= 0 || far >= 1)) throw new SandtraceError('USAGE', '--far is a rate between 0 and 1 (e.g. 0.001)');
  if (far !== undefined && learnMs === undefined) throw new SandtraceError('USAGE', '--far goes with --learn (it sets the thresholds of the model being learned)');
  if (!MODEL_KINDS.includes(kind)) throw new SandtraceError('USAGE', `--kind must be one of ${MODEL_KINDS.join(', ')}`);

  let cgroupPath = '';
  if (values.cgroup !== undefined) cgroupPath = values.cgroup;
  else if (values.pid !== undefined) cgroupPath = cgroupOfPid(integerFlag(values.pid, 'pid', 1));
  else if (values.container !== undefined) {
    const { runcRoot } = await import('../../sandbox/index.js');
    cgroupPath = await cgroupOfContainer(values.container as string, [runcRoot()]);
  }
  if (!values.vm) checkWatchable(cgroupPath);

  const model = values.model ? await loadModel(values.model) : undefined;
  if (model) checkModelAbi(model, 'x86_64', 'the live capture'); // before anything attaches
  const detectors: Detector[] = [];
  if (learnMs === undefined) {
    const rules = await import('../../engine/rules/index.js');
    const builtin = !values['no-builtin-rules'];
    if (builtin || values.rules?.length) {
      // as analyze and replay load them: a missing or wrong user file is refused (RULES_INVALID)
      const loaded = await rules.loadRules(values.rules ?? [], { builtin });
      for (const d of loaded.diagnostics.filter((x) => x.severity === 'error').slice(0, 10)) process.stderr.write(`monitor: rule pack: ${d.file}:${d.line}: ${d.message}\n`);
      detectors.push(rules.createRuleDetector(loaded.ruleset));
    }
    if (!model && detectors.length === 0) throw new SandtraceError('USAGE', `nothing to alert on: give --model or --rules; usage: ${USAGE}`);
  }

  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let collector: Collector;
    if (values.vm) {
      // Agentless: QEMU runs the user's guest with the capture plugin; pids are the guest's.
      const { monitorGuest } = await import('../../vm/index.js');
      collector = monitorGuest({ kernel: values.kernel as string, qemuArgs }).collector;
    } else {
      collector = new EbpfCollector({ cgroupPath });
    }
    const what = values.vm ? `a QEMU guest (kernel ${values.kernel})` : cgroupPath;
    process.stderr.write(`monitor: attaching to ${what}${learnMs !== undefined ? ` to learn for ${learnMs / 1000}s` : ''}\n`);
    const record = values.record
      ? await (await import('../../capture/replay/index.js')).RecordingWriter.create(values.record, { target: what, backend: collector.backend, live: true })
      : undefined;
    const r = await monitor({
      collector, hostPids: !values.vm, ...(record ? { record } : {}), ...(values.vm ? {} : { cgroupPath }),
      ...(values.container !== undefined ? { containerId: values.container as string } : {}),
      ...(model ? { model } : {}),
      detectors,
      ...(learnMs !== undefined ? { learnMs, train: { kind, ...(values.n ? { n: integerFlag(values.n, 'n', 6) } : {}), ...(far !== undefined ? { far } : {}) } } : {}),
      onFinding: (f, proc) => process.stdout.write(termSafeJson(alertLine(f, proc)) + '\n'),
      onAttached: () => process.stderr.write(`monitor: attached${learnMs !== undefined ? `, learning for ${learnMs / 1000}s` : ', watching until Ctrl-C'}\n`),
      signal: ac.signal,
    });
    if (r.model && values.out) {
      await saveModel(values.out, r.model);
      process.stderr.write(`monitor: learned ${r.learned?.programs} program(s) from ${r.learned?.traces} process trace(s), ${r.learned?.calls} calls; wrote ${values.out}\n`);
    }
    if (r.ended === 'cgroup-removed') process.stderr.write(`monitor: ${cgroupPath} was removed (or replaced by a new cgroup of that name, which the probe does not watch): nothing is left to watch\n`);
    process.stderr.write(`monitor: detached after ${r.events} events, ${r.findings} alert(s); lost ${r.stats.lost}${values.record ? `; recorded to ${values.record}` : ''}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
