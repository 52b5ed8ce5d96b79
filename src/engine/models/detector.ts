// The anomaly detector: scores every process's calls against its program's normal-behaviour
// model (by exe, falling back to the global model) and reports processes whose most anomalous
// window or whole-life score exceeds the calibrated thresholds, with that window as evidence.
// Each thread is its own sequence (threads interleave arbitrarily); findings name the process.
import type { Detector, Evidence, Finding, Severity } from '../types.js';
import type { EnrichedEvent } from '../../semantics/types.js';
import type { Abi, TraceEvent } from '../../capture/events.js';
import { DEFAULTS, checkModelAbi, type AnomalyModel, type ProgramModel } from './model.js';
import { programKey } from '../../semantics/program.js';
import type { ScoreStream } from './scorers.js';

export interface AnomalyDetectorOptions {
  /** Calls a process must make before its whole-life score is judged (too few say nothing). Default 10. */
  minCalls?: number;
  /**
   * Report programs that have no model of their own when the model file was trained per program
   * (an operator's "never seen this program during learning"). Default true.
   */
  unseenPrograms?: boolean;
  /**
   * Live monitoring: processes are seen only in part at both ends. One whose fork or exec was not
   * seen was running before the probe attached: its first n-1 calls only give context, and it
   * gets no whole-life verdict. One still running when monitoring stops is judged on the life seen
   * only if that is at least a calibration piece long (a long-running service: its thresholds hold
   * per piece); a shorter prefix, such as a start-up cut short, is comparable to nothing the
   * thresholds were calibrated on. Window verdicts always apply. Default false: a sandbox run or
   * recording sees every process begin, and one still running at the end is judged on what it
   * did (the sandbox ends it at the timeout).
   */
  live?: boolean;
  /**
   * The ABI the capture's calls are named in: a model of another ABI is refused (MODEL_INVALID, see
   * checkModelAbi). Default x86_64, what every live backend captures here. A call of the other ABI
   * inside the capture (int 0x80 from a 64-bit program) is scored by its name like any call: one
   * the model never saw is the most surprising there is.
   */
  abi?: Abi;
}

/**
 * Processes whose program the capture could not name for sure (ExecEvent.exeUnverified: the exec
 * path led to another file by the time it was named): from that exec until the next, children
 * forked meanwhile included. They are judged by no program's model: the global one.
 */
export class UnverifiedPrograms {
  private readonly pids = new Set<number>();

  note(ev: TraceEvent): void {
    if (ev.type === 'exec') {
      if (ev.exeUnverified) this.pids.add(ev.pid);
      else this.pids.delete(ev.pid);
    } else if (ev.type === 'fork' && !ev.thread) {
      if (this.pids.has(ev.pid)) this.pids.add(ev.childPid);
      else this.pids.delete(ev.childPid);
    } else if (ev.type === 'exit' && !ev.thread) {
      this.pids.delete(ev.pid);
    }
  }

  has(pid: number): boolean {
    return this.pids.has(pid);
  }
}

interface Call { seq: number; name: string; value: number }

interface Segment {
  pid: number;
  tid: number;
  exe: string;
  model: ProgramModel;
  /** The modelled program whose model scores a program that has none: the one it is a copy of,
   *  or the one whose name it goes by. */
  lookalike?: { program: string; how: string };
  /** The program's name is unverified (UnverifiedPrograms): scored by the global model. */
  unverified: boolean;
  stream: ScoreStream;
  sum: number;
  count: number;
  ring: Call[];
  ringSum: number;
  bestSum: number;
  best: Call[];
  windowAlerted: boolean;
  /** Whether the segment's beginning was seen (whole-life scores need the whole life). */
  begun: boolean;
  /** Calls still to feed as context only: a process joined mid-life has no known beginning. */
  warm: number;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function severityFor(score: number, threshold: number): Severity {
  const r = threshold > 0 ? score / threshold : Infinity;
  if (r >= 3) return 'high';
  if (r >= 1.5) return 'medium';
  return 'low';
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function createAnomalyDetector(model: AnomalyModel, opts: AnomalyDetectorOptions = {}): Detector {
  checkModelAbi(model, opts.abi ?? 'x86_64', opts.live ? 'the live capture' : 'the capture');
  const minCalls = opts.minCalls ?? 10;
  const perProgram = model.programs.size > 0;
  const reportUnseen = (opts.unseenPrograms ?? true) && perProgram;
  const segments = new Map<number, Segment>();
  const unseenReported = new Set<string>();
  const unverified = new UnverifiedPrograms();
  const queue: Finding[] = [];
  // processes whose beginning was seen (forked or exec'd in view); others were caught mid-life
  const begun = new Set<number>();
  // processes the capture says it found mid-life (`running`): in any mode, no whole life seen
  const foundMidLife = new Set<number>();
  const live = opts.live ?? false;
  // modelled programs by file name, for programs that go by one (names two programs share: neither)
  const byName = new Map<string, string | null>();
  for (const key of model.programs.keys()) {
    if (!key.startsWith('/') || key.includes(':')) continue;
    const name = baseName(key);
    byName.set(name, byName.has(name) ? null : key);
  }

  /**
   * A program without a model of its own is scored against the model of the program it is or
   * pretends to be: the one it was copied from during the capture, else a modelled program whose
   * file name it has or goes by (argv[0], comm). A /tmp/sshd is judged as sshd is expected to behave.
   */
  const lookalike = (p: EnrichedEvent['proc']): { program: string; how: string } | undefined => {
    if (!perProgram) return undefined;
    if (p.exeCopiedFrom !== undefined) {
      const from = programKey({ exe: p.exeCopiedFrom, argv: p.argv, name: p.name });
      if (model.programs.has(from)) return { program: from, how: `a copy of ${p.exeCopiedFrom}` };
    }
    for (const name of [baseName(p.exe), baseName(p.argv[0] ?? ''), p.name]) {
      const program = name ? byName.get(name) : undefined;
      if (program) return { program, how: `named ${name}` };
    }
    return undefined;
  };

  const open = (e: EnrichedEvent): Segment | undefined => {
    const exe = programKey(e.proc);
    if (unverified.has(e.proc.pid)) {
      // whatever it is called, it is not shown to be that program: no program's model, no lookalike's
      const g = model.global;
      if (!g) return undefined;
      return start(e, exe, g, undefined, true);
    }
    const like = exe !== '' && !model.programs.has(exe) ? lookalike(e.proc) : undefined;
    const m = like ? model.forExe(like.program) : model.forExe(exe);
    if (reportUnseen && exe !== '' && !model.programs.has(exe) && !unseenReported.has(exe)) {
      unseenReported.add(exe);
      queue.push({
        rule: 'model.unseen_program',
        description: `program ${exe} was never seen while the normal-behaviour model was learned${like ? `; it is ${like.how} and is judged by ${like.program}'s model` : ''}`,
        severity: 'medium',
        attack: [],
        pid: e.proc.pid,
        evidence: [{ seq: e.ev.seq, pid: e.ev.pid, event: e.ev.type === 'syscall' ? e.ev.name : e.ev.type, fields: { 'proc.exe': exe, 'proc.name': e.proc.name, 'proc.pid': e.proc.pid } }],
        source: 'model',
        output: `Unseen program (proc.exe=${exe} proc.pid=${e.proc.pid} parent=${e.proc.parent?.exe ?? ''})`,
        confidence: 0.6,
        tags: ['anomaly', 'unseen-program'],
      });
    }
    if (!m) return undefined;
    return start(e, exe, m, like, false);
  };

  const start = (e: EnrichedEvent, exe: string, m: ProgramModel, like: Segment['lookalike'], unverifiedExe: boolean): Segment => {
    const s: Segment = {
      pid: e.proc.pid, tid: e.ev.tid, exe, model: m, ...(like ? { lookalike: like } : {}), unverified: unverifiedExe,
      stream: m.scorer.stream(), sum: 0, count: 0, ring: [], ringSum: 0, bestSum: -1, best: [], windowAlerted: false,
      begun: begun.has(e.proc.pid) || (!live && !foundMidLife.has(e.proc.pid)),
      warm: begun.has(e.proc.pid) || (!live && !foundMidLife.has(e.proc.pid)) ? 0 : Math.max(0, m.data.n - 1),
    };
    segments.set(e.ev.tid, s);
    return s;
  };

  const finding = (s: Segment, kind: 'window' | 'process', score: number, threshold: number): Finding => {
    const c = s.model.data.calibration;
    const evidence: Evidence[] = s.best.map((x) => ({ seq: x.seq, pid: s.pid, event: x.name, fields: { 'evt.type': x.name, surprise: round(x.value) } }));
    const like = s.lookalike ? ` (${s.exe}, ${s.lookalike.how})` : s.unverified ? ` (exec'd as ${s.exe}, unverified: judged by the global model)`
      : model.judgedByGlobal(s.exe) ? ' (seen in too few processes while the model was learned to calibrate its own: judged by the global model)' : '';
    const whose = s.lookalike?.program ?? (s.unverified ? '' : s.exe);
    const what = kind === 'window'
      ? `${s.best.length} consecutive calls unlike ${whose || 'this program'}'s normal behaviour${like}`
      : `system-call behaviour over the process's life unlike ${whose || 'the'} normal model${like}`;
    return {
      rule: kind === 'window' ? 'model.anomalous_window' : 'model.anomalous_process',
      description: what,
      severity: severityFor(score, threshold),
      attack: [],
      pid: s.pid,
      evidence,
      source: 'model',
      output: `Anomalous system calls (proc.exe=${s.exe || '?'} proc.pid=${s.pid} score=${round(score)} threshold=${round(threshold)} model=${s.model.name}${s.lookalike ? ` judged_as=${s.lookalike.program}` : ''}${s.unverified ? ' exe_unverified=true' : ''} calls=${s.count})`,
      confidence: Math.min(0.95, 0.5 + 0.15 * Math.log2(Math.max(1, score / Math.max(threshold, 1e-9)))),
      tags: ['anomaly', s.model.data.kind, `far=${c.far}`, ...(s.unverified ? ['exe-unverified'] : [])],
      anomaly: { score: round(score), threshold: round(threshold), window: s.best.map((x) => x.name), model: s.model.name },
    };
  };

  /** End of a process (or of its program, at exec): judge its whole-life score. */
  const close = (s: Segment): void => {
    segments.delete(s.tid);
    if (s.windowAlerted || s.count < minCalls || !s.begun) return;
    const c = s.model.data.calibration;
    const score = s.sum / s.count;
    if (score > c.threshold && s.sum >= (c.minEvidence ?? 0)) queue.push(finding(s, 'process', score, c.threshold));
  };

  return {
    name: 'anomaly',
    onEvent(e: EnrichedEvent): void {
      const ev = e.ev;
      unverified.note(ev);
      if (ev.type === 'exec' && ev.exeUnverified) {
        queue.push({
          rule: 'model.unverified_program',
          description: `by the time the program was named, ${ev.exe} led to another file than the one the kernel ran (swapped after the exec?): the process is judged by the global model, not by that name's`,
          severity: 'medium',
          attack: [],
          pid: e.proc.pid,
          evidence: [{ seq: ev.seq, pid: ev.pid, event: 'exec', fields: { 'proc.exe': ev.exe, 'proc.pid': e.proc.pid, 'exe.unverified': true } }],
          source: 'model',
          output: `Unverified program (proc.exe=${ev.exe} proc.pid=${e.proc.pid} parent=${e.proc.parent?.exe ?? ''} exe_unverified=true)`,
          confidence: 0.7,
          tags: ['anomaly', 'exe-unverified'],
        });
      }
      if (ev.running && !begun.has(ev.pid)) foundMidLife.add(ev.pid);
      if (ev.type === 'fork') { begun.add(ev.childPid); foundMidLife.delete(ev.childPid); return; }
      if (ev.type === 'exec') begun.add(e.proc.pid);
      if (ev.type === 'exec' || (ev.type === 'exit' && !ev.thread)) {
        // an exec ends every thread of the process; so does the process's exit
        for (const s of [...segments.values()]) if (s.pid === e.proc.pid) close(s);
        return;
      }
      if (ev.type === 'exit') {
        const s = segments.get(ev.tid);
        if (s) close(s);
        return;
      }
      if (ev.type !== 'syscall') return;
      let s = segments.get(ev.tid);
      if (s && (s.exe !== programKey(e.proc) || s.pid !== e.proc.pid)) { close(s); s = undefined; }
      s ??= open(e);
      if (!s) return;
      const win = s.model.data.calibration.window;
      const sym = s.model.vocab.id(ev.name, false);
      if (s.warm > 0) { s.warm--; s.stream.push(sym); return; }
      const value = s.stream.push(sym);
      s.sum += value;
      s.count++;
      s.ring.push({ seq: ev.seq, name: ev.name, value });
      s.ringSum += value;
      if (s.ring.length > win) s.ringSum -= (s.ring.shift() as Call).value;
      if (s.ringSum > s.bestSum + 1e-9 && (s.ring.length === win || s.best.length < win)) {
        s.bestSum = s.ringSum;
        s.best = [...s.ring];
      }
      const c = s.model.data.calibration;
      if (!s.windowAlerted && s.ring.length === win && s.ringSum / win > c.windowThreshold) {
        s.windowAlerted = true;
        queue.push(finding(s, 'window', s.ringSum / win, c.windowThreshold));
      }
    },
    drain(): Finding[] {
      return queue.splice(0, queue.length);
    },
    finish(): Finding[] {
      // still running at the end: judged on the life seen so far (thresholds hold per piece of a
      // long life too, see calibration); live, only a life of a piece or more (see `live`)
      for (const s of [...segments.values()]) {
        if (live && s.count < (s.model.data.calibration.chunk ?? DEFAULTS.chunk)) segments.delete(s.tid);
        else close(s);
      }
      return queue.splice(0, queue.length);
    },
  };
}
