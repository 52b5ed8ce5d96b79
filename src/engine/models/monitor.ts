// Live monitoring of a running workload (a cgroup) with the eBPF probe, outside the sandbox:
// either learn per-program models for a while, or report anomaly and rule findings as they happen.
import { execFile as execFileCb } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CaptureStats, Collector } from '../../capture/collector.js';
import { SemanticState } from '../../semantics/state.js';
import type { EnrichedEvent } from '../../semantics/types.js';
import { runPipeline } from '../../pipeline.js';
import { SandtraceError } from '../../errors.js';
import type { Detector, Finding } from '../types.js';
import { createAnomalyDetector } from './detector.js';
import { trainModelFile, type AnomalyModel, type ModelFileData, type TrainOptions } from './model.js';

const execFile = promisify(execFileCb);
export const UNIFIED_ROOT = '/sys/fs/cgroup/unified';

/** cgroup v2 directory of a host pid (the `0::` line of /proc/PID/cgroup). */
export function cgroupOfPid(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (e) {
    throw new SandtraceError('INPUT_MISSING', `no process ${pid}`, { cause: e, details: { pid } });
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new SandtraceError('INPUT_MISSING', `process ${pid} has no cgroup v2 membership`, { details: { pid } });
  const path = join(UNIFIED_ROOT, line.slice(3));
  if (!existsSync(join(path, 'cgroup.procs'))) throw new SandtraceError('INPUT_MISSING', `cgroup ${path} of process ${pid} is not a cgroup v2 directory`);
  return path;
}

/** cgroup of a runc container, via `runc state ID` (default root, then sandtrace's own runc root). */
export async function cgroupOfContainer(id: string, roots: readonly string[]): Promise<string> {
  const errors: string[] = [];
  for (const root of [undefined, ...roots]) {
    try {
      const { stdout } = await execFile('runc', [...(root ? ['--root', root] : []), 'state', id]);
      const st = JSON.parse(stdout) as { pid?: number; status?: string };
      if (!st.pid || st.status === 'stopped') throw new Error(`container is ${st.status ?? 'not running'}`);
      return cgroupOfPid(st.pid);
    } catch (e) {
      errors.push(((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n')[0] ?? '');
    }
  }
  throw new SandtraceError('INPUT_MISSING', `no running runc container '${id}' (${errors.filter(Boolean).join('; ')})`, { details: { id } });
}

/**
 * Processes already running at attach time never exec in front of us: name them from /proc.
 * Exec paths are resolved to the file they run, the name /proc gives.
 */
function fillExe(e: EnrichedEvent, hostPids: boolean, seen: Set<number>): void {
  if (hostPids && e.ev.type === 'exec') {
    // one key per program: /usr/bin/sh and /proc's /usr/bin/dash are the same file
    try {
      e.proc.exe = realpathSync(e.proc.exe);
    } catch {
      // gone already, or not a host path
    }
    return;
  }
  if (e.proc.exe !== '' || seen.has(e.proc.pid)) return;
  seen.add(e.proc.pid);
  if (!hostPids) return;
  try {
    const exe = readlinkSync(`/proc/${e.proc.pid}/exe`).replace(/ \(deleted\)$/, '');
    e.proc.exe = exe;
    if (e.proc.name === '') e.proc.name = exe.slice(exe.lastIndexOf('/') + 1, exe.lastIndexOf('/') + 16);
  } catch {
    // the process is gone already, or a kernel thread
  }
}

/** Collects each thread's calls, per program (a process that execs starts new traces). */
export class TraceLearner implements Detector {
  readonly name = 'learner';
  private readonly open = new Map<number, { pid: number; exe: string; calls: string[] }>();
  readonly byExe = new Map<string, string[][]>();
  calls = 0;

  onEvent(e: EnrichedEvent): void {
    const ev = e.ev;
    if (ev.type === 'exec' || (ev.type === 'exit' && !ev.thread)) {
      for (const [tid, t] of [...this.open]) if (t.pid === e.proc.pid) this.close(tid);
      return;
    }
    if (ev.type === 'exit') { this.close(ev.tid); return; }
    if (ev.type !== 'syscall') return;
    let t = this.open.get(ev.tid);
    if (t && (t.exe !== e.proc.exe || t.pid !== e.proc.pid)) { this.close(ev.tid); t = undefined; }
    if (!t) {
      t = { pid: e.proc.pid, exe: e.proc.exe, calls: [] };
      this.open.set(ev.tid, t);
    }
    t.calls.push(ev.name);
    this.calls++;
  }

  private close(tid: number): void {
    const t = this.open.get(tid);
    if (!t) return;
    this.open.delete(tid);
    if (t.calls.length === 0 || t.exe === '') return;
    const l = this.byExe.get(t.exe) ?? [];
    l.push(t.calls);
    this.byExe.set(t.exe, l);
  }

  drain(): Finding[] { return []; }
  finish(): Finding[] {
    for (const tid of [...this.open.keys()]) this.close(tid);
    return [];
  }
}

export interface MonitorOptions {
  collector: Collector;
  /** Whether pids are host pids (then /proc names programs that were running before attach). */
  hostPids?: boolean;
  /** Anomaly model (alert mode). */
  model?: AnomalyModel;
  /** Extra detectors (the rule engine). */
  detectors?: Detector[];
  /** Learn mode: stop after this many ms and train a model. */
  learnMs?: number;
  train?: TrainOptions;
  /** Every finding, as soon as it is drained. */
  onFinding?: (f: Finding, proc: EnrichedEvent['proc'] | undefined) => void;
  /** Stops monitoring (SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

export interface MonitorResult {
  events: number;
  findings: number;
  stats: CaptureStats;
  model?: ModelFileData;
  learned?: { programs: number; traces: number; calls: number };
}

/** Attach, run until the signal (or the learning time), detach; the collector is always stopped. */
export async function monitor(o: MonitorOptions): Promise<MonitorResult> {
  const semantics = new SemanticState({});
  const learner = o.learnMs !== undefined ? new TraceLearner() : undefined;
  const detectors: Detector[] = [];
  if (learner) detectors.push(learner);
  if (o.model) detectors.push(createAnomalyDetector(o.model));
  detectors.push(...(o.detectors ?? []));
  const seen = new Set<number>();
  const hostPids = o.hostPids ?? true;
  // fill in exe before the detectors see the event
  const naming: Detector = {
    name: 'naming', onEvent: (e) => fillExe(e, hostPids, seen), drain: () => [], finish: () => [],
  };
  let findings = 0;
  const emit = (fs: Finding[]) => {
    for (const f of fs) {
      findings++;
      o.onFinding?.(f, semantics.process(f.pid));
    }
  };

  await o.collector.start();
  let timer: NodeJS.Timeout | undefined;
  const stop = () => void o.collector.stop();
  o.signal?.addEventListener('abort', stop, { once: true });
  if (o.signal?.aborted) stop();
  if (o.learnMs !== undefined) timer = setTimeout(stop, o.learnMs);
  let events = 0;
  try {
    const r = await runPipeline({
      collector: o.collector, semantics, detectors: [naming, ...detectors],
      onFindings: emit,
    });
    events = r.events;
  } finally {
    if (timer) clearTimeout(timer);
    o.signal?.removeEventListener('abort', stop);
    await o.collector.stop();
  }
  for (const d of detectors) emit(d.finish());
  const result: MonitorResult = { events, findings, stats: o.collector.stats() };
  if (learner) {
    const traces = [...learner.byExe.values()].reduce((a, l) => a + l.length, 0);
    result.learned = { programs: learner.byExe.size, traces, calls: learner.calls };
    if (learner.calls === 0) throw new SandtraceError('INPUT_EMPTY', 'no system calls seen while learning: is the workload running in that cgroup?');
    result.model = trainModelFile({ traces: [], byExe: learner.byExe, source: 'monitor --learn' }, o.train ?? {});
  }
  return result;
}
