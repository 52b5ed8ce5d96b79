import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EbpfCollector } from '../../capture/ebpf/collector.js';
import { makeCgroup, runInCgroup } from '../../capture/ebpf/testutil.js';
import { cgroupOfPid, ExecNamer, monitor, procTty, resolveInRoot, cgroup2Root, TraceLearner, type MonitorResult } from './monitor.js';
import type { ExecEvent, TraceEvent } from '../../capture/events.js';
import { AnomalyModel, loadModel, saveModel, trainModelFile } from './model.js';
import { createAnomalyDetector } from './detector.js';
import { SemanticState } from '../../semantics/state.js';
import type { Finding } from '../types.js';
import type { ProcessInfo } from '../../semantics/types.js';
import { runCli } from './testutil.js';
import { hierarchies } from '../../sandbox/cgroups.js';

// A service-like loop: reads a file and lists a directory; the deviant copy, half-way, opens a
// TCP socket and spawns a shell (the "compromised server" case).
const PYTHON = '/usr/bin/python3';
const LOOP = (deviant: boolean) => `${PYTHON} -c '
import os, time
print(os.getpid(), flush=True)
for i in range(20):
    open("/etc/hostname").read()
    os.listdir("/tmp")
    ${deviant ? 'if i == 10:\n        import socket\n        s = socket.socket()\n        s.connect_ex(("127.0.0.1", 9))\n        s.close()\n        os.system("id > /dev/null")' : 'pass'}
    time.sleep(0.02)
'`;

interface Alert { f: Finding; proc: ProcessInfo | undefined }

/** Monitor the cgroup while `work` runs, then stop as an operator's Ctrl-C would. */
async function watch(cg: string, opts: { model?: AnomalyModel; learn?: boolean }, work: () => Promise<void>): Promise<MonitorResult & { alerts: Alert[] }> {
  const alerts: Alert[] = [];
  const ac = new AbortController();
  const collector = new EbpfCollector({ cgroupPath: cg });
  let attached!: () => void;
  const ready = new Promise<void>((r) => { attached = r; });
  const running = monitor({
    collector, ...(opts.model ? { model: opts.model } : {}), ...(opts.learn ? { learnMs: 600_000 } : {}),
    onFinding: (f, proc) => alerts.push({ f, proc }), signal: ac.signal, onAttached: attached,
  });
  // the workload starts once the probe is attached (under load that can take a while)
  await Promise.race([ready, running.then(() => { throw new Error('monitor ended before attaching'); })]);
  try {
    await work();
  } finally {
    ac.abort();
  }
  return { ...(await running), alerts };
}

test('monitor: learns a live workload, then alerts on the process that deviates', { timeout: 120_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('the monitor test needs root (eBPF)');
  if (!existsSync(PYTHON)) assert.fail(`the monitor test needs ${PYTHON} (Debian python3)`);
  const cg = makeCgroup('monitor');
  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-monitor-'));
  try {
    const learned = await watch(cg.path, { learn: true }, async () => {
      for (let i = 0; i < 10; i++) assert.equal((await runInCgroup(cg.path, LOOP(false))).code, 0);
      // a program that re-execs itself through /proc/self/exe (as busybox does)
      const reexec = `${PYTHON} -c 'import os; os.execv("/proc/self/exe", ["python3", "-c", "open(\\"/etc/hostname\\").read()"])'`;
      assert.equal((await runInCgroup(cg.path, reexec)).code, 0);
    });
    assert.ok(learned.model, 'a model was learned');
    const python = realpathSync(PYTHON);
    assert.ok(learned.model.programs[python], `a model for ${python} among ${Object.keys(learned.model.programs).join(', ')}`);
    // /proc/self/exe names the file the process runs, not the monitor's own binary
    const names = Object.keys(learned.model.programs);
    assert.ok(!names.includes(realpathSync(process.execPath)) && !names.some((n) => n.startsWith('/proc/')), names.join(', '));
    assert.ok((learned.learned?.traces ?? 0) >= 10);
    const path = join(tmp, 'live.model.json.gz');
    await saveModel(path, learned.model);
    const model = await loadModel(path);

    let normalPid = 0;
    let deviantPid = 0;
    const watched = await watch(cg.path, { model }, async () => {
      const n = await runInCgroup(cg.path, LOOP(false));
      normalPid = Number(n.stdout.trim());
      const d = await runInCgroup(cg.path, LOOP(true));
      deviantPid = Number(d.stdout.trim());
      assert.equal(d.code, 0);
    });
    assert.ok(normalPid > 0 && deviantPid > 0);
    const summary = watched.alerts.map((a) => `${a.f.rule} pid=${a.f.pid} exe=${a.proc?.exe}`);
    // the normal run raises nothing; the deviant python process itself is named by an anomaly alert
    assert.deepEqual(watched.alerts.filter((a) => a.f.pid === normalPid).map((a) => a.f.rule), [], summary.join('\n'));
    const own = watched.alerts.find((a) => a.f.pid === deviantPid && a.f.anomaly);
    assert.ok(own, `an anomaly alert for the deviant python (pid ${deviantPid}):\n${summary.join('\n')}`);
    assert.equal(own.proc?.exe, python);
    assert.ok(own.f.anomaly && own.f.anomaly.score > own.f.anomaly.threshold);
    assert.ok(own.f.evidence.every((e) => e.pid === deviantPid));
    // and the shell it spawned is named too, as a child of that python
    const shell = watched.alerts.find((a) => a.proc?.parent?.pid === deviantPid && /sh$|dash$/.test(a.proc.exe));
    assert.ok(shell, `an alert for the spawned shell:\n${summary.join('\n')}`);
    assert.equal(watched.stats.lost, 0);
  } finally {
    await cg.remove();
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** Calls `then` once the monitor CLI says on stderr that the probe is attached. */
function whenAttached(child: ReturnType<typeof spawn>, then: () => void): void {
  let err = '';
  const onData = (d: Buffer) => {
    err += d.toString();
    if (/monitor: attached/.test(err)) {
      child.stderr?.off('data', onData);
      then();
    }
  };
  child.stderr?.on('data', onData);
}

/**
 * A monitor of the cgroup with no detectors, once its probe is attached; no signal will stop it.
 * (Wrapped: an async function returning the promise itself would wait for it to settle.)
 */
async function attachedMonitor(cgroupPath: string): Promise<{ running: Promise<MonitorResult> }> {
  let attached!: () => void;
  const ready = new Promise<void>((r) => { attached = r; });
  const running = monitor({ collector: new EbpfCollector({ cgroupPath }), cgroupPath, detectors: [], onAttached: attached });
  await Promise.race([ready, running.then(() => { throw new Error('monitor ended before attaching'); })]);
  return { running };
}

test('monitor: ends by itself when the watched cgroup is removed, instead of watching nothing forever', { timeout: 60_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('the monitor test needs root (eBPF)');
  const cg = makeCgroup('monitor-gone');
  let removed = false;
  try {
    const { running } = await attachedMonitor(cg.path);
    assert.equal((await runInCgroup(cg.path, 'true')).code, 0);
    await cg.remove();
    removed = true;
    // no signal is ever sent: only the removal can end it (a regression times the test out)
    const r = await running;
    assert.equal(r.ended, 'cgroup-removed');
    assert.ok(r.events > 0, 'the workload run before the removal was seen');
  } finally {
    if (!removed) await cg.remove();
  }
});

test('monitor: a cgroup removed and made again under the same name (a restarted service) ends the watch too', { timeout: 60_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('the monitor test needs root (eBPF)');
  const cg = makeCgroup('monitor-again');
  try {
    const { running } = await attachedMonitor(cg.path);
    // gone and back well within one poll: the path exists whenever it is looked at
    rmdirSync(cg.path);
    mkdirSync(cg.path);
    const r = await running;
    assert.equal(r.ended, 'cgroup-removed');
  } finally {
    await cg.remove();
  }
});

test('monitor CLI: a cgroup v1 directory is refused up front (the probe filters by cgroup v2 only)', { timeout: 30_000 }, async (t) => {
  const v1 = hierarchies().find((h) => h.version === 1);
  if (!v1) { t.skip('no cgroup v1 hierarchy on this host'); return; }
  const r = await runCli(['monitor', '--cgroup', v1.mount, '--model', 'x']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /is not in the cgroup v2 hierarchy \(mounted at /);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('monitor CLI: usage errors are one line, and SIGINT detaches cleanly with exit 0', { timeout: 60_000 }, async () => {
  const noTarget = await runCli(['monitor', '--model', 'x']);
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /exactly one of --cgroup, --container, --pid/);
  const noOut = await runCli(['monitor', '--pid', String(process.pid), '--learn', '5s']);
  assert.equal(noOut.code, 2);
  // a pid is a whole number, an extra argument is named, an earlier recording is kept without --force
  const frac = await runCli(['monitor', '--pid', '1.5', '--model', 'x']);
  assert.equal(frac.code, 2, frac.stderr);
  assert.match(frac.stderr, /--pid needs a positive whole number, got '1\.5'/);
  const extra = await runCli(['monitor', '--cgroup', '/nonexistent', 'stray', '--model', 'x']);
  assert.equal(extra.code, 2, extra.stderr);
  assert.match(extra.stderr, /unexpected argument 'stray'/);
  const recDir = mkdtempSync(join(tmpdir(), 'sandtrace-monitor-rec-'));
  try {
    const earlier = join(recDir, 'earlier.jsonl.gz');
    writeFileSync(earlier, 'an earlier recording');
    const kept = await runCli(['monitor', '--cgroup', '/nonexistent', '--model', 'x', '--record', earlier]);
    assert.equal(kept.code, 4, kept.stderr);
    assert.match(kept.stderr, /the file exists \(use --force to replace it\)/);
    assert.equal(readFileSync(earlier, 'utf8'), 'an earlier recording');
  } finally {
    rmSync(recDir, { recursive: true, force: true });
  }
  // the cgroup sandtrace itself runs in (here, or the host's root one) is refused: sandtrace would
  // watch its own work, or the whole host
  const own = cgroupOfPid(process.pid);
  for (const target of [['--cgroup', own], ['--pid', String(process.pid)], ['--cgroup', cgroup2Root()]]) {
    const r = await runCli(['monitor', ...target, '--model', 'x']);
    assert.equal(r.code, 2, `${target.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /is the root cgroup: watching it would watch the whole host|sandtrace itself runs in/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  const cg = makeCgroup('monitor-cli');
  try {
    const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-monitor-'));
    const out = join(tmp, 'm.json');
    // learn for a long time, interrupted by SIGINT: nothing was seen, which is said in one line
    const r = await runCli(['monitor', '--cgroup', cg.path, '--learn', '10m', '--out', out], (child) => {
      setTimeout(() => child.kill('SIGINT'), 3000);
    });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /no system calls seen while learning/);
    // learn a python loop for a while, then watch the deviant loop: one JSON alert per line, with
    // anomaly findings and rule findings (python spawning a shell), and SIGINT ends it with exit 0
    const learnedPath = join(tmp, 'w.json');
    let work: Promise<void> = Promise.resolve();
    const recorded = join(tmp, 'learn.jsonl.gz');
    const l = await runCli(['monitor', '--cgroup', cg.path, '--learn', '6s', '--out', learnedPath, '--record', recorded], (child) => whenAttached(child, () => {
      work = (async () => { for (let i = 0; i < 3; i++) await runInCgroup(cg.path, LOOP(false)); })();
    }));
    await work;
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stderr, /learned \d+ program/);
    // what was watched is recorded with programs named as the monitor named them: a model
    // trained from the recording knows the same programs as the one learned live
    assert.match(l.stderr, /recorded to /);
    const fromRecording = join(tmp, 'r.json');
    const t = await runCli(['model', 'train', recorded, '--out', fromRecording]);
    assert.equal(t.code, 0, t.stderr);
    const live = Object.keys((JSON.parse(readFileSync(learnedPath, 'utf8')) as { programs: object }).programs).sort();
    const replayed = Object.keys((JSON.parse(readFileSync(fromRecording, 'utf8')) as { programs: object }).programs).sort();
    assert.ok(live.includes(realpathSync(PYTHON)), live.join(', '));
    // the shell that moved itself into the cgroup never exec'd there: the monitor named it from
    // /proc on its first event, so the recording names it too
    assert.ok(live.includes(realpathSync('/bin/sh')), live.join(', '));
    assert.deepEqual(replayed, live);
    let deviant = 0;
    const m = await runCli(['monitor', '--cgroup', cg.path, '--model', learnedPath], (child) => whenAttached(child, () => {
      void runInCgroup(cg.path, LOOP(true)).then((d) => {
        deviant = Number(d.stdout.trim());
        setTimeout(() => child.kill('SIGINT'), 700);
      });
    }));
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /monitor: attached, watching until Ctrl-C/);
    assert.match(m.stderr, /detached after \d+ events/);
    const alerts = m.stdout.trim().split('\n').map((line) => JSON.parse(line) as { source: string; pid: number; ppid: number; rule: string });
    assert.ok(alerts.some((a) => a.source === 'model' && a.pid === deviant), `model alert for ${deviant}: ${m.stdout}`);
    assert.ok(alerts.some((a) => a.source === 'rule' && (a.pid === deviant || a.ppid === deviant)), `rule alert: ${m.stdout}`);
    rmSync(tmp, { recursive: true, force: true });
  } finally {
    await cg.remove();
  }
});

test('resolveInRoot: exec paths are resolved inside the process\'s own root, absolute links included', () => {
  const root = mkdtempSync(join(tmpdir(), 'sandtrace-root-'));
  try {
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin', 'busybox'), '');
    symlinkSync('/bin/busybox', join(root, 'bin', 'sh')); // as in an Alpine image
    symlinkSync('../../bin/sh', join(root, 'usr', 'bin', 'ash'));
    symlinkSync('/etc/passwd', join(root, 'bin', 'host')); // exists on the host, not in this root
    symlinkSync('/loop', join(root, 'loop'));
    assert.equal(resolveInRoot(root, '/bin/sh'), '/bin/busybox');
    assert.equal(resolveInRoot(root, '/usr/bin/ash'), '/bin/busybox');
    assert.equal(resolveInRoot(root, '/usr/../bin/./busybox'), '/bin/busybox');
    assert.equal(resolveInRoot(root, '/bin/host'), undefined, 'never the host\'s files');
    assert.equal(resolveInRoot(root, '/loop'), undefined);
    assert.equal(resolveInRoot(root, '/nope'), undefined);
    // through a live process's /proc/PID/root (here our own: the host's root) as the monitor does
    assert.equal(resolveInRoot(`/proc/${process.pid}/root`, '/usr/bin/sh'), realpathSync('/usr/bin/sh'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('resolveInRoot: a link only its own pid namespace can read (/proc/self in a container\'s /proc) leads nowhere, and does not throw', { timeout: 30_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('a new pid namespace needs root');
  const outer = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', 'sleep', '30'], { stdio: 'ignore' });
  try {
    let inner: number | undefined;
    for (let i = 0; i < 100 && inner === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const kids = readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim();
      if (kids) inner = Number(kids.split(' ')[0]);
    }
    assert.ok(inner, 'the namespace\'s sleep started');
    const root = `/proc/${inner}/root`;
    assert.ok(statSync(`${root}/proc/self`, { throwIfNoEntry: false }) === undefined, 'its /proc/self does not resolve from here');
    // a #! line or exec path the kernel follows inside the namespace: from here, unresolvable
    assert.equal(resolveInRoot(root, '/proc/self/root/usr/bin/sh'), undefined);
  } finally {
    outer.kill('SIGKILL');
  }
});

test('ExecNamer: a process there at attach calling itself runc:[2:INIT] is named like any other; one that joined since is runc exec\'s init until it execs', () => {
  // a watched cgroup with this process in it at attach time
  const cg = mkdtempSync(join(tmpdir(), 'sandtrace-namer-'));
  try {
    writeFileSync(join(cg, 'cgroup.procs'), `${process.pid}\n`);
    const namer = new ExecNamer(cg);
    namer.attached();
    let seq = 0;
    const call = (pid: number, comm: string): TraceEvent => ({ type: 'syscall', seq: ++seq, ts: seq, pid, tid: pid, comm, abi: 'x86_64', nr: 0, name: 'read', args: [], ret: 0 });
    // prctl(PR_SET_NAME, "runc:[2:INIT]") hides nothing: the process was there before
    const renamed = call(process.pid, 'runc:[2:INIT]');
    namer.apply(renamed);
    assert.equal(namer.isRuntime(renamed), false);
    assert.equal(renamed.running?.exe, realpathSync('/proc/self/exe'));
    // a process that joined from outside after attach (no fork seen): runc exec's init, until its exec
    const joined = 4_000_000; // no such pid: nothing in /proc names it either
    const init = call(joined, 'runc:[2:INIT]');
    namer.apply(init);
    assert.equal(namer.isRuntime(init), true);
    assert.equal(init.running, undefined);
    const exec: TraceEvent = { type: 'exec', seq: ++seq, ts: seq, pid: joined, tid: joined, exe: '/bin/true', argv: ['true'] };
    namer.apply(exec);
    const after = call(joined, 'true');
    namer.apply(after);
    assert.deepEqual([namer.isRuntime(exec), namer.isRuntime(after)], [false, false]);
  } finally {
    rmSync(cg, { recursive: true, force: true });
  }
});

test('ExecNamer: a relative exec path is resolved in the process\'s working directory, not sandtrace\'s', async () => {
  const child = spawn('./sleep', ['5'], { cwd: '/usr/bin', stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const namer = new ExecNamer();
    const exec: TraceEvent = { type: 'exec', seq: 1, ts: 1, pid: child.pid ?? 0, tid: child.pid ?? 0, exe: './sleep', argv: ['./sleep', '5'] };
    namer.apply(exec);
    assert.equal((exec as { exe: string }).exe, realpathSync('/usr/bin/sleep'));
    // a process already gone keeps the path it gave: never sandtrace's own directory's file
    const gone: TraceEvent = { type: 'exec', seq: 2, ts: 2, pid: 4_000_001, tid: 4_000_001, exe: './package.json', argv: [] };
    namer.apply(gone);
    assert.equal((gone as { exe: string }).exe, './package.json');
  } finally {
    child.kill();
  }
});

test('ExecNamer: a process gone before its exec is named is looked up in its parent\'s root, not in some other process\'s of the cgroup', { timeout: 30_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('chroot needs root');
  const root = mkdtempSync(join(tmpdir(), 'sandtrace-chroot-'));
  // the watched cgroup as the namer reads it: one process, in the host's root (runc exec's init
  // is such a process until it enters the container)
  const cg = mkdtempSync(join(tmpdir(), 'sandtrace-cgroup-'));
  writeFileSync(join(cg, 'cgroup.procs'), `${process.pid}\n`);
  mkdirSync(join(root, 'bin'));
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  writeFileSync(join(root, 'bin', 'real'), '');
  symlinkSync('/bin/real', join(root, 'bin', 'prog')); // the host has no /bin/prog
  const parent = spawn('chroot', [root, '/bin/busybox', 'sleep', '30'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && readlinkSync(`/proc/${parent.pid}/root`) !== root; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(readlinkSync(`/proc/${parent.pid}/root`), root);
    const namer = new ExecNamer(cg);
    const child = 4_000_002; // forked by the chrooted process, exec'd and gone already
    namer.apply({ type: 'fork', seq: 1, ts: 1, pid: parent.pid ?? 0, tid: parent.pid ?? 0, childPid: child, childTid: child, thread: false });
    const exec: TraceEvent = { type: 'exec', seq: 2, ts: 2, pid: child, tid: child, exe: '/bin/prog', argv: ['prog'] };
    namer.apply(exec);
    assert.equal((exec as { exe: string }).exe, '/bin/real');
  } finally {
    parent.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
    rmSync(cg, { recursive: true, force: true });
  }
});

test('ExecNamer: /proc/N/exe from a process in its own pid namespace names that namespace\'s pid N, not the host\'s', { timeout: 30_000 }, async () => {
  if (process.getuid?.() !== 0) assert.fail('a new pid namespace needs root');
  // sh is pid 1 of a new pid namespace and its sleeps pids 2 and 3; host pid 2 (kthreadd) is something else
  const outer = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
  try {
    let inner: number | undefined;
    for (let i = 0; i < 100 && inner === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const kids = readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim();
      const sh = kids ? Number(kids.split(' ')[0]) : undefined;
      // the namespace's init has forked its sleep (ns pid 2)
      if (sh && readFileSync(`/proc/${sh}/task/${sh}/children`, 'utf8').trim()) inner = sh;
    }
    assert.ok(inner, 'the namespace\'s sh and its sleep started');
    const namer = new ExecNamer();
    // a process the monitor saw with host pid 2 runs some other program
    namer.apply({ type: 'exec', seq: 1, ts: 1, pid: 2, tid: 2, exe: '/nonexistent/other-program', argv: [] });
    const exec: TraceEvent = { type: 'exec', seq: 2, ts: 2, pid: inner, tid: inner, exe: '/proc/2/exe', argv: ['sleep'] };
    namer.apply(exec);
    assert.equal((exec as { exe: string }).exe, realpathSync('/usr/bin/sleep'));
    // the first sleep (its namespace's pid 2) is seen forked, then dies before an exec of its is
    // named: its namespace, noted when it was seen, still says whose /proc/3/exe it meant (the
    // other sleep's, not host pid 3's)
    const sleeper = Number(readFileSync(`/proc/${inner}/task/${inner}/children`, 'utf8').trim().split(' ')[0]);
    namer.apply({ type: 'fork', seq: 3, ts: 3, pid: inner, tid: inner, childPid: sleeper, childTid: sleeper, thread: false });
    process.kill(sleeper, 'SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${sleeper}/ns/pid`); i++) await new Promise((r) => setTimeout(r, 20));
    const late: TraceEvent = { type: 'exec', seq: 4, ts: 4, pid: sleeper, tid: sleeper, exe: '/proc/3/exe', argv: [] };
    namer.apply(late);
    assert.equal((late as { exe: string }).exe, realpathSync('/usr/bin/sleep'));
    // a process gone before it was ever seen: its namespace is unknown, so host pid 2's program is
    // not a stand-in (a workload could steer that guess to any host program); the path stays
    const unseen: TraceEvent = { type: 'exec', seq: 5, ts: 5, pid: 4_000_002, tid: 4_000_002, exe: '/proc/2/exe', argv: [] };
    namer.apply(unseen);
    assert.equal((unseen as { exe: string }).exe, '/proc/2/exe');
  } finally {
    outer.kill('SIGKILL');
  }
});

/** The identity a kernel exec event gives a file on an ordinary filesystem (stat()'s own). */
function kernelFile(path: string, interpreter = false): NonNullable<ExecEvent['file']> {
  const st = statSync(path, { bigint: true });
  return { dev: Number(st.dev), ino: st.ino.toString(), ...(interpreter ? { interpreter: true as const } : {}) };
}

test('ExecNamer: an exec path swapped to another file before it is named does not name the program by the new file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-swap-'));
  try {
    const evil = join(dir, 'evil');
    const benign = join(dir, 'benign');
    copyFileSync('/usr/bin/sleep', evil);
    copyFileSync('/usr/bin/true', benign);
    const link = join(dir, 'run');
    const gone = 4_000_003; // no such process: nothing in /proc to ask
    const exec = (exe: string, file: NonNullable<ExecEvent['file']>, pid = gone): ExecEvent => ({ type: 'exec', seq: 1, ts: 1, pid, tid: pid, exe, argv: [exe], file });
    const named = (ev: ExecEvent): ExecEvent => { new ExecNamer().apply(ev); return ev; };

    // not swapped: named by the file the link leads to, which is the one the kernel ran
    symlinkSync(evil, link);
    const kept = named(exec(link, kernelFile(evil)));
    assert.equal(kept.exe, realpathSync(evil));
    assert.equal(kept.exeUnverified, undefined);
    // swapped after the exec, the process gone: neither the new target nor anything else names it
    rmSync(link);
    symlinkSync(benign, link);
    const swapped = named(exec(link, kernelFile(evil)));
    assert.equal(swapped.exe, link, 'the path as exec\'d, not the file it leads to now');
    assert.equal(swapped.exeUnverified, true);
    // an event without the file's identity (strace, a VM, an older recording) is named as before
    const unknown: ExecEvent = { type: 'exec', seq: 1, ts: 1, pid: gone, tid: gone, exe: link, argv: [] };
    new ExecNamer().apply(unknown);
    assert.equal(unknown.exe, realpathSync(benign));
    assert.equal(unknown.exeUnverified, undefined);

    // swapped while the process still runs the file: its /proc/PID/exe names that file
    rmSync(link);
    symlinkSync(evil, link);
    const child = spawn(link, ['5'], { stdio: 'ignore' });
    try {
      const runs = (): boolean => { try { return readlinkSync(`/proc/${child.pid}/exe`) === realpathSync(evil); } catch { return false; } };
      for (let i = 0; i < 100 && !runs(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(runs(), "the child runs the file");
      rmSync(link);
      symlinkSync(benign, link);
      const running = named(exec(link, kernelFile(evil), child.pid));
      assert.equal(running.exe, realpathSync(evil));
      assert.equal(running.exeUnverified, undefined);
    } finally {
      child.kill();
    }

    // a #! script: the kernel's file is its interpreter; the path must be a script run by it
    const script = join(dir, 'job.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const py = join(dir, 'job.py');
    writeFileSync(py, `#!${realpathSync('/usr/bin/python3')}\n`, { mode: 0o755 });
    const sh = kernelFile(realpathSync('/bin/sh'), true);
    rmSync(link);
    symlinkSync(script, link);
    assert.equal(named(exec(link, sh)).exe, realpathSync(script));
    // swapped to a script of another interpreter, or to a program: not what the kernel ran
    rmSync(link);
    symlinkSync(py, link);
    assert.equal(named(exec(link, sh)).exeUnverified, true);
    rmSync(link);
    symlinkSync(benign, link);
    assert.equal(named(exec(link, sh)).exeUnverified, true);
    // sh itself exec'd, then the path swapped to a script sh runs: sh ran, not the script
    rmSync(link);
    symlinkSync(script, link);
    assert.equal(named(exec(link, kernelFile(realpathSync('/bin/sh')))).exeUnverified, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('monitor: a program whose exec path was swapped is judged by the global model, never by the name it took, and alerted on', () => {
  const SVC = '/usr/sbin/svc';
  // svc's normal life is odd by any other program's standards; the global model knows only the ordinary
  const ordinary = ['brk', 'mmap', 'openat', 'fstat', 'close', ...Array.from({ length: 40 }, (_, i) => ['read', 'write', 'read', 'poll'][i % 4] as string), 'exit_group'];
  const svcLife = ['brk', 'mmap', 'socket', 'connect', 'dup2', 'dup2', 'setuid', 'ptrace', 'mprotect', 'kill', 'socket', 'connect', 'dup2', 'setuid', 'exit_group'];
  const data = trainModelFile({ traces: [], byExe: new Map([[SVC, Array.from({ length: 12 }, () => svcLife)]]), source: 'test' }, { kind: 'vmm' });
  data.global = trainModelFile({ traces: Array.from({ length: 12 }, () => ordinary), byExe: new Map(), source: 'test' }, { kind: 'vmm' }).global;
  const model = new AnomalyModel(data);
  for (const m of [model.global, ...model.programs.values()]) if (m) m.data.calibration.windowThreshold = Infinity;

  const judge = (exe: string, argv: string[], unverified: boolean) => {
    const semantics = new SemanticState({});
    const det = createAnomalyDetector(model, { live: false });
    const learner = new TraceLearner();
    let seq = 0;
    const base = () => ({ seq: ++seq, ts: seq * 1000, pid: 200, tid: 200 });
    const exec: ExecEvent = { ...base(), type: 'exec', exe, argv, ...(unverified ? { exeUnverified: true as const } : {}) };
    const events: TraceEvent[] = [
      { ...base(), pid: 1, tid: 1, type: 'fork', childPid: 200, childTid: 200, thread: false },
      exec,
      ...svcLife.map((name): TraceEvent => ({ ...base(), type: 'syscall', abi: 'x86_64', nr: -1, name, args: [], ret: 0 })),
      // a child it forks runs the same unverified program
      { ...base(), type: 'fork', childPid: 201, childTid: 201, thread: false },
      { ...base(), pid: 201, tid: 201, type: 'syscall', abi: 'x86_64', nr: -1, name: 'getpid', args: [], ret: 201 },
      { ...base(), type: 'exit', code: 0, thread: false },
    ];
    const found: Finding[] = [];
    for (const ev of events) {
      const e = semantics.apply(ev);
      det.onEvent(e);
      learner.onEvent(e);
      found.push(...det.drain());
    }
    found.push(...det.finish());
    learner.finish();
    return { found, learner };
  };
  // named svc for sure: svc's own life, nothing to say
  assert.deepEqual(judge(SVC, ['svc'], false).found.map((f) => f.rule), []);
  // exec'd as svc, but the path led elsewhere by the time it was named: not svc's model, the global one
  const { found, learner } = judge(SVC, ['svc'], true);
  assert.deepEqual(found.map((f) => f.rule), ['model.unverified_program', 'model.anomalous_process']);
  assert.match(found[0]!.output ?? '', /proc\.exe=\/usr\/sbin\/svc .*exe_unverified=true/);
  assert.match(found[1]!.description, /exec'd as \/usr\/sbin\/svc, unverified/);
  assert.ok(found[1]!.tags?.includes('exe-unverified'));
  // and while learning, its calls (and its child's) teach svc's model nothing
  assert.equal(learner.byExe.size, 0);
  assert.equal(learner.unattributed.length, 2);
  // a name that would pick a lookalike's model (/tmp/svc, run as svc) does not either
  const like = judge('/tmp/svc', ['svc'], true).found;
  assert.deepEqual(like.map((f) => f.rule), ['model.unverified_program', 'model.anomalous_process']);
  assert.ok(like.every((f) => !/named svc|judged_as/.test(`${f.description} ${f.output}`)), JSON.stringify(like));
});

test('procTty: a process on a pseudo-terminal (made by python\'s pty.fork) reads its pts (major 136); one without a terminal, even named "x) R 1 1 1 3481" to mislead a parser, reads 0; a gone one undefined', async () => {
  // pty.fork's child is a session leader on the new pty and execs sleep itself: no shell in between whose
  // choice ($SHELL, or dash when it is unset) decides whether sleep is a child or a grandchild
  const onPty = spawn('python3', ['-c', "import os, pty, time\npid, fd = pty.fork()\nif pid == 0: os.execvp('sleep', ['sleep', '30'])\ntime.sleep(30)"], { stdio: 'ignore' });
  const decoy = spawn('python3', ['-c', "import ctypes, time\nctypes.CDLL(None).prctl(15, b'x) R 1 1 1 34816', 0, 0, 0)\ntime.sleep(30)"], { stdio: 'ignore', detached: true });
  try {
    // the child on the pty is sleep once it has exec'd: find it
    let sleepPid: number | undefined;
    for (let i = 0; i < 50 && sleepPid === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const kids = readFileSync(`/proc/${onPty.pid}/task/${onPty.pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
      for (const k of kids) if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'sleep') sleepPid = k;
    }
    assert.ok(sleepPid, 'pty.fork\'s child ran sleep');
    const tty = procTty(sleepPid);
    assert.equal(tty !== undefined && tty >> 8, 136, `tty_nr ${tty}`);
    // its name (15 bytes of it) reads as the end of the name and a terminal field to a naive parser
    for (let i = 0; i < 50 && !readFileSync(`/proc/${decoy.pid}/comm`, 'utf8').startsWith('x) R '); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(readFileSync(`/proc/${decoy.pid}/comm`, 'utf8').trim(), 'x) R 1 1 1 3481');
    assert.equal(procTty(decoy.pid!), 0);
    assert.equal(procTty(2 ** 22 + 1), undefined);
  } finally {
    onPty.kill('SIGKILL');
    decoy.kill('SIGKILL');
  }
});
