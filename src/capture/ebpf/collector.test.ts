// The eBPF backend against real workloads in a throw-away cgroup: needs root and `make setup`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecEvent, ExitEvent, ForkEvent, SyscallEvent, TraceEvent } from '../events.js';
import { isSandtraceError } from '../../errors.js';
import { EbpfCollector, defaultLoaderPath, ebpfAvailable } from './collector.js';
import { capture, makeCgroup, makeV1Freezer, runInCgroup } from './testutil.js';

const syscalls = (evs: TraceEvent[]) => evs.filter((e): e is SyscallEvent => e.type === 'syscall');

before(() => {
  assert.ok(existsSync(defaultLoaderPath()), `the eBPF probe is not built (${defaultLoaderPath()}): run make setup`);
  assert.equal(process.getuid?.(), 0, 'the eBPF tests need root');
});

test('ebpfAvailable: built, root and the kernel accepts the program', async () => {
  const a = await ebpfAvailable();
  assert.equal(a.ok, true, a.reason);
});

test('files, exec argv, sockets, fork/exec/exit and an exact call count', { timeout: 60_000 }, async () => {
  const cg = makeCgroup('basic');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ebpf-'));
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const known = join(dir, 'known.txt');
    writeFileSync(known, 'hello');
    const N = 1234;
    const py = `
import os, socket
for _ in range(${N}): os.getppid()
fd = os.open(${JSON.stringify(known)}, os.O_RDONLY)
os.write(1, b'fd=%d\\n' % fd)
os.close(fd)
try: os.open(${JSON.stringify(join(dir, 'missing'))}, os.O_RDONLY)
except FileNotFoundError: pass
c = socket.create_connection(('127.0.0.1', ${port})); c.close()
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
cl = socket.socket(); cl.connect(srv.getsockname()); a, peer = srv.accept()
os.write(1, b'peer=%d\\n' % peer[1])
pid = os.fork()
if pid == 0:
    os.execv('/bin/true', ['true', 'first arg', '--second'])
os.waitpid(pid, 0)
os.write(1, b'child=%d\\n' % pid)
`;
    // A process outside the cgroup doing the same kind of calls at the same time.
    const outsider = spawn('/usr/bin/python3', ['-c', 'import os\nfor _ in range(5000): os.getppid()\nos.open("/etc/hostname", 0)']);
    const outsiderDone = new Promise((r) => outsider.on('close', r));
    const { events, stats, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 -c '${py.replace(/'/g, `'"'"'`)}'`));
    await outsiderDone;
    assert.equal(result.code, 0, result.stderr);
    const fd = Number(/fd=(\d+)/.exec(result.stdout)?.[1]);
    const peerPort = Number(/peer=(\d+)/.exec(result.stdout)?.[1]);
    const childPid = Number(/child=(\d+)/.exec(result.stdout)?.[1]);
    const pyPid = result.pid; // sh execs python3: same process

    assert.equal(stats.lost, 0);
    assert.equal(stats.parseErrors, 0);
    assert.equal(stats.events, events.length);
    // Delivered in seq order, 1-based, no gaps.
    events.forEach((e, i) => assert.equal(e.seq, i + 1));

    // Nothing from outside: every event belongs to the shell or a process it forked.
    const pids = new Set([pyPid]);
    for (const e of events) if (e.type === 'fork') pids.add(e.childPid);
    assert.deepEqual(events.filter((e) => !pids.has(e.pid)), []);
    assert.equal(outsider.pid !== undefined && pids.has(outsider.pid), false);

    const sys = syscalls(events);
    assert.equal(sys.filter((e) => e.name === 'getppid').length, N, 'exactly N getppid calls');
    assert.ok(sys.filter((e) => e.name === 'getppid').every((e) => e.pid === pyPid && e.ret === process.pid));

    const open = sys.find((e) => e.name === 'openat' && e.path === known);
    assert.ok(open, 'openat of the known file');
    assert.equal(open.ret, fd);
    assert.equal(open.comm, 'python3');
    const missing = sys.find((e) => e.name === 'openat' && e.path === join(dir, 'missing'));
    assert.equal(missing?.ret, -2, 'ENOENT');

    const conn = sys.find((e) => e.name === 'connect' && e.addr?.family === 'inet' && e.addr.port === port);
    assert.deepEqual(conn?.addr, { family: 'inet', address: '127.0.0.1', port });
    assert.equal(conn?.ret, 0);
    const acc = sys.find((e) => (e.name === 'accept4' || e.name === 'accept') && e.ret !== null && e.ret >= 0);
    assert.deepEqual(acc?.addr, { family: 'inet', address: '127.0.0.1', port: peerPort }, 'accept: peer address read at return');
    const bind = sys.find((e) => e.name === 'bind');
    assert.deepEqual(bind?.addr, { family: 'inet', address: '127.0.0.1', port: 0 });

    // fork -> exec -> exit of the child, with the right parent.
    const fork = events.find((e): e is ForkEvent => e.type === 'fork' && e.childPid === childPid);
    assert.ok(fork, 'fork of the child');
    assert.equal(fork.pid, pyPid);
    assert.equal(fork.thread, false);
    const exec = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === childPid);
    assert.ok(exec);
    assert.equal(exec.exe, '/bin/true');
    assert.deepEqual(exec.argv, ['true', 'first arg', '--second']);
    assert.equal(exec.comm, 'true');
    const execve = sys.find((e) => e.name === 'execve' && e.pid === childPid);
    assert.deepEqual(execve?.argv, ['true', 'first arg', '--second']);
    assert.equal(execve?.path, '/bin/true');
    assert.equal(execve?.ret, 0);
    // The child's first return to user space is not reported as a clone of its own.
    const clones = sys.filter((e) => e.name === 'clone' || e.name === 'clone3' || e.name === 'fork' || e.name === 'vfork');
    assert.ok(clones.some((e) => e.pid === pyPid && e.ret === childPid));
    assert.deepEqual(clones.filter((e) => e.ret === 0), []);
    const exits = events.filter((e): e is ExitEvent => e.type === 'exit');
    const childExit = exits.find((e) => e.pid === childPid);
    assert.ok(childExit && childExit.code === 0 && !childExit.thread);
    assert.ok(fork.seq < exec.seq && exec.seq < childExit.seq);
    // python3 itself ends with exit_group (never returns: ret null) and then its exit event.
    const eg = sys.filter((e) => e.name === 'exit_group' && e.pid === pyPid);
    assert.equal(eg.length, 1);
    assert.equal(eg[0]!.ret, null);
    assert.ok(exits.some((e) => e.pid === pyPid && e.code === 0 && e.seq > eg[0]!.seq));
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});

test('a call denied by seccomp (no sys_enter) is still reported, with its path', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('seccomp');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ebpf-'));
  try {
    const target = join(dir, 'denied-dir');
    // A classic BPF filter: mkdir (83) and mkdirat (258) fail with EPERM, everything else is allowed.
    const py = `
import ctypes, os, struct
f = [(0x20,0,0,0), (0x15,2,0,83), (0x15,1,0,258), (0x06,0,0,0x7fff0000), (0x06,0,0,0x00050001)]
buf = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *i) for i in f))
class P(ctypes.Structure): _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
prog = P(len(f), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0
try: os.mkdir(${JSON.stringify(target)})
except PermissionError: print('denied')
`;
    const { events, stats, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 -c '${py.replace(/'/g, `'"'"'`)}'`));
    assert.equal(result.stdout.trim(), 'denied', result.stderr);
    assert.equal(existsSync(target), false);
    assert.equal(stats.lost, 0);
    const denied = syscalls(events).filter((e) => (e.name === 'mkdir' || e.name === 'mkdirat') && e.path === target);
    assert.equal(denied.length, 1, 'the denied mkdir appears once');
    assert.equal(denied[0]!.ret, -1, 'EPERM');
    assert.equal(denied[0]!.pid, result.pid);
    const seccomp = syscalls(events).find((e) => e.name === 'prctl' && e.args[0] === 22);
    assert.ok(seccomp && seccomp.seq < denied[0]!.seq);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});

test('exec of a script: exe is the script, argv the new image\'s (interpreter first), execve keeps the argv passed', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('script');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ebpf-'));
  try {
    const script = join(dir, 'hello.sh');
    writeFileSync(script, '#!/bin/sh\nexit 5\n', { mode: 0o755 });
    const { events, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec ${script} one two`));
    assert.equal(result.code, 5);
    const exec = events.find((e): e is ExecEvent => e.type === 'exec' && e.exe === script);
    assert.deepEqual(exec?.argv, ['/bin/sh', script, 'one', 'two']);
    assert.equal(exec?.comm, 'hello.sh');
    const execve = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.path === script);
    assert.deepEqual(execve?.argv, [script, 'one', 'two']);
    assert.equal(execve?.ret, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});

test('a successful execveat (fexecve, as fileless programs run) is reported as the execveat it was, once', { timeout: 30_000 }, async () => {
  // the kernel returns from a successful exec as execve (orig_ax rewritten): the probe must still
  // pair the return with the execveat's entry, not report an execve with no path or argv
  const cg = makeCgroup('execveat');
  try {
    const py = "import os; fd = os.open('/usr/bin/true', os.O_RDONLY); os.execve(fd, ['true', 'from-fd'], {})";
    const { events, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 -c "${py}"`));
    assert.equal(result.code, 0, result.stderr);
    const execs = events.filter((e): e is SyscallEvent => e.type === 'syscall' && /^execve(at)?$/.test(e.name) && e.ret === 0);
    const fexec = execs.filter((e) => e.name === 'execveat');
    assert.equal(fexec.length, 1, execs.map((e) => `${e.name} ${e.path} ${e.argv}`).join('\n'));
    assert.deepEqual([fexec[0]?.path, fexec[0]?.argv, fexec[0]?.args[4]], ['', ['true', 'from-fd'], 0x1000]); // AT_EMPTY_PATH
    // the shell's exec of python, and nothing else: no execve without its arguments
    assert.deepEqual(execs.filter((e) => e.name === 'execve').map((e) => e.path), ['/usr/bin/python3']);
    const exec = events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => e.argv.join(' '));
    assert.ok(exec.includes('true from-fd'), exec.join('\n'));
  } finally {
    await cg.remove();
  }
});

test('threads: clone with CLONE_THREAD, per-thread tids, thread exit', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('threads');
  try {
    const py = 'import threading, os\ndef f(): os.write(1, b"tid=%d\\n" % threading.get_native_id())\nt = threading.Thread(target=f); t.start(); t.join()';
    const { events, stats, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 -c '${py}'`));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(stats.lost, 0);
    const tid = Number(/tid=(\d+)/.exec(result.stdout)?.[1]);
    const fork = events.find((e): e is ForkEvent => e.type === 'fork' && e.childTid === tid);
    assert.ok(fork, 'a fork event for the thread');
    assert.equal(fork.thread, true);
    assert.equal(fork.childPid, result.pid);
    const write = syscalls(events).find((e) => e.name === 'write' && e.tid === tid);
    assert.equal(write?.pid, result.pid, 'the thread reports its process id and its own tid');
    // Both tasks exit; only the last one to go ends the process (which one is a race in python).
    const exits = events.filter((e): e is ExitEvent => e.type === 'exit' && e.pid === result.pid);
    assert.deepEqual(exits.map((e) => e.tid).sort(), [result.pid, tid].sort());
    assert.deepEqual(exits.map((e) => e.thread), [true, false]);
  } finally {
    await cg.remove();
  }
});

for (const kind of ['v2', 'v1'] as const) {
  test(`a slow consumer freezes the workload (cgroup ${kind} freezer) instead of losing events`, { timeout: 90_000 }, async () => {
    const cg = makeCgroup('freeze');
    const v1 = kind === 'v1' ? makeV1Freezer('freeze') : null;
    try {
      // A 4 MiB ring (the default is 64) and 17 MB of records: the reader's buffer passes twice the
      // ring size, which freezes the workload. Headroom in the ring keeps a busy host from losing.
      const N = 150000;
      const { events, stats, result } = await capture(
        { cgroupPath: cg.path, ringBytes: 4 << 20, queueEvents: 1024, ...(v1 ? { freezerPath: v1.path } : {}) },
        () => runInCgroup(cg.path, `exec /usr/bin/python3 -c 'import os\nfor _ in range(${N}): os.getppid()'`, v1 ? { alsoInto: v1.path } : {}),
        5,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(stats.lost, 0);
      assert.equal(syscalls(events).filter((e) => e.name === 'getppid').length, N);
      const note = stats.notes.find((n) => n.startsWith('froze the target'));
      assert.ok(note, `a freeze note in ${JSON.stringify(stats.notes)}`);
      if (v1) assert.equal(readFileSync(join(v1.path, 'freezer.state'), 'utf8').trim(), 'THAWED', 'thawed at the end');
      else assert.equal(readFileSync(join(cg.path, 'cgroup.freeze'), 'utf8').trim(), '0', 'thawed at the end');
    } finally {
      await cg.remove();
      await v1?.remove();
    }
  });
}

test('pids are reported in the pid namespace of the target', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('pidns');
  try {
    // unshare forks the namespace's init (pid 1), which waits for a line on stdin before working.
    const outer = spawn('unshare', ['--pid', '--fork', 'sh', '-c', 'read go; /bin/true; exit 7'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const done = new Promise<number | null>((r) => outer.on('close', r));
    let inner = 0;
    for (let i = 0; i < 100 && !inner; i++) {
      await new Promise((r) => setTimeout(r, 20));
      try { inner = Number(readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim().split(' ')[0]) || 0; } catch { /* not yet */ }
    }
    assert.ok(inner > 0, 'found the namespace init');
    writeFileSync(join(cg.path, 'cgroup.procs'), String(inner));
    const { events, stats, result } = await capture({ cgroupPath: cg.path, pidNamespaceOf: inner }, async () => {
      outer.stdin.end('go\n');
      return done;
    });
    assert.equal(result, 7);
    assert.equal(stats.lost, 0);
    const fork = events.find((e): e is ForkEvent => e.type === 'fork');
    assert.equal(fork?.pid, 1, 'the namespace init is pid 1');
    assert.ok(fork.childPid > 1 && fork.childPid < 100, `child pid ${fork.childPid} is namespace-local`);
    const exec = events.find((e): e is ExecEvent => e.type === 'exec');
    assert.equal(exec?.pid, fork.childPid);
    assert.ok(events.every((e) => e.pid === 1 || e.pid === fork.childPid));
    const initExit = events.find((e): e is ExitEvent => e.type === 'exit' && e.pid === 1);
    assert.equal(initExit?.code, 7);
  } finally {
    await cg.remove();
  }
});

test('not root: ebpfAvailable says why, start() fails with NOT_ROOT', { timeout: 30_000 }, async () => {
  // The same module, run as nobody.
  const mod = new URL('./collector.ts', import.meta.url).pathname;
  const code = `const m = await import(${JSON.stringify(mod)}); console.log(JSON.stringify(await m.ebpfAvailable()));
try { await new m.EbpfCollector({ cgroupPath: '/sys/fs/cgroup/unified' }).start(); } catch (e) { console.log(e.code); }`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code],
    { encoding: 'utf8', cwd: new URL('../../..', import.meta.url).pathname, timeout: 25_000 });
  assert.equal(r.status, 0, r.stderr);
  const [avail, err] = r.stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(avail ?? ''), { ok: false, reason: 'eBPF capture needs root' });
  assert.equal(err, 'NOT_ROOT');
});

test('errors: probe missing, bad configuration', async () => {
  const missing = new EbpfCollector({ cgroupPath: '/sys/fs/cgroup/unified', loaderPath: '/nonexistent/sandtrace-probe' });
  await assert.rejects(missing.start(), (e) => isSandtraceError(e) && e.code === 'PROBE_BUILD_MISSING' && /make setup/.test(e.message));
  const cg = makeCgroup('err');
  try {
    const bad = new EbpfCollector({ cgroupPath: cg.path, ringBytes: 12345 });
    await assert.rejects(bad.start(), (e) => isSandtraceError(e) && e.code === 'PROBE_LOAD_FAILED' && /power of two/.test(e.message));
    const notCg = new EbpfCollector({ cgroupPath: tmpdir() });
    await assert.rejects(notCg.start(), (e) => isSandtraceError(e) && e.code === 'INPUT_MISSING');
    assert.throws(() => new EbpfCollector({ cgroupPath: cg.path, freezerPath: tmpdir() }), (e) => isSandtraceError(e) && e.code === 'INPUT_MISSING');
  } finally {
    await cg.remove();
  }
});
