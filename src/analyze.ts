// analyze(): one whole analysis of a sample. Sandbox -> capture -> semantics -> rules and
// models -> verdict -> report.json, report.html and the ATT&CK layer in the output directory.
import { randomBytes } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import type { Backend, CaptureStats, Collector } from './capture/collector.js';
import { SandtraceError } from './errors.js';
import type { Detector, Finding } from './engine/types.js';
import { runPipeline, type EventSink } from './pipeline.js';
import { ReportBuilder, type ReportContext } from './report/build.js';
import type { Report, ReportDiagnostic } from './report/schema.js';
import { inspectSample } from './sample.js';
import { checkTimeout, type FileChange, type Sandbox, type SandboxDns, type SandboxResult, type SandboxStartInfo } from './sandbox/types.js';
import { changeWarnings, DEFAULT_CHANGE_LIMITS } from './sandbox/changes.js';
import { SemanticState } from './semantics/state.js';
import { loadRules, createRuleDetector } from './engine/rules/index.js';
import { computeVerdict } from './engine/verdict.js';
import { renderOutputs } from './report/render.js';
import { clearAnalysis, makeOutDir, refuseExistingAnalysis, writeOutputFile } from './outpath.js';

export type Stage = 'preparing' | 'starting' | 'running' | 'collecting' | 'reporting' | 'done';

export interface AnalyzeOptions {
  sample: string;
  args?: string[];
  /** Seconds; default 60. */
  timeout?: number;
  outDir: string;
  /** false: refuse an outDir that already holds an analysis (report.json) instead of replacing it. Default true. */
  overwrite?: boolean;
  /** docker-save or OCI archive to use as the base image. */
  image?: string;
  backend?: 'auto' | 'ebpf' | 'ptrace';
  /** Extra (user) rule files, Falco syntax. A broken one is reported; the built-in pack still runs. */
  rules?: string[];
  /** Normal-behaviour model file for anomaly findings. */
  model?: string;
  /** Write the normalized event stream here (replayable with `sandtrace replay`). */
  record?: string;
  /** Run in a QEMU virtual machine instead of a container. */
  vm?: boolean;
  /**
   * Start the sample as `INTERPRETER SAMPLE ARGS...` (a path inside the sandbox), instead of as
   * sandtrace chooses from its type (sampleLaunch), refusals included.
   */
  interpreter?: string;
  /** How the container sandbox's DNS sinkhole answers: an address per name (default), or NXDOMAIN for every name. */
  dns?: 'sinkhole' | 'nxdomain';
  onProgress?: (p: { stage: Stage; events: number; elapsed: number }) => void;
  signal?: AbortSignal;
}

export interface AnalyzeResult {
  report: Report;
  outDir: string;
  reportPath: string;
  htmlPath: string | undefined;
}

/** The decoy credentials and escape syscalls of the sandbox, for the report's interpretation. */
interface SandboxFacts {
  denied: readonly string[];
  users: ReadonlyMap<number, string>;
  cwd: string;
  uidMap: (kernelUid: number) => number;
}

export async function analyze(opts: AnalyzeOptions): Promise<AnalyzeResult> {
  const t0 = Date.now();
  let stage: Stage = 'preparing';
  let events = 0;
  const progress = (s?: Stage) => {
    if (s) stage = s;
    opts.onProgress?.({ stage, events, elapsed: (Date.now() - t0) / 1000 });
  };
  const args = opts.args ?? [];
  const timeout = checkTimeout(opts.timeout ?? 60);
  const { info: sample, launch } = await inspectSample(opts.sample, args, opts.interpreter);
  // the inputs next (--rules, --model: a FIFO, an unreadable or wrong-ABI model), so that a bad
  // one leaves nothing behind, not even an empty output directory
  const errors: ReportDiagnostic[] = [];
  const warnings: ReportDiagnostic[] = [];
  if (launch) {
    warnings.push({ code: 'SAMPLE_INTERPRETED', message: `the sample was run as \`${[...launch.interpreter, sample.name].join(' ')}\`: ${launch.why}` });
  }
  // fd.sip.name: the sandbox's DNS sinkhole names the addresses it gave, before the sample uses them
  let dnsName: ((address: string) => string | undefined) | undefined;
  const detectors = await buildDetectors({ ...opts, dnsName: (a) => dnsName?.(a) }, errors, warnings);
  // a bad output directory is refused before anything starts
  const outDir = makeOutDir(resolve(opts.outDir));
  if (opts.overwrite === false) refuseExistingAnalysis(outDir);
  progress('preparing');

  const started = new Date();
  const id = `${started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  const runOpts = { ...opts, interpreter: sample.interpreter };
  const run = opts.vm ? await vmRun(runOpts, timeout, id) : await containerRun(runOpts, timeout, id);
  dnsName = run.sandbox.dnsName?.bind(run.sandbox);
  const semantics = new SemanticState({
    containerId: run.id, containerName: run.name, users: run.facts.users, initialCwd: run.facts.cwd,
  });
  const builder = new ReportBuilder(run.facts.denied);
  let sink: (EventSink & { close(stats?: CaptureStats, changes?: readonly FileChange[], dns?: SandboxDns): Promise<void> }) | undefined;
  let result: SandboxResult | undefined;
  let changes: FileChange[] = [];
  let stats: CaptureStats | undefined;
  let dns: SandboxDns | undefined;
  const droppedDir = join(outDir, 'dropped');
  const onAbort = () => void run.sandbox.destroy();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    progress('starting');
    await clearAnalysis(outDir); // what an analysis replaced by --force wrote
    const info = await run.sandbox.create();
    const collector = await run.collector(info);
    if (opts.record) {
      sink = await openRecording(opts.record, { target: sample.name, sample, backend: collector.backend, id, containerId: run.id, containerName: run.name, timeout, isolation: run.isolation, reason: run.reason, users: [...run.facts.users], cwd: run.facts.cwd });
    }
    await collector.start();
    const consuming = runPipeline({
      collector, semantics, report: builder, detectors, startAtFirstExec: true, ...(info.hiddenPid !== undefined ? { hidePid: info.hiddenPid } : {}),
      normalize: (ev) => {
        if (ev.type === 'exec' && ev.uid !== undefined) ev.uid = run.facts.uidMap(ev.uid);
      },
      ...(sink ? { sink } : {}),
      onProgress: (n) => {
        events = n;
        progress();
      },
    });
    // If consuming fails (a collector error), stop the sample instead of waiting for the timeout.
    consuming.catch(() => void run.sandbox.destroy());
    await run.sandbox.start();
    progress('running');
    result = await run.sandbox.wait({ paused: () => collector.pausedSeconds?.() ?? 0 });
    progress('collecting');
    await collector.stop();
    try {
      await consuming;
    } catch (e) {
      errors.push(diag(e, 'capture'));
    }
    stats = collector.stats();
    try {
      const list = await run.sandbox.changes(droppedDir);
      changes = list;
      // what the list's budgets left out, and where (the sandbox's own count when it gives one)
      const most = DEFAULT_CHANGE_LIMITS.maxEntries ?? Infinity;
      if (list.omitted) warnings.push(...changeWarnings(list.omitted));
      else if (changes.length >= most) warnings.push({ code: 'REPORT_LIMITED', message: `the sample changed more files than are listed: dropped and deleted files are ${most} of the changes found` });
    } catch (e) {
      errors.push(diag(e, 'changes'));
    }
  } catch (e) {
    if (opts.signal?.aborted) throw new SandtraceError('INTERNAL', 'analysis interrupted', { cause: e });
    // Environment failures (no root, image missing, probe cannot load) are the user's to fix: no report.
    if (e instanceof SandtraceError && ['NOT_ROOT', 'SANDBOX_IMAGE_MISSING', 'PROBE_BUILD_MISSING', 'PROBE_LOAD_FAILED', 'DEPENDENCY_MISSING', 'SETUP_INCOMPLETE', 'VM_KERNEL_MISSING', 'VM_UNSUPPORTED'].includes(e.code)) throw e;
    errors.push(diag(e, 'sandbox'));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    // what the sample looked up, whatever else failed
    dns = run.sandbox.dns?.();
    await sink?.close(stats, changes, dns).catch((e: unknown) => errors.push(diag(e, 'record')));
    try {
      await run.sandbox.destroy();
    } catch (e) {
      errors.push(diag(e, 'cleanup'));
    }
  }

  progress('reporting');
  // The pipeline starts at the sample's exec: none seen means the sample never ran (the sandbox
  // failed, or the file could not be executed), and no behaviour seen is no verdict.
  const sampleRan = events > 0;
  if (!sampleRan && !errors.some((e) => e.where === 'sandbox' || e.where === 'capture')) {
    const said = result?.console.trim().split('\n').pop()?.slice(0, 300);
    errors.push({
      code: 'SAMPLE_NOT_STARTED', where: 'sandbox',
      message: `the sample never started${result ? ` (exit status ${result.exitCode ?? `signal ${result.signal}`}${said ? `: ${said}` : ''})` : ''}`,
    });
  }
  if (result?.timedOut) warnings.push({ code: 'TIMEOUT', message: `the sample's processes were still running after ${timeout} s and were killed` });
  // Back-pressure pauses the sample; the sandbox gives that time back, up to the timeout again
  // (wait()). A sample that flooded the capture for longer ran less than its timeout: said.
  const paused = stats?.paused ?? 0;
  if (result?.timedOut && paused - timeout >= 0.1 * timeout) {
    warnings.push({ code: 'CAPTURE_PAUSED', message: `the sample was paused ${paused.toFixed(1)} s for the capture to keep up (it made events faster than they could be analysed) and got ${timeout} s of it back, so it ran about ${Math.max(0, 2 * timeout - paused).toFixed(1)} s of its ${timeout} s: what it would do later was not seen; a longer --timeout shows more` });
  }
  const out = await finishReport({
    builder, detectors, semantics, errors, warnings, outDir, sampleRan,
    context: {
      id, started, timeout, timedOut: result?.timedOut ?? false, isolation: run.isolation, sample,
      capture: stats ?? { backend: run.backend, events: 0, lost: 0, parseErrors: 0, duration: 0, notes: [] },
      captureReason: run.reason, backend: run.backend, changes, ...(dns ? { dns } : {}), copyPath: (p) => relative(outDir, p),
    },
  });
  progress('done');
  return out;
}

export interface FinishInput {
  builder: ReportBuilder;
  detectors: Detector[];
  semantics: SemanticState;
  errors: ReportDiagnostic[];
  warnings: ReportDiagnostic[];
  outDir: string;
  /** False when the sample never ran: no verdict can be given (label 'unknown'). Default true. */
  sampleRan?: boolean;
  context: Omit<ReportContext, 'ended' | 'processes' | 'findings' | 'verdict' | 'errors' | 'warnings'>;
}

/** Collects the detectors' findings, computes the verdict, and writes report.json and the rendered outputs. */
export async function finishReport(i: FinishInput): Promise<AnalyzeResult> {
  const { errors, warnings } = i;
  const findings: Finding[] = [];
  // the connections the sandbox caught, after the last event (rules of source session)
  const sessions = i.context.dns?.sessions ?? [];
  // and the names it asked the sinkhole about (rules of source dns)
  const queries = i.context.dns?.queries ?? [];
  for (const d of i.detectors) {
    try {
      if (sessions.length > 0) d.onSessions?.(sessions);
      if (queries.length > 0) d.onDns?.(queries);
      findings.push(...d.drain(), ...d.finish());
    } catch (e) {
      errors.push(diag(e, `detector ${d.name}`));
    }
  }
  findings.sort((a, b) => (a.evidence[0]?.seq ?? 0) - (b.evidence[0]?.seq ?? 0));
  if (i.context.capture.lost > 0) warnings.push({ code: 'EVENTS_LOST', message: `${i.context.capture.lost} events were lost by the capture` });
  const report = i.builder.build({
    ...i.context, ended: new Date(), processes: i.semantics.processes(), findings, verdict: i.sampleRan === false ? { score: 0, label: 'unknown' } : computeVerdict(findings), errors, warnings,
  });
  const reportPath = join(i.outDir, 'report.json');
  await writeOutputFile(reportPath, JSON.stringify(report, null, 2) + '\n');
  let htmlPath: string | undefined;
  try {
    const written = await renderOutputs(report, i.outDir);
    htmlPath = written.find((p) => p.endsWith('.html'));
  } catch (e) {
    report.analysis.errors.push(diag(e, 'render'));
    report.analysis.status = 'partial';
    await writeOutputFile(reportPath, JSON.stringify(report, null, 2) + '\n');
  }
  return { report, outDir: i.outDir, reportPath, htmlPath };
}

export function diag(e: unknown, where: string): ReportDiagnostic {
  if (e instanceof SandtraceError) return { code: e.code, message: e.message, where };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e), where };
}

/** `live`: the events are a live monitor's (processes seen only in part at both ends: see the anomaly detector). */
export async function buildDetectors(opts: Pick<AnalyzeOptions, 'rules' | 'model'> & { live?: boolean; dnsName?: (address: string) => string | undefined }, errors: ReportDiagnostic[], warnings: ReportDiagnostic[]): Promise<Detector[]> {
  // the built-in pack and the user's files, as replay and monitor load them: a user file that is
  // missing or wrong refuses the analysis before the sample runs (RULES_INVALID)
  const loaded = await loadRules(opts.rules ?? []);
  for (const d of loaded.diagnostics) {
    const entry = { code: d.code, message: d.rule ? `${d.rule}: ${d.message}` : d.message, where: `${d.file}:${d.line}` };
    // the pack's own errors; the user's warnings (Falco this engine does not support)
    if (d.severity === 'error') errors.push(entry);
    else if (opts.rules?.includes(d.file)) warnings.push(entry);
  }
  const detectors: Detector[] = [createRuleDetector(loaded.ruleset, opts.dnsName ? { dnsName: opts.dnsName } : {})];
  if (opts.model) {
    const { loadModel, createAnomalyDetector } = await import('./engine/models/index.js');
    detectors.push(createAnomalyDetector(await loadModel(opts.model), { live: opts.live ?? false }));
  }
  return detectors;
}

async function openRecording(path: string, meta: Record<string, unknown>): Promise<EventSink & { close(stats?: CaptureStats, changes?: readonly FileChange[], dns?: SandboxDns): Promise<void> }> {
  const { RecordingWriter } = await import('./capture/replay/index.js');
  return RecordingWriter.create(path, meta);
}

interface Run {
  id: string;
  name: string;
  sandbox: Sandbox;
  backend: Backend;
  reason: string;
  isolation: Report['analysis']['isolation'];
  facts: SandboxFacts;
  collector(info: SandboxStartInfo): Promise<Collector>;
}

/** The options, the interpreter as the sample's inspection chose it. */
type RunOptions = Omit<AnalyzeOptions, 'interpreter'> & { interpreter: string[] | undefined };

async function containerRun(opts: RunOptions, timeout: number, id: string): Promise<Run> {
  const { createSandbox, sandboxFacts } = await import('./sandbox/index.js');
  const { ID_SHIFT, ID_RANGE } = await import('./sandbox/config.js');
  const { chooseBackend } = await import('./capture/choose.js');
  const rootless = process.getuid?.() !== 0;
  const choice = rootless ? { backend: 'ptrace' as const, reason: 'not root: eBPF needs root; tracing with strace (ptrace)' } : await chooseBackend(opts.backend ?? 'auto');
  const sopts = {
    sample: opts.sample, args: opts.args ?? [], timeout, ...(opts.interpreter ? { interpreter: opts.interpreter } : {}),
    ...(opts.image ? { image: opts.image } : {}), ...(opts.dns ? { dns: opts.dns } : {}),
  };
  const facts = sandboxFacts();
  const uidMap = (u: number) => (u >= ID_SHIFT && u < ID_SHIFT + ID_RANGE ? u - ID_SHIFT : u);
  let sandbox: Sandbox;
  let isolation: Report['analysis']['isolation'];
  let runFacts: SandboxFacts;
  if (rootless) {
    const { createRootlessSandbox, rootlessGuarantees, rootlessAvailable, ROOTLESS_CWD } = await import('./sandbox/rootless/index.js');
    const ok = rootlessAvailable();
    if (!ok.ok) throw new SandtraceError('NOT_ROOT', `not root, and the rootless sandbox cannot run: ${ok.reason}`);
    sandbox = createRootlessSandbox(sopts);
    isolation = { kind: 'rootless', ...rootlessGuarantees() };
    // No seccomp deny list there, and the sample starts in the user's home.
    runFacts = { denied: [], users: facts.users, cwd: ROOTLESS_CWD, uidMap: (u) => u };
  } else {
    sandbox = createSandbox(sopts);
    isolation = { kind: 'container', ...facts.isolation };
    runFacts = { denied: facts.deniedSyscalls, users: facts.users, cwd: facts.cwd, uidMap };
  }
  return {
    id, name: `sandtrace-${id}`, sandbox, backend: choice.backend, reason: choice.reason, isolation, facts: runFacts,
    async collector(info) {
      if (choice.backend === 'ebpf') {
        const { EbpfCollector } = await import('./capture/ebpf/collector.js');
        return new EbpfCollector({ cgroupPath: info.cgroupPath, pidNamespaceOf: info.hostPid, ...(info.freezerPath ? { freezerPath: info.freezerPath } : {}) });
      }
      const { StraceCollector } = await import('./capture/ptrace/collector.js');
      return new StraceCollector({ attachPid: info.hostPid });
    },
  };
}

async function vmRun(opts: RunOptions, timeout: number, id: string): Promise<Run> {
  if (opts.image) throw new SandtraceError('USAGE', '--image applies to the container sandbox, not to --vm');
  const { createVmSandbox, vmIsolation } = await import('./vm/index.js');
  const sandbox = createVmSandbox({ sample: opts.sample, args: opts.args ?? [], timeout, ...(opts.interpreter ? { interpreter: opts.interpreter } : {}) });
  return {
    id, name: `sandtrace-vm-${id}`, sandbox, backend: 'vmi',
    reason: 'VM introspection: a QEMU TCG plugin reads syscalls and guest memory; nothing runs in the guest for monitoring',
    isolation: vmIsolation(),
    facts: { denied: [], users: new Map([[0, 'root']]), cwd: '/root', uidMap: (u) => u },
    async collector() {
      return sandbox.collector();
    },
  };
}
