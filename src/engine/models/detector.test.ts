// The anomaly detector's treatment of lives seen only in part: in a sandbox run or recording a
// process still running at the end is judged on what it did; live, the monitor's start and stop
// cut lives short, and only what the thresholds were calibrated on gets a whole-life verdict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TraceEvent } from '../../capture/events.js';
import { SemanticState } from '../../semantics/state.js';
import { createAnomalyDetector } from './detector.js';
import { AnomalyModel, trainModelFile } from './model.js';

const EXE = '/usr/sbin/svc';
// the program's normal life: start-up, then a loop of reads and writes
const NORMAL = ['brk', 'mmap', 'openat', 'fstat', 'close', ...Array.from({ length: 40 }, (_, i) => ['read', 'write', 'read', 'poll'][i % 4] as string), 'exit_group'];
// a life unlike it: calls the program never makes
const ODD = ['socket', 'connect', 'dup2', 'dup2', 'setuid', 'ptrace', 'mprotect', 'kill', 'socket', 'connect', 'dup2', 'setuid'];

function model(): AnomalyModel {
  const traces = Array.from({ length: 12 }, () => NORMAL);
  const m = new AnomalyModel(trainModelFile({ traces: [], byExe: new Map([[EXE, traces]]), source: 'test' }, { kind: 'vmm' }));
  // whole-life verdicts are what is checked here: no window ever alerts (an alerted process gets
  // no second, whole-life finding)
  const cal = m.programs.get(EXE)?.data.calibration;
  assert.ok(cal && cal.chunk === 1000, 'calibrated in pieces of 1000 calls');
  cal.windowThreshold = Infinity;
  return m;
}

/** Events of one process: optionally its fork and exec, then `calls`, optionally its exit. */
function life(pid: number, calls: string[], o: { begin: boolean; end: boolean }, seq0 = 0): TraceEvent[] {
  let seq = seq0;
  const base = () => ({ seq: ++seq, ts: seq * 1000, pid, tid: pid });
  const out: TraceEvent[] = [];
  if (o.begin) {
    out.push({ ...base(), pid: 1, tid: 1, type: 'fork', childPid: pid, childTid: pid, thread: false });
    out.push({ ...base(), type: 'exec', exe: EXE, argv: [EXE] });
  }
  for (const name of calls) out.push({ ...base(), type: 'syscall', abi: 'x86_64', nr: -1, name, args: [], ret: 0 });
  if (o.end) out.push({ ...base(), type: 'exit', code: 0, thread: false });
  return out;
}

function run(events: TraceEvent[], live: boolean, exeOf: (pid: number) => string = () => EXE): string[] {
  const semantics = new SemanticState({});
  const det = createAnomalyDetector(model(), { live });
  const rules: string[] = [];
  for (const ev of events) {
    const e = semantics.apply(ev);
    // a process caught mid-life is named from /proc by the monitor; here, by hand
    if (e.proc.exe === '') e.proc.exe = exeOf(e.proc.pid);
    det.onEvent(e);
    rules.push(...det.drain().map((f) => f.rule));
  }
  rules.push(...det.finish().map((f) => f.rule));
  return rules.filter((r) => r !== 'model.unseen_program');
}

const oddLife = [...NORMAL.slice(0, 5), ...ODD];
const longOddLife = [...NORMAL.slice(0, 5), ...Array.from({ length: 1000 }, (_, i) => ODD[i % ODD.length] as string)];

test('detector: a whole odd life is an anomalous process, live or not', () => {
  const events = life(100, oddLife, { begin: true, end: true });
  assert.deepEqual(run(events, false), ['model.anomalous_process']);
  assert.deepEqual(run(events, true), ['model.anomalous_process']);
  // and a normal life is not
  assert.deepEqual(run(life(100, NORMAL, { begin: true, end: true }), true), []);
});

test('detector: a process still running at the end is judged in a sandbox run; live, only after a calibration piece of calls', () => {
  const events = life(100, oddLife, { begin: true, end: false });
  assert.deepEqual(run(events, false), ['model.anomalous_process'], 'recording: judged on what it did');
  assert.deepEqual(run(events, true), [], 'live: 17 calls cut short by the monitor stopping are no life');
  // a long-running service's life seen for a piece or more is judged when monitoring stops
  assert.deepEqual(run(life(100, longOddLife, { begin: true, end: false }), true), ['model.anomalous_process']);
});

test('detector: a process running before monitoring began gets no whole-life verdict', () => {
  // neither fork nor exec seen: the process was there before the probe attached
  const events = life(100, oddLife, { begin: false, end: true });
  assert.deepEqual(run(events, true), []);
  assert.deepEqual(run(events, false), ['model.anomalous_process'], 'a recording sees every life begin');
});

/** Findings (rule and description) for one life of a program the model never saw. */
function disguised(exe: string, argv: string[], calls: string[], before: TraceEvent[] = []): { rule: string; description: string }[] {
  const semantics = new SemanticState({});
  const det = createAnomalyDetector(model(), { live: false });
  let seq = 1000;
  const base = () => ({ seq: ++seq, ts: seq * 1000, pid: 200, tid: 200 });
  const events: TraceEvent[] = [
    ...before,
    { ...base(), pid: 1, tid: 1, type: 'fork', childPid: 200, childTid: 200, thread: false },
    { ...base(), type: 'exec', exe, argv },
    ...calls.map((name): TraceEvent => ({ ...base(), type: 'syscall', abi: 'x86_64', nr: -1, name, args: [], ret: 0 })),
    { ...base(), type: 'exit', code: 0, thread: false },
  ];
  const out: { rule: string; description: string }[] = [];
  for (const ev of events) {
    det.onEvent(semantics.apply(ev));
    out.push(...det.drain());
  }
  out.push(...det.finish());
  return out.map((f) => ({ rule: f.rule, description: f.description }));
}

test('detector: a program without a model is judged by the model of the program it goes by the name of', () => {
  // /tmp/svc behaving like svc: unseen, but nothing anomalous against svc's model
  const same = disguised('/tmp/svc', ['svc'], NORMAL);
  assert.deepEqual(same.map((f) => f.rule), ['model.unseen_program']);
  assert.match(same[0]!.description, /named svc and is judged by \/usr\/sbin\/svc's model/);
  // /tmp/svc, or a binary run as `exec -a svc`, behaving otherwise: anomalous against svc's model
  for (const [exe, argv] of [['/tmp/svc', ['svc']], ['/tmp/x', ['svc']]] as const) {
    const odd = disguised(exe, [...argv], oddLife);
    assert.deepEqual(odd.map((f) => f.rule), ['model.unseen_program', 'model.anomalous_process'], exe);
    assert.match(odd[1]!.description, /unlike \/usr\/sbin\/svc normal model \(\/tmp\/\w+, named svc\)/);
  }
  // a name no modelled program has: the global model (trained on nothing but svc here too), so
  // the finding does not claim to judge it as svc
  const other = disguised('/tmp/y', ['y'], oddLife);
  assert.ok(other.every((f) => !/judged by|named/.test(f.description)), JSON.stringify(other));
});

test('detector: a copy of a modelled program made during the capture is judged by that program\'s model', () => {
  // cp /usr/sbin/svc /tmp/update, as the semantics sees it
  let seq = 0;
  const sc = (name: string, args: number[], ret: number, extra: object = {}): TraceEvent =>
    ({ seq: ++seq, ts: seq * 1000, pid: 1, tid: 1, type: 'syscall', abi: 'x86_64', nr: -1, name, args, ret, ...extra });
  const copy = [
    sc('openat', [-100, 0, 0], 3, { path: EXE }), sc('openat', [-100, 0, 0o1101], 4, { path: '/tmp/update' }),
    sc('read', [3, 0, 4096], 4096), sc('write', [4, 0, 4096], 4096),
  ];
  const f = disguised('/tmp/update', ['update'], oddLife, copy);
  assert.deepEqual(f.map((x) => x.rule), ['model.unseen_program', 'model.anomalous_process']);
  assert.match(f[0]!.description, /a copy of \/usr\/sbin\/svc and is judged by \/usr\/sbin\/svc's model/);
});
