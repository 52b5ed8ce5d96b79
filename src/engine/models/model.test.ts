import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAdfaFolder } from './adfa.js';
import { createAnomalyDetector, loadModel, saveModel, trainModelFile, trainProgramModel, ProgramModel } from './index.js';
import { AnomalyModel, calibratedThreshold } from './model.js';
import { monitor } from './monitor.js';
import type { TraceEvent } from '../../capture/events.js';
import { RecordingCollector, RecordingWriter, readTraces } from '../../capture/replay/index.js';
import { SemanticState } from '../../semantics/state.js';
import { isSandtraceError } from '../../errors.js';
import type { Finding } from '../types.js';
import { adfaDir, runCli } from './testutil.js';
import { unblocking } from '../../../test/helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-models-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));


test('VMM and STIDE on real normal traces: calibrated, saved, reloaded, robust to unknown calls', async () => {
  const dir = adfaDir();
  const all = (await readAdfaFolder(join(dir, 'Training_Data_Master'))).map((t) => t.calls);
  const train = all.filter((_, i) => i % 2 === 0).slice(0, 300);
  const heldOut = all.filter((_, i) => i % 2 === 1);
  for (const kind of ['vmm', 'stide'] as const) {
    const file = trainModelFile({ traces: train, source: 'adfa subset' }, { kind, abi: 'i386' });
    const g = file.global;
    assert.ok(g);
    assert.equal(g.kind, kind);
    assert.ok(g.calibration.threshold > 0, 'threshold calibrated');
    // every training trace is scored held-out once, a long one per piece of at most 1000 calls
    const pieces = train.reduce((a, t) => a + Math.max(1, Math.ceil(t.length / 1000)), 0);
    assert.ok(pieces > 300, 'the subset has traces longer than one calibration piece');
    assert.equal(g.calibration.heldOut, pieces);
    if (kind === 'vmm') assert.match(g.training.selection ?? '', /held-out bits\/call/);
    const path = join(tmp, `${kind}.model.json.gz`);
    await saveModel(path, file);
    const loaded = await loadModel(path);
    const m = loaded.forExe('/any/program');
    assert.ok(m, 'falls back to the global model');
    const direct = new ProgramModel(g);
    for (const t of heldOut.slice(0, 20)) assert.equal(m.score(t).score, direct.score(t).score);
    // false alarms on normal traces it never saw stay in the range of the target (1%), not 30%
    const far = heldOut.filter((t) => m.score(t).score > g.calibration.threshold).length / heldOut.length;
    assert.ok(far < 0.06, `${kind}: false-alarm rate on unseen normal traces ${far}`);
    // unknown syscalls are scored (as never seen), not crashed on, and raise the score
    const normal = train[0] as string[];
    const spliced = [...normal.slice(0, 40), 'no_such_call', 'syscall_999', 'no_such_call', 'syscall_999', ...normal.slice(40)];
    const s0 = m.score(normal);
    const s1 = m.score(spliced);
    assert.ok(s1.windowScore > s0.windowScore, `${kind}: ${s1.windowScore} > ${s0.windowScore}`);
    assert.ok(s1.windowStart <= 43 && s1.windowStart + s1.windowLength >= 41, 'worst window covers the unknown calls');
    assert.equal(m.score([]).score, 0);
  }
});

/** A deterministic pseudo-random source (mulberry32), so the fixture is the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shell-like service: one long main loop that varies a little, forking identical short children. */
function service(seed: number, loops: number): { main: string[]; children: string[][] } {
  const r = rng(seed);
  const main: string[] = ['execve', 'brk', 'mmap', 'openat', 'read', 'close'];
  const children: string[][] = [];
  for (let i = 0; i < loops; i++) {
    main.push('openat', 'read', r() < 0.3 ? 'read' : 'close', 'close', 'clone');
    if (r() < 0.2) main.push('rt_sigaction', 'rt_sigprocmask');
    main.push('wait4', r() < 0.5 ? 'rt_sigreturn' : 'wait4', 'rt_sigaction');
    children.push(['set_robust_list', 'rt_sigprocmask', 'rt_sigaction', 'rt_sigaction', 'close', 'dup2', 'close', 'execve']);
  }
  return { main, children };
}

test('a fork-heavy service: the unchanged main loop is not a false alarm, a changed one is flagged', () => {
  const learned = service(1, 600);
  const file = trainModelFile({ traces: [], byExe: new Map([['/bin/svc', [learned.main, ...learned.children]]]), source: 'fixture' }, {});
  const model = new ProgramModel(file.programs['/bin/svc']!);
  // the same service on another day: its main loop (whole life and every window) and its children stay quiet
  const again = service(2, 600);
  const main = model.score(again.main);
  assert.equal(model.isAnomalous(main), false, `main loop: score ${main.score} window ${main.windowScore} vs ${JSON.stringify(model.data.calibration)}`);
  assert.equal(again.children.filter((c) => model.isAnomalous(model.score(c))).length, 0, 'children');
  // the main loop starts opening sockets and running a shell: flagged
  const rogue = [...again.main.slice(0, 2000), ...Array.from({ length: 10 }, () => ['socket', 'connect', 'dup2', 'dup2', 'execve']).flat(), ...again.main.slice(2000)];
  assert.equal(model.isAnomalous(model.score(rogue)), true);
});

test('a program whose runs were all identical: one delivered signal is no alert, a different program is; a program seen in few processes uses the global thresholds', () => {
  const sleep = ['execve', 'brk', 'arch_prctl', 'set_tid_address', 'mmap', 'clock_nanosleep', 'exit_group'];
  const byExe = new Map<string, string[][]>([
    ['/bin/busybox:sleep', Array.from({ length: 50 }, () => [...sleep])],
    ['/bin/busybox:timeout', Array.from({ length: 3 }, () => ['execve', 'brk', 'rt_sigaction', 'fork', 'wait4', 'exit_group'])],
  ]);
  const file = trainModelFile({ traces: [], byExe, source: 'fixture' }, {});
  const m = new ProgramModel(file.programs['/bin/busybox:sleep']!);
  const c = m.data.calibration;
  assert.ok(c.threshold < 0.01, `held-out runs all identical: threshold ${c.threshold}`);
  assert.equal(c.minEvidence, 20);
  assert.ok(c.windowThreshold >= 1, 'a window needs at least a bit per call');
  const signalled = [...sleep.slice(0, 6), 'rt_sigreturn', 'clock_nanosleep', 'exit_group'];
  assert.equal(m.isAnomalous(m.score(signalled)), false, `${JSON.stringify(m.score(signalled))}`);
  const shell = ['execve', 'brk', 'socket', 'connect', 'dup2', 'dup2', 'dup2', 'execve', 'brk', 'open', 'read', 'write', 'exit_group'];
  assert.equal(m.isAnomalous(m.score(shell)), true);
  // three processes are too few to say what a rare deviation of timeout looks like
  assert.match(file.programs['/bin/busybox:timeout']!.calibration.method, /global model \(only 3 process\(es\)/);
  assert.equal(file.programs['/bin/busybox:timeout']!.calibration.threshold, file.global!.calibration.threshold);
});

test('model files: wrong content is MODEL_INVALID, absent is INPUT_MISSING; empty training is INPUT_EMPTY', async () => {
  const bad = join(tmp, 'bad.json');
  writeFileSync(bad, '{"format":"something-else"}');
  const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isSandtraceError(e) ? e.code : String(e)));
  assert.equal(await code(loadModel(bad)), 'MODEL_INVALID');
  writeFileSync(bad, 'not json at all');
  assert.equal(await code(loadModel(bad)), 'MODEL_INVALID');
  writeFileSync(bad, JSON.stringify({ format: 'sandtrace.model', version: 99, programs: {} }));
  assert.equal(await code(loadModel(bad)), 'MODEL_INVALID');
  assert.equal(await code(loadModel(join(tmp, 'absent.json'))), 'INPUT_MISSING');
  assert.equal(await code(Promise.resolve().then(() => trainProgramModel([[], []]))), 'INPUT_EMPTY');
});

test('a program seen too briefly to calibrate borrows the global thresholds instead of flagging everything', async () => {
  const dir = adfaDir();
  const some = (await readAdfaFolder(join(dir, 'Training_Data_Master'))).slice(0, 40).map((t) => t.calls);
  const file = trainModelFile({ traces: [], byExe: new Map([['/bin/busy', some], ['/bin/brief', [['read', 'write', 'close']]]]), source: 'test' });
  const brief = file.programs['/bin/brief'];
  const busy = file.programs['/bin/busy'];
  assert.ok(brief && busy && file.global);
  assert.match(brief.calibration.method, /global model/);
  assert.equal(brief.calibration.threshold, file.global.calibration.threshold);
  assert.match(busy.calibration.method, /cross-validated/);
  assert.ok(busy.calibration.threshold > 0);
  const m = new ProgramModel(brief);
  assert.equal(m.isAnomalous(m.score(['read', 'write', 'close'])), false, 'its own behaviour is normal');
});

test('a program seen too briefly whose own Markov model cannot reach the global thresholds it took is judged by the global model, and its deviation is flagged', async () => {
  const some = (await readAdfaFolder(join(adfaDir(), 'Training_Data_Master'))).slice(0, 40).map((t) => t.calls);
  const byExe = new Map([['/bin/busy', some], ['/bin/brief', [['read', 'write', 'close']]]]);
  // 200 calls this data never shows (ADFA-LD names calls by number)
  const odd = Array.from({ length: 200 }, (_, i) => ['ptrace', 'init_module', 'mount', 'setns'][i % 4]!);
  const vmm = new AnomalyModel(trainModelFile({ traces: [], byExe, source: 'test' }, { kind: 'vmm' }));
  const own = vmm.programs.get('/bin/brief')!;
  assert.ok(own.scorer.maxValue <= own.data.calibration.threshold, 'its own model could never alert');
  assert.equal(own.isAnomalous(own.score(odd)), false);
  assert.equal(vmm.judgedByGlobal('/bin/brief'), true);
  assert.equal(vmm.judgedByGlobal('/bin/busy'), false);
  const m = vmm.forExe('/bin/brief')!;
  assert.equal(m, vmm.global);
  assert.equal(m.isAnomalous(m.score(odd)), true, JSON.stringify(m.exceeded(m.score(odd))));
  assert.equal(m.isAnomalous(m.score(['read', 'write', 'close'])), false, 'its own run is normal');
  // STIDE's own model reaches any threshold below 1: it keeps it
  const stide = new AnomalyModel(trainModelFile({ traces: [], byExe, source: 'test' }, { kind: 'stide' }));
  assert.equal(stide.judgedByGlobal('/bin/brief'), false);
  assert.equal(stide.forExe('/bin/brief'), stide.programs.get('/bin/brief'));
});

/** strace -f of one shell command line into a log file. */
function strace(name: string, script: string, env: Record<string, string> = {}): string {
  const log = join(tmp, `${name}.strace`);
  const r = spawnSync('strace', ['-f', '-ttt', '-o', log, 'sh', '-c', script], { encoding: 'utf8', cwd: tmp, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
  assert.equal(r.status, 0, r.stderr);
  return log;
}

test('the anomaly detector flags the process that deviates from its program model (stide, vmm and mix), with the window as evidence', async () => {
  // the shell runs the same script both times; only what ls is asked to do differs
  const script = 'for i in 1 2 3 4 5 6; do cat /etc/hostname > /dev/null; ls $LSARGS $DIR > /dev/null; done';
  const normalEnv = { LSARGS: '', DIR: '/' };
  // 24 runs (70 ms each): the shell's calls interleave with its children's exits (SIGCHLD, wait4)
  // as the scheduler has it, and fewer runs left a normal run of the shell unlike all of them (with
  // eight, STIDE flagged one in 2 of 16 runs of this test; with 24, in none of 12)
  const logs = Array.from({ length: 24 }, (_, i) => strace(`n${i + 1}`, script, normalEnv));
  const byExe = new Map<string, string[][]>();
  for (const l of logs) {
    for (const t of (await readTraces(l)).traces) {
      if (t.exe === '' || t.calls.length === 0) continue;
      byExe.set(t.exe, [...(byExe.get(t.exe) ?? []), t.calls]);
    }
  }
  assert.ok(byExe.has('/usr/bin/ls') && byExe.has('/usr/bin/cat'));
  const { AnomalyModel } = await import('./model.js');
  const againLog = strace('n4', script, normalEnv);
  const devLog = strace('dev', script, { LSARGS: '-laR', DIR: '/etc/apt' });
  for (const kind of ['stide', 'vmm', 'mix'] as const) {
    const model = new AnomalyModel(trainModelFile({ traces: [], byExe, source: 'strace' }, { kind }));
    assert.equal(model.programs.get('/usr/bin/ls')?.data.kind, kind);

    const run = async (log: string) => {
      const semantics = new SemanticState({});
      const det = createAnomalyDetector(model);
      const c = new RecordingCollector(log);
      await c.start();
      const pids = new Map<number, string>();
      const seqOwner = new Map<number, number>();
      for await (const b of c.events()) {
        for (const ev of b) {
          const e = semantics.apply(ev);
          pids.set(e.proc.pid, e.proc.exe);
          seqOwner.set(ev.seq, ev.pid);
          det.onEvent(e);
        }
      }
      return { findings: det.finish(), pids, seqOwner };
    };

    // the same workload again: no anomaly findings
    const again = await run(againLog);
    assert.deepEqual(again.findings.filter((f) => f.rule !== 'model.unseen_program').map((f) => f.output), []);

    // ls suddenly lists a whole tree with details: its processes, and only they, are anomalous
    const dev = await run(devLog);
    const anomalies = dev.findings.filter((f: Finding) => f.source === 'model' && f.anomaly);
    assert.ok(anomalies.length >= 1, 'an anomaly finding');
    for (const f of anomalies) assert.equal(dev.pids.get(f.pid), '/usr/bin/ls', `only ls is flagged, got ${f.output}`);
    // a window of calls unlike ls's is found as it happens, whatever the scorer's unit (bits, or
    // STIDE's unseen windows: its evidence floor must stay within a window's reach)
    assert.ok(anomalies.some((a) => a.rule === 'model.anomalous_window'), `${kind}: ${anomalies.map((a) => a.output).join('; ')}`);
    const f = anomalies[0] as Finding;
    assert.ok(f.anomaly && f.anomaly.score > f.anomaly.threshold);
    assert.equal(f.anomaly?.model, model.programs.get('/usr/bin/ls')?.name);
    assert.ok(f.evidence.length > 0 && f.evidence.length <= 20);
    for (const ev of f.evidence) assert.equal(dev.seqOwner.get(ev.seq), f.pid, 'evidence events belong to the process');
    assert.deepEqual(f.anomaly?.window, f.evidence.map((e) => e.event));
  }
});

test('CLI: model train and score over imported traces; bad input is a one-line error', async () => {
  const log = strace('cli', 'cat /etc/hostname > /dev/null; ls / > /dev/null');
  const out = join(tmp, 'cli.model.json');
  const t = await runCli(['model', 'train', log, '--out', out, '--kind', 'stide', '--json']);
  assert.equal(t.code, 0, t.stderr);
  const info = JSON.parse(t.stdout);
  assert.equal(info.kind, 'stide');
  assert.equal(info.n, 6);
  assert.ok(info.programs >= 2);
  const s = await runCli(['model', 'score', out, log, '--json']);
  assert.equal(s.code, 0, s.stderr);
  const rows = JSON.parse(s.stdout).traces as { exe: string; anomalous: boolean; model: string }[];
  const cat = rows.find((r) => r.exe === '/usr/bin/cat');
  assert.ok(cat && cat.model.startsWith('/usr/bin/cat:'), 'scored with the program model');
  assert.equal(cat.anomalous, false, 'the training trace itself is normal');
  const bad = await runCli(['model', 'score', join(tmp, 'nope.json'), log]);
  assert.equal(bad.code, 4);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /INPUT_MISSING/);
  const mixOut = join(tmp, 'cli.mix.model.json');
  const tm = await runCli(['model', 'train', log, '--out', mixOut, '--kind', 'mix', '--json']);
  assert.equal(tm.code, 0, tm.stderr);
  const mixInfo = JSON.parse(tm.stdout);
  assert.equal(mixInfo.kind, 'mix');
  assert.equal(typeof mixInfo.lambda, 'number');
  const sm = await runCli(['model', 'score', mixOut, log, '--json']);
  assert.equal(sm.code, 0, sm.stderr);
  assert.ok((JSON.parse(sm.stdout).traces as { model: string }[]).some((r) => /mix-(kn|wb)-n\d\+nlm/.test(r.model)));
  const usage = await runCli(['model', 'train', log]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--out/);
});

test('calibratedThreshold: the higher of the quantiles by units and by calls', () => {
  // 200 short children that never surprise, one long main piece that does
  const units = [...Array.from({ length: 200 }, () => ({ score: 0, calls: 10 })), { score: 5, calls: 2000 }];
  // by units the long piece is 1 in 201 (inside 1%: threshold 0); by calls it holds half of them
  const t = calibratedThreshold(units, 0.01);
  assert.ok(t > 4.8 && t < 5, `threshold ${t}`);
  // the other way round: 3 of 103 short units score high, and a long quiet piece holds most calls
  const other = [...Array.from({ length: 100 }, () => ({ score: 0, calls: 10 })), ...Array.from({ length: 3 }, () => ({ score: 4, calls: 10 })), { score: 0, calls: 100_000 }];
  assert.ok(calibratedThreshold(other, 0.01) > 3, 'by units: 3% of processes would alarm at a lower threshold');
});

test('model files whose thresholds or settings would silently switch detection off are refused (MODEL_INVALID)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-bad-'));
  try {
    const good = trainModelFile({ traces: Array.from({ length: 12 }, () => ['read', 'write', 'read', 'close']), byExe: new Map(), source: 'test' }, { kind: 'stide' });
    const path = join(dir, 'm.json');
    await saveModel(path, good);
    await loadModel(path); // the good one loads
    const g = good.global!;
    for (const [what, bad] of [
      ['threshold Infinity', { ...g, calibration: { ...g.calibration, threshold: 1e999 } }],
      ['threshold -5', { ...g, calibration: { ...g.calibration, threshold: -5 } }],
      ['window threshold -5', { ...g, calibration: { ...g.calibration, windowThreshold: -5 } }],
      ['window 0', { ...g, calibration: { ...g.calibration, window: 0 } }],
      ["abi 'arm'", { ...g, abi: 'arm' }],
      ['n 0', { ...g, n: 0 }],
    ] as const) {
      // JSON has no Infinity: written as the number literal a hand-edited file would hold
      writeFileSync(path, JSON.stringify({ ...good, global: bad }).replace('"threshold":null', '"threshold":1e999'));
      await assert.rejects(loadModel(path), (e: unknown) => isSandtraceError(e) && e.code === 'MODEL_INVALID' && e.message.includes(what), what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ABI: a model judges only calls of the ABI it was trained on (the two tables name calls differently)

/** Events of one process that forks, execs /usr/bin/svc, makes `calls` (each of `abi`, or as given) and exits. */
function svcRun(calls: (string | [string, 'x86_64' | 'i386'])[]): TraceEvent[] {
  let seq = 0;
  const base = () => ({ seq: ++seq, ts: seq * 1000, pid: 50, tid: 50 });
  return [
    { ...base(), pid: 1, tid: 1, type: 'fork', childPid: 50, childTid: 50, thread: false },
    { ...base(), type: 'exec', exe: '/usr/bin/svc', argv: ['svc'] },
    ...calls.map((c): TraceEvent => {
      const [name, abi] = typeof c === 'string' ? [c, 'x86_64' as const] : c;
      return { ...base(), type: 'syscall', abi, nr: -1, name, args: [], ret: 0 };
    }),
    { ...base(), type: 'exit', code: 0, thread: false },
  ];
}

const SVC_X64 = ['brk', 'mmap', 'openat', 'read', 'fstat', 'close', 'socket', 'connect', 'write', 'read', 'close'];
const SVC_I386 = ['brk', 'mmap2', 'open', 'read', 'fstat64', 'close', 'socketcall', 'socketcall', 'write', 'read', 'close'];

function abiModel(abi: 'x86_64' | 'i386'): AnomalyModel {
  const traces = Array.from({ length: 12 }, () => (abi === 'i386' ? SVC_I386 : SVC_X64));
  return new AnomalyModel(trainModelFile({ traces: [], byExe: new Map([['/usr/bin/svc', traces]]), source: 'test' }, { kind: 'vmm', abi }), `${abi}.model.json`);
}

const modelInvalid = (...names: RegExp[]) => (e: unknown) =>
  isSandtraceError(e) && e.code === 'MODEL_INVALID' && names.every((n) => n.test(e.message));

test('a model is refused for a capture of the other ABI, naming both; calls of the other ABI inside a capture are scored, not refused', () => {
  // an i386 model (ADFA-LD numbering) for a live x86_64 capture (the detector's default) and the reverse
  assert.throws(() => createAnomalyDetector(abiModel('i386')), modelInvalid(/i386\.model\.json/, /trained on i386/, /x86_64 calls/));
  assert.throws(() => createAnomalyDetector(abiModel('i386'), { live: true }), modelInvalid(/live capture/, /i386/, /x86_64/));
  assert.throws(() => createAnomalyDetector(abiModel('x86_64'), { abi: 'i386' }), modelInvalid(/trained on x86_64/, /i386 calls/));
  // each model judges its own ABI's capture: the same program's normal run raises no anomaly
  for (const abi of ['x86_64', 'i386'] as const) {
    const det = createAnomalyDetector(abiModel(abi), { abi });
    const semantics = new SemanticState({});
    for (const ev of svcRun(abi === 'i386' ? SVC_I386 : SVC_X64)) det.onEvent(semantics.apply(ev));
    assert.deepEqual(det.finish().filter((f) => f.source === 'model').map((f) => f.rule), [], abi);
  }
  // an x86_64 capture in which a 64-bit program makes int 0x80 calls (the eBPF probe reports them
  // as i386): the model stays usable and those calls are scored like any call it never saw
  const det = createAnomalyDetector(abiModel('x86_64'));
  const semantics = new SemanticState({});
  const mixed = svcRun([...SVC_X64, ...Array.from({ length: 30 }, (): [string, 'i386'] => ['socketcall', 'i386'])]);
  for (const ev of mixed) det.onEvent(semantics.apply(ev));
  const found = det.finish().filter((f) => f.source === 'model' && f.anomaly);
  assert.ok(found.some((f) => f.anomaly?.window.includes('socketcall')), `the int 0x80 calls are what is anomalous: ${found.map((f) => f.output).join('; ')}`);
});

test('monitor refuses a model of the other ABI before it attaches', async () => {
  let started = false;
  const collector = {
    backend: 'ebpf' as const,
    start: async () => { started = true; },
    events: async function* () { /* nothing */ },
    stop: async () => undefined,
    stats: () => ({ backend: 'ebpf' as const, events: 0, lost: 0, parseErrors: 0, duration: 0, notes: [] }),
  };
  await assert.rejects(monitor({ collector, model: abiModel('i386') }), modelInvalid(/i386/, /x86_64/));
  assert.equal(started, false, 'the probe was never attached');
});

test('model files: an unknown file abi, or a program model of another abi than its file, is MODEL_INVALID', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-abi-'));
  try {
    const good = trainModelFile({ traces: [], byExe: new Map([['/usr/bin/svc', Array.from({ length: 6 }, () => SVC_X64)]]), source: 'test' }, { kind: 'stide' });
    const path = join(dir, 'm.json');
    writeFileSync(path, JSON.stringify({ ...good, abi: 'arm' }));
    await assert.rejects(loadModel(path), modelInvalid(/invalid abi 'arm'/));
    writeFileSync(path, JSON.stringify({ ...good, programs: { '/usr/bin/svc': { ...good.programs['/usr/bin/svc'], abi: 'i386' } } }));
    await assert.rejects(loadModel(path), modelInvalid(/\/usr\/bin\/svc is of abi i386, the file's is x86_64/));
    // a file from before the field: x86_64
    const { abi: _, ...old } = good;
    writeFileSync(path, JSON.stringify(old));
    assert.equal((await loadModel(path)).abi, 'x86_64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model file that is a FIFO (no writer) is refused by stat, never opened', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-fifo-'));
  const fifo = join(dir, 'model.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  try {
    await assert.rejects(unblocking(loadModel(fifo), fifo), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_UNREADABLE'
      && e.message === `model file ${fifo} is a FIFO, not a regular file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});


// Review findings: corrupt model files, n as a flag or a field, what decided a verdict, inputs
// cut short or with nothing to score, and outputs that would replace inputs.

/** A small model file (trained here, deterministic) over a handful of calls, of the kind asked. */
function smallModel(kind: 'vmm' | 'mix' | 'stide') {
  const traces = Array.from({ length: 12 }, (_, i) => ['openat', 'read', 'write', i % 2 ? 'read' : 'close', 'close', 'read', 'write']);
  return trainModelFile({ traces, source: 'test' }, { kind });
}

test('model files with a corrupt table, vocabulary, smoothing, kind, calibration or neural part are refused: MODEL_INVALID, one line naming the file and the field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-corrupt-'));
  try {
    const vmm = smallModel('vmm');
    const mix = smallModel('mix');
    const g = vmm.global!;
    const x = mix.global!;
    const nw = x.neural!;
    const [k0] = g.table[0]!;
    const names = Array.from({ length: 5000 }, (_, i) => `call${i}`);
    const cases: [string, unknown, RegExp][] = [
      ['a negative count (scored as NaN: detection off)', { ...vmm, global: { ...g, table: [[k0, -5], ...g.table.slice(1)] } }, /invalid table: entry 0 has count -5 \(counts are positive whole numbers\)/],
      ['a zero count', { ...vmm, global: { ...g, table: [[k0, 0], ...g.table.slice(1)] } }, /entry 0 has count 0/],
      ['a fractional count', { ...vmm, global: { ...g, table: [[k0, 1.5], ...g.table.slice(1)] } }, /entry 0 has count 1\.5/],
      ['a key outside the windows of n over the vocabulary', { ...vmm, global: { ...g, table: [[1e9, 1], ...g.table.slice(1)] } }, /entry 0 has key 1000000000, not a window of \d+ of the \d+ vocabulary names/],
      ['a key twice', { ...vmm, global: { ...g, table: [...g.table, g.table[0]] } }, new RegExp(`entry ${g.table.length} repeats key ${k0}`)],
      ['an entry that is no pair', { ...vmm, global: { ...g, table: [[k0, 1, 2]] } }, /entry 0 is not \[key, count\]/],
      ['an empty table', { ...vmm, global: { ...g, table: [] } }, /invalid table \(empty/],
      ['an unknown smoothing', { ...vmm, global: { ...g, smoothing: 'zz' } }, /invalid smoothing "zz" \(kn or wb\)/],
      ['a vocabulary of numbers', { ...vmm, global: { ...g, vocab: g.vocab.map((_, i) => i) } }, /invalid vocab entry 0 0 \(system call names are strings\)/],
      ['a name twice in the vocabulary', { ...vmm, global: { ...g, vocab: [g.vocab[0], g.vocab[0], ...g.vocab.slice(2)] } }, new RegExp(`vocab entry 1 "${g.vocab[0]}" \\(named twice\\)`)],
      ['an empty vocabulary', { ...vmm, global: { ...g, vocab: [] } }, /invalid vocab \[\]/],
      ['a Markov table relabelled STIDE', { ...vmm, kind: 'stide', global: { ...g, kind: 'stide' } }, /invalid smoothing "(kn|wb)" \(a STIDE model has none/],
      ['a STIDE threshold no fraction reaches', { ...vmm, kind: 'stide', global: { ...g, kind: 'stide', smoothing: undefined, calibration: { ...g.calibration, threshold: 4.5 } } }, /invalid threshold 4\.5 \(a fraction of unseen windows, 0 to 1\)/],
      ['n 17 (a file field, not a flag)', { ...vmm, global: { ...g, n: 17 } }, /invalid n 17 \(a whole number from 1 to 16\)/],
      ['an n too large for the vocabulary', { ...vmm, global: { ...g, n: 5, vocab: names } }, /invalid n 5 \(too large for a vocabulary of 5000 names: at most 4\)/],
      ['a window no calibration piece holds', { ...vmm, global: { ...g, calibration: { ...g.calibration, window: 1e12 } } }, /invalid window 1000000000000 \(1 to the calibration chunk, 1000\)/],
      ['a mix weight above 1', { ...mix, global: { ...x, lambda: 2 } }, /invalid lambda 2 /],
      ['neural weights of the wrong shape', { ...mix, global: { ...x, neural: { ...nw, w2: nw.w2.slice(1) } } }, new RegExp(`invalid neural w2 \\(${nw.w2.length - 1} numbers, the config makes it ${nw.w2.length}\\)`)],
      ['a neural weight beyond 32-bit floats', { ...mix, global: { ...x, neural: { ...nw, w1: [1e39, ...nw.w1.slice(1)] } } }, /invalid neural w1\[0\] 1e\+39 \(a finite number\)/],
      ['a neural vocabulary of another size', { ...mix, global: { ...x, neural: { ...nw, vocab: nw.vocab + 1 } } }, /invalid neural vocab/],
      ['no training record', { ...vmm, training: undefined }, /invalid training \(missing\)/],
      ['a model for the program ""', { ...vmm, programs: { '': g } }, /a model for the program ""/],
    ];
    const path = join(dir, 'm.json');
    await saveModel(path, vmm);
    await loadModel(path); // the good ones load
    await saveModel(path, mix);
    await loadModel(path);
    for (const [what, file, why] of cases) {
      writeFileSync(path, JSON.stringify(file));
      await assert.rejects(loadModel(path), (e: unknown) => isSandtraceError(e) && e.code === 'MODEL_INVALID'
        && e.message.startsWith(`${path}: `) && why.test(e.message) && !e.message.includes('\n'), what);
    }
    // at the CLI: exit 4, one line (a file's n is no usage error: no flag was given)
    writeFileSync(path, JSON.stringify({ ...vmm, global: { ...g, n: 17 } }));
    const r = await runCli(['model', 'score', path, path]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /^sandtrace model: .*m\.json: model for the global model has an invalid n 17 .*\[MODEL_INVALID\]\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a VMM or MIX model file whose threshold is above the most its model can score (the cap on a call's surprise) is refused, MODEL_INVALID in one line; trained files, whose brief programs borrow the global thresholds, still load", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-unreachable-'));
  try {
    const vmm = smallModel('vmm');
    const mix = smallModel('mix');
    const g = vmm.global!;
    const x = mix.global!;
    // the cap: a call never seen at all, under add-one counts over the training windows
    const cap = Math.log2(g.table.reduce((a, [, c]) => a + c, 0) + g.vocab.length + 2);
    const shown = String(Math.round(cap * 100) / 100).replace('.', '\\.');
    const path = join(dir, 'm.json');
    const load = (file: unknown) => { writeFileSync(path, JSON.stringify(file)); return loadModel(path); };
    const cases: [string, unknown, RegExp][] = [
      ['a trace threshold of 999 bits', { ...vmm, global: { ...g, calibration: { ...g.calibration, threshold: 999 } } },
        new RegExp(`model for the global model has an invalid threshold 999 \\(above ${shown} bits a call, the most this model can score: no trace would ever exceed it`)],
      ['a window threshold just above the cap', { ...vmm, global: { ...g, calibration: { ...g.calibration, windowThreshold: cap + 0.01 } } },
        /model for the global model has an invalid window threshold [\d.]+ \(above [\d.]+ bits a call, the most this model can score: no window would ever exceed it/],
      ["a program's model", { ...vmm, programs: { '/usr/bin/svc': { ...g, calibration: { ...g.calibration, threshold: cap + 1 } } } }, /model for \/usr\/bin\/svc has an invalid threshold/],
      // MIX: the Markov part keeps at least (1 - lambda) of a call's probability: cap + 1 bit at lambda 0.5
      ['a mix threshold above its bound', { ...mix, global: { ...x, lambda: 0.5, calibration: { ...x.calibration, threshold: cap + 1.5 } } }, /invalid threshold [\d.]+ \(above [\d.]+ bits a call/],
      // STIDE scores are fractions of unseen windows: refused above 1 (and below 0) already
      ['a STIDE threshold above 1', { ...vmm, kind: 'stide', global: { ...g, kind: 'stide', smoothing: undefined, calibration: { ...g.calibration, threshold: 1.5 } } }, /invalid threshold 1\.5 \(a fraction of unseen windows, 0 to 1\)/],
    ];
    for (const [what, file, why] of cases) {
      await assert.rejects(load(file), (e: unknown) => isSandtraceError(e) && e.code === 'MODEL_INVALID'
        && e.message.startsWith(`${path}: `) && why.test(e.message) && !e.message.includes('\n'), what);
    }
    // what scores can reach loads: a threshold at the cap itself (in-sample calibration can give one), a mix within its bound
    await load({ ...vmm, global: { ...g, calibration: { ...g.calibration, threshold: cap, windowThreshold: cap } } });
    await load({ ...mix, global: { ...x, lambda: 0.5, calibration: { ...x.calibration, threshold: cap + 0.5 } } });
    // a trained file: a program seen in one brief process takes the global thresholds, above what its own tiny model can score
    const r = rng(5);
    const names = Array.from({ length: 40 }, (_, i) => `call${i}`);
    const busy = Array.from({ length: 12 }, () => Array.from({ length: 200 }, () => names[Math.floor(r() * names.length)]!));
    const trained = trainModelFile({ traces: [], byExe: new Map([['/bin/busy', busy], ['/bin/brief', [['read', 'write', 'close']]]]), source: 'test' }, { kind: 'vmm' });
    const brief = trained.programs['/bin/brief']!;
    assert.match(brief.calibration.method, /global model/);
    assert.ok(brief.calibration.threshold > Math.log2(3 + 3 + 2), 'the borrowed threshold is above the brief model\'s cap');
    await saveModel(path, trained);
    assert.ok((await loadModel(path)).programs.has('/bin/brief'));
    // at the CLI: exit 4, one line
    writeFileSync(path, JSON.stringify({ ...vmm, global: { ...g, calibration: { ...g.calibration, threshold: 999 } } }));
    const c = await runCli(['model', 'info', path]);
    assert.equal(c.code, 4, c.stderr);
    assert.match(c.stderr, /^sandtrace model: .*m\.json: model for the global model has an invalid threshold 999 \(above .*\[MODEL_INVALID\]\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training: an n the data cannot take is a usage error that says which n it allows', async () => {
  const traces = Array.from({ length: 6 }, (_, t) => Array.from({ length: 100 }, (_, i) => `call${(i * 7 + t) % 100}`));
  const usage = (n: number) => (e: unknown) => isSandtraceError(e) && e.code === 'USAGE' && e.message.includes(`${n}`);
  assert.throws(() => trainProgramModel(traces, { kind: 'vmm', n: 12 }), usage(12));
  assert.throws(() => trainProgramModel(traces, { kind: 'vmm', n: 12 }), /n=12 is too large for the 100 system call names of this training data: it allows n up to 7/);
  assert.throws(() => trainProgramModel(traces, { kind: 'stide', n: 17 }), usage(17));
  assert.equal(trainProgramModel(traces, { kind: 'vmm', n: 7, smoothing: 'kn' }).n, 7);
  // at the CLI: exit 2 (ADFA-style numbers name 100 different x86_64 calls)
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-n-'));
  try {
    for (let t = 0; t < 6; t++) writeFileSync(join(dir, `UTD-${t}.txt`), Array.from({ length: 100 }, (_, i) => (i * 7 + t) % 100).join(' ') + '\n');
    const r = await runCli(['model', 'train', dir, '--n', '12', '--out', join(dir, 'm.json')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /it allows n up to 7 \[USAGE\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model score: an anomalous verdict says which threshold decided it (the window\'s, the trace\'s, or both), in text and JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-why-'));
  try {
    // x86_64 numbers as ADFA-style traces: 0 read, 1 write, 2 open, 3 close; 200.. never seen
    const cycle = (n: number) => Array.from({ length: n }, (_, i) => i % 4);
    const file = trainModelFile({ traces: Array.from({ length: 12 }, () => cycle(200).map((i) => ['read', 'write', 'open', 'close'][i]!)), source: 'test' }, { kind: 'vmm' });
    const g = file.global!;
    // thresholds set by hand: a mean of 10 bits, a window of 5
    const path = join(dir, 'm.json');
    writeFileSync(path, JSON.stringify({ ...file, global: { ...g, calibration: { ...g.calibration, threshold: 10, windowThreshold: 5, minEvidence: 20 } } }));
    const burst = Array.from({ length: 25 }, (_, i) => 200 + i);
    writeFileSync(join(dir, 'window.txt'), [...cycle(2000), ...burst].join(' ') + '\n');
    writeFileSync(join(dir, 'both.txt'), burst.join(' ') + '\n');
    const text = await runCli(['model', 'score', path, join(dir, 'window.txt'), join(dir, 'both.txt')]);
    assert.equal(text.code, 0, text.stderr);
    const [w, b] = text.stdout.split('\n');
    assert.match(w ?? '', /^ANOMALOUS window=[\d.]+ > 5: score=0\.\d+ threshold=10 calls=2025 .*window\.txt$/);
    assert.match(b ?? '', /^ANOMALOUS score=[\d.]+ > 10, window=[\d.]+ > 5: score=[\d.]+ threshold=10 calls=25 .*both\.txt$/);
    const json = await runCli(['model', 'score', path, join(dir, 'window.txt'), '--json']);
    const row = JSON.parse(json.stdout).traces[0] as { anomalous: boolean; anomalousBy: string[]; reason: string; score: number; threshold: number };
    assert.equal(row.anomalous, true);
    assert.deepEqual(row.anomalousBy, ['window']);
    assert.match(row.reason, /^window=[\d.]+ > 5$/);
    assert.ok(row.score < row.threshold, 'the trace score alone would say normal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model score and train: an input cut short or with bad lines gets one warning line; nothing to score is INPUT_EMPTY, as for training', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-cut-'));
  try {
    const model = join(dir, 'm.json');
    await saveModel(model, smallModel('vmm'));
    // a recording of a program making 300 calls, with its trailer; then cut in the middle
    const whole = join(dir, 'whole.events.gz');
    const events: TraceEvent[] = [{ type: 'exec', seq: 1, ts: 1000, pid: 7, tid: 7, exe: '/usr/bin/svc', argv: ['svc'] }];
    for (let i = 2; i <= 301; i++) events.push({ type: 'syscall', seq: i, ts: i * 1000, pid: 7, tid: 7, abi: 'x86_64', nr: 0, name: i % 3 ? 'read' : 'write', args: [3, i, 4096], ret: 0 });
    const w = await RecordingWriter.create(whole, { backend: 'ebpf', target: 'svc' });
    w.write(events);
    await w.close({ backend: 'ebpf', events: events.length, lost: 0, parseErrors: 0, duration: 1, notes: [] });
    const bytes = readFileSync(whole);
    const cut = join(dir, 'cut.events.gz');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const headerOnly = join(dir, 'header-only.events.gz');
    writeFileSync(headerOnly, gzipSync(gunzipSync(bytes).toString('utf8').split('\n')[0] + '\n'));
    const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.includes('warning'));

    let r = await runCli(['model', 'score', model, cut, whole]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(warnings(r.stderr), [`sandtrace model: warning: ${cut}: cut short: the file ends unexpectedly (unexpected end of file); scored what could be read`]);
    r = await runCli(['model', 'score', model, cut, '--json']);
    assert.deepEqual(JSON.parse(r.stdout).warnings.map((x: { path: string }) => x.path), [cut]);
    r = await runCli(['model', 'train', cut, '--out', join(dir, 'cut.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(warnings(r.stderr).length, 1);
    assert.match(r.stderr, /warning: .*cut\.events\.gz: cut short: the file ends unexpectedly .*; trained on what could be read/);

    // nothing to score: a recording of its header only, a recording read as `pid syscall` pairs
    for (const [args, why] of [
      [[headerOnly], /warning: .*header-only\.events\.gz: cut short: the recording has no trailer/],
      [[whole, '--format', 'pairs'], /warning: .*whole\.events\.gz: 303 bad line\(s\) skipped/],
    ] as const) {
      r = await runCli(['model', 'score', model, ...args]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /no system calls to score in .* \[INPUT_EMPTY\]\n$/);
      const t = await runCli(['model', 'train', ...args, '--out', join(dir, 'none.json')]);
      assert.equal(t.code, 4, t.stderr);
      assert.match(t.stderr, /\[INPUT_EMPTY\]\n$/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model train --out and eval --roc: an existing file is replaced only with --force; an input never is, not even with --force', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-model-out-'));
  try {
    const data = join(dir, 'data');
    mkdirSync(data);
    for (let t = 0; t < 6; t++) writeFileSync(join(data, `UTD-${t}.txt`), Array.from({ length: 60 }, (_, i) => (i * 3 + t) % 9).join(' ') + '\n');
    const first = join(data, 'UTD-0.txt');
    const before = readFileSync(first, 'utf8');
    linkSync(join(data, 'UTD-1.txt'), join(dir, 'linked.txt'));
    for (const out of [first, join(dir, 'linked.txt')]) {
      for (const force of [[], ['--force']]) {
        const r = await runCli(['model', 'train', data, '--out', out, ...force]);
        assert.equal(r.code, 4, r.stderr);
        assert.match(r.stderr, /^sandtrace model: cannot write .* \(--out\): it is (one of the inputs|the input .*UTD-1\.txt), which is never replaced, not even with --force \[OUTPUT_UNWRITABLE\]\n$/);
      }
    }
    assert.equal(readFileSync(first, 'utf8'), before, 'the training data is untouched');
    const model = join(dir, 'm.json');
    writeFileSync(model, 'an earlier model');
    let r = await runCli(['model', 'train', data, '--out', model]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /the file exists \(use --force to replace it\) \[OUTPUT_UNWRITABLE\]/);
    r = await runCli(['model', 'train', data, '--out', model, '--force']);
    assert.equal(r.code, 0, r.stderr);
    await loadModel(model);
    // eval --roc: refused before any evaluation
    const adfa = join(dir, 'adfa');
    mkdirSync(join(adfa, 'Training_Data_Master'), { recursive: true });
    writeFileSync(join(adfa, 'Training_Data_Master', 'UTD-0001.txt'), '1 2 3\n');
    r = await runCli(['eval', 'adfa-ld', adfa, '--roc', join(adfa, 'Training_Data_Master', 'UTD-0001.txt'), '--force']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /\(--roc\): it is one of the inputs, which is never replaced/);
    r = await runCli(['eval', 'adfa-ld', adfa, '--roc', model]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /the file exists \(use --force to replace it\) \[OUTPUT_UNWRITABLE\]/);
    for (const cmd of [['model', 'train'], ['eval', 'adfa-ld']]) {
      const h = await runCli([...cmd, '--help']);
      assert.match(h.stdout + h.stderr, /--force/, `${cmd.join(' ')} --help names --force`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a STIDE model whose held-out normal windows are all unseen says that its window alerts never fire: silentThresholds, and a warning from model train', async () => {
  const r = rng(7);
  const names = Array.from({ length: 60 }, (_, i) => `call${i}`);
  // every trace a random walk over 60 calls: no held-out 6-call window was seen in the other folds
  const random = Array.from({ length: 40 }, () => Array.from({ length: 200 }, () => names[Math.floor(r() * names.length)] as string));
  const noisy = new AnomalyModel(trainModelFile({ traces: random, source: 'random' }, { kind: 'stide' }));
  assert.deepEqual(noisy.silentThresholds().map((t) => [t.where, t.what, t.value, t.most]),
    [['the global model', 'threshold', 1, 1], ['the global model', 'window threshold', 1, 1]]);
  // the same loop over and over: thresholds below the most a model can score, nothing to say
  const loop = Array.from({ length: 40 }, () => Array.from({ length: 50 }, () => ['openat', 'read', 'close']).flat());
  for (const kind of ['stide', 'vmm'] as const) {
    assert.deepEqual(new AnomalyModel(trainModelFile({ traces: loop, source: 'loop' }, { kind })).silentThresholds(), [], kind);
  }

  const dir = join(tmp, 'silent');
  mkdirSync(dir, { recursive: true });
  random.forEach((t, i) => writeFileSync(join(dir, `UTD-${i}.txt`), t.map((c) => c.slice(4)).join(' ')));
  const ran = await runCli(['model', 'train', dir, '--out', join(tmp, 'silent.json'), '--kind', 'stide', '--format', 'adfa']);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stderr, /^sandtrace model train: warning: the global model: window threshold 1 is the most it can score \(every window unseen\): more than 1% of held-out normal windows score that much, so window alerts never fire/m);
  assert.equal(ran.stderr.trim().split('\n').length, 2, ran.stderr);
});
