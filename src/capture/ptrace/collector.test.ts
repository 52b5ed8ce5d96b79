// StraceCollector with the real strace: a traced command, an attach into a pid namespace, and the
// samples that break a tracer's expectations (self-ptrace, detaching daemons, fork storms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StraceCollector, type StraceCollectorOptions } from './collector.js';
import type { ExecEvent, ExitEvent, ForkEvent, SyscallEvent, TraceEvent } from '../events.js';

const PY = '/usr/bin/python3';

async function capture(opts: StraceCollectorOptions): Promise<{ evs: TraceEvent[]; c: StraceCollector }> {
  const c = new StraceCollector(opts);
  await c.start();
  const evs: TraceEvent[] = [];
  for await (const b of c.events()) evs.push(...b);
  await c.stop();
  return { evs, c };
}

test('traces a command: process tree, files, exit status, console, seq order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ptrace-'));
  try {
    const { evs, c } = await capture({ command: ['/bin/sh', '-c', `echo out; echo x > ${dir}/f; /bin/ls ${dir} >/dev/null; exit 5`] });
    const st = c.stats();
    assert.equal(st.backend, 'ptrace');
    assert.equal(st.parseErrors, 0, st.notes.join('\n'));
    assert.equal(st.lost, 0);
    assert.equal(st.events, evs.length);
    assert.deepEqual(c.exitStatus(), { code: 5, signal: null });
    assert.equal(c.console(), 'out\n');
    assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1));
    const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
    assert.deepEqual(execs.map((e) => e.exe), ['/bin/sh', '/bin/ls']);
    const sh = execs[0]?.pid;
    const fork = evs.find((e): e is ForkEvent => e.type === 'fork' && e.childPid === execs[1]?.pid);
    assert.equal(fork?.pid, sh, 'ls is the shell\'s child');
    const open = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'openat' && e.path === `${dir}/f`);
    assert.ok(open && (open.ret ?? -1) >= 0);
    const exit = evs.find((e): e is ExitEvent => e.type === 'exit' && e.pid === sh && !e.thread);
    assert.equal(exit?.code, 5);
    assert.ok(existsSync(`${dir}/f`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a syscall subset (with --seccomp-bpf) keeps the process tree, the signal calls and only the calls asked for', async () => {
  const { evs, c } = await capture({ command: ['/bin/sh', '-c', '/bin/cat /etc/hostname > /dev/null; /bin/true'], syscalls: ['openat'] });
  assert.equal(c.stats().parseErrors, 0);
  assert.deepEqual(c.stats().notes, []);
  const names = new Set(evs.filter((e): e is SyscallEvent => e.type === 'syscall').map((e) => e.name));
  const signalCalls = ['rt_sigaction', 'rt_sigreturn', 'restart_syscall'];
  for (const n of names) assert.ok(['openat', 'clone', 'clone3', 'fork', 'vfork', 'execve', 'exit_group', 'exit', ...signalCalls].includes(n), n);
  assert.ok(names.has('rt_sigaction'), 'the shell\'s dispositions are traced: a call a signal cuts into is settled from them');
  assert.ok(evs.some((e) => e.type === 'syscall' && e.name === 'openat' && e.path === '/etc/hostname'));
  const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
  assert.deepEqual(execs.map((e) => e.exe), ['/bin/sh', '/bin/cat', '/bin/true']);
  assert.equal(evs.filter((e) => e.type === 'fork').length, 2, 'both children announced by their fork');
});

test('calls a signal handler cut short are reported as the program saw them (EINTR), with the full trace or a syscall subset', async () => {
  // test/fixtures/strace-signals/sleeps.py: two sleeps, each cut short by SIGALRM's handler
  const script = fileURLToPath(new URL('../../../test/fixtures/strace-signals/sleeps.py', import.meta.url));
  for (const syscalls of [undefined, ['clock_nanosleep']]) {
    const { evs, c } = await capture({ command: [PY, '-S', '-I', script], ...(syscalls ? { syscalls } : {}) });
    assert.equal(c.stats().parseErrors, 0);
    const sleeps = evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'clock_nanosleep' && e.signal !== undefined);
    assert.deepEqual(sleeps.map((e) => [e.ret, e.signal]), [[-4, 'interrupted'], [-4, 'interrupted']], `syscalls ${JSON.stringify(syscalls)}`);
    assert.ok(!evs.some((e) => e.type === 'syscall' && (e.ret ?? 0) <= -512 && (e.ret ?? 0) >= -516), 'no kernel-internal restart code is left');
    assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1));
  }
});

test('attaches to a waiting process in its own pid namespace: pids are the namespace\'s, set-up is skipped', async () => {
  // A process in a new pid namespace (as a sandbox's init would be) waits on a FIFO, then execs.
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ptrace-ns-'));
  const fifo = join(dir, 'go');
  try {
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.on('exit', r));
    const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c',
      `read x < ${fifo}; exec /bin/sh -c '/bin/true; /bin/echo hi > /dev/null; exit 3'`], { stdio: 'ignore' });
    // Find the namespace's init (the sh under unshare) by its parent.
    let init: number | undefined;
    for (let i = 0; i < 100 && init === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const { readFileSync, readdirSync } = await import('node:fs');
      for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        try {
          const st = readFileSync(`/proc/${p}/stat`, 'utf8');
          if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === child.pid) init = Number(p);
        } catch { /* gone */ }
      }
    }
    assert.ok(init, 'found the namespace init');
    const c = new StraceCollector({ attachPid: init });
    await c.start();
    const evs: TraceEvent[] = [];
    const consume = (async () => { for await (const b of c.events()) evs.push(...b); })();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(fifo, 'go\n');
    await consume;
    await c.stop();
    const st = c.stats();
    assert.equal(st.parseErrors, 0, st.notes.join('\n') + JSON.stringify(evs.slice(0, 3)));
    const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
    assert.deepEqual(execs.map((e) => [e.pid, e.exe]), [[1, '/bin/sh'], [2, '/bin/true'], [3, '/bin/echo']],
      'the sample is pid 1 in its namespace; children are numbered there too');
    assert.equal(evs[0]?.type, 'exec', 'nothing before the exec (the read on the FIFO is set-up)');
    const forks = evs.filter((e): e is ForkEvent => e.type === 'fork');
    assert.deepEqual(forks.map((f) => [f.pid, f.childPid]), [[1, 2], [1, 3]]);
    assert.ok(evs.every((e) => e.pid >= 1 && e.pid <= 3), 'no host pid leaks into the events');
    const exit = evs.find((e): e is ExitEvent => e.type === 'exit' && e.pid === 1);
    assert.equal(exit?.code, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: a sample that ptraces itself ends normally with the anomaly noted', async () => {
  const { evs, c } = await capture({ command: [PY, '-c',
    'import ctypes,sys\nr=ctypes.CDLL(None).ptrace(0,0,None,None)\nprint("traced" if r==-1 else "free")\nsys.exit(0)'] });
  const pt = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'ptrace');
  assert.equal(pt?.args[0], 0, 'PTRACE_TRACEME');
  assert.equal(pt?.ret, -1, 'EPERM: strace already traces it');
  assert.equal(c.console(), 'traced\n');
  assert.ok(c.stats().notes.some((n) => /PTRACE_TRACEME/.test(n)), c.stats().notes.join('\n'));
  assert.deepEqual(c.exitStatus(), { code: 0, signal: null });
});

test('bad input: a daemon that detaches from its parent is reported and killed, not waited on forever', async () => {
  const t0 = Date.now();
  const { evs, c } = await capture({
    command: ['sh', '-c', '(setsid sleep 300 &); echo parent done'], rootExitGraceMs: 300, killLeftovers: true,
  });
  assert.ok(Date.now() - t0 < 20_000, 'did not wait for the daemon');
  assert.ok(c.stats().notes.some((n) => /still ran .* killed/.test(n)), c.stats().notes.join('\n'));
  const sleeper = evs.find((e): e is ExecEvent => e.type === 'exec' && e.argv[0] === 'sleep');
  assert.ok(sleeper, 'the daemon was traced until then');
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!existsSync(`/proc/${sleeper.pid}/stat`) || /\) Z /.test((await import('node:fs')).readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8')), 'the daemon is gone');
});

test('bad input: a fork storm of 1500 children completes with every fork captured and a note', async () => {
  const { evs, c } = await capture({ command: [PY, '-c',
    'import os\nfor i in range(1500):\n  p=os.fork()\n  if p==0: os._exit(0)\n  os.waitpid(p,0)'] });
  const forks = evs.filter((e) => e.type === 'fork' && !e.thread);
  const exits = evs.filter((e) => e.type === 'exit' && !e.thread);
  assert.equal(forks.length, 1500);
  assert.equal(exits.length, 1501);
  assert.equal(c.stats().parseErrors, 0);
  assert.ok(c.stats().notes.some((n) => /fork storm: the sample created 1500 tasks/.test(n)), c.stats().notes.join('\n'));
});

test('a command killed by a signal is the command\'s outcome: named by commandExit(), no note blames strace', async () => {
  // strace re-raises the signal that killed the command, so its own exit looks killed too
  const { evs, c } = await capture({ command: ['/bin/sh', '-c', 'kill -9 $$'] });
  assert.ok(!c.stats().notes.some((n) => /strace was killed/.test(n)), c.stats().notes.join('\n'));
  assert.deepEqual(c.exitStatus(), { code: null, signal: 'SIGKILL' });
  assert.deepEqual(c.commandExit(), { signal: 'SIGKILL' });
  const exit = evs.find((e): e is ExitEvent => e.type === 'exit' && !e.thread);
  assert.equal(exit?.signal, 9);
  const normal = await capture({ command: ['/bin/sh', '-c', 'exit 7'] });
  assert.deepEqual(normal.c.commandExit(), { code: 7 });
});

test('strace itself killed is a tracer failure: noted, and no exit status of the command', async () => {
  const c = new StraceCollector({ command: ['/bin/sleep', '30'] });
  await c.start();
  const evs: TraceEvent[] = [];
  const reading = (async () => { for await (const b of c.events()) evs.push(...b); })();
  await new Promise((r) => setTimeout(r, 500));
  (c as unknown as { proc: { kill(s: string): void } }).proc.kill('SIGKILL');
  await reading;
  await c.stop();
  // the tracee, detached when strace died, is not left sleeping
  const sleeper = evs.find((e): e is ExecEvent => e.type === 'exec');
  if (sleeper) try { process.kill(sleeper.pid, 'SIGKILL'); } catch { /* gone */ }
  assert.equal(c.exitStatus()?.signal, 'SIGKILL');
  assert.equal(c.commandExit(), undefined);
  assert.ok(c.stats().notes.some((n) => /strace was killed by SIGKILL/.test(n)), c.stats().notes.join('\n'));
});

test('a missing command or an unattachable pid fails with a reason, not a hang', async () => {
  const before = (await import('node:fs')).readdirSync(tmpdir()).filter((n) => n.startsWith('sandtrace-strace-'));
  const { evs, c } = await capture({ command: ['/nonexistent/sandtrace-test'] });
  assert.equal(evs.length, 0);
  assert.ok(c.stats().notes.some((n) => /nonexistent/.test(n)));
  assert.notEqual(c.exitStatus()?.code, 0);
  assert.equal(c.commandExit(), undefined, 'the command never ran: it has no exit status of its own');
  await assert.rejects(new StraceCollector({ attachPid: 2 ** 22 + 7 }).start(), /no process/);
  // Nothing of those runs is left behind: no FIFO directory of a finished collector remains.
  const { readdirSync } = await import('node:fs');
  const mine = (c as unknown as { dir: string | undefined }).dir;
  assert.equal(mine, undefined, 'the collector removed its FIFO directory');
  assert.ok(readdirSync(tmpdir()).filter((n) => n.startsWith('sandtrace-strace-')).length <= before.length);
  assert.throws(() => new StraceCollector({}), /exactly one/);
});

test('what strace cuts or cannot read is marked on the events, never a silent prefix', async () => {
  // Default -s 256. Paths are printed whole up to PATH_MAX - 1 whatever -s is; argv elements are
  // cut at -s; a bad pointer prints as its address.
  const script = [
    'import ctypes, os',
    'libc = ctypes.CDLL(None, use_errno=True)',
    "libc.syscall(257, -100, ('/tmp/sandtrace-' + 'p' * 300).encode(), 0)",
    "libc.syscall(257, -100, ('/tmp/sandtrace-' + 'q' * 5000).encode(), 0)",
    'libc.syscall(257, -100, ctypes.c_void_p(1), 0)',
    "os.execv('/bin/true', ['true', 'x' * 300, 'y'])",
  ].join('\n');
  const { evs, c } = await capture({ command: [PY, '-c', script] });
  assert.equal(c.stats().parseErrors, 0, c.stats().notes.join('\n'));
  assert.deepEqual(c.exitStatus(), { code: 0, signal: null });
  const opens = evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'openat');
  const longer = opens.find((e) => e.path?.startsWith('/tmp/sandtrace-p'));
  assert.equal(longer?.path, `/tmp/sandtrace-${'p'.repeat(300)}`, 'a path longer than -s is complete');
  assert.equal(longer?.truncated, undefined);
  const tooLong = opens.find((e) => e.path?.startsWith('/tmp/sandtrace-q'));
  assert.equal(tooLong?.ret, -36, 'ENAMETOOLONG');
  assert.equal(tooLong?.path?.length, 4095, 'cut at PATH_MAX - 1');
  assert.deepEqual(tooLong?.truncated, ['path']);
  const bad = opens.filter((e) => e.ret === -14);
  assert.equal(bad.length, 1, 'one EFAULT open');
  assert.deepEqual(bad[0]?.unreadable, ['path']);
  assert.equal(bad[0]?.path, undefined);
  const execve = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.path === '/bin/true');
  assert.deepEqual(execve?.argv, ['true', 'x'.repeat(256), 'y']);
  assert.deepEqual(execve?.truncated, ['argv']);
  const exec = evs.find((e): e is ExecEvent => e.type === 'exec' && e.exe === '/bin/true');
  assert.deepEqual(exec?.argv, ['true', 'x'.repeat(256), 'y']);
  assert.deepEqual(exec?.truncated, ['argv']);
  // Only those events carry marks, and python's own exec: its `-c` script is longer than -s.
  assert.ok(script.length > 256);
  const py = evs.find((e): e is ExecEvent => e.type === 'exec');
  assert.equal(py?.argv[2], script.slice(0, 256));
  assert.deepEqual(py?.truncated, ['argv']);
  const marked = evs.filter((e) => (e.type === 'syscall' || e.type === 'exec') && (e.truncated || e.unreadable));
  assert.deepEqual(marked.map((e) => (e.type === 'syscall' ? e.name : 'exec')), ['exec', 'execve', 'openat', 'openat', 'exec', 'execve']);
});
