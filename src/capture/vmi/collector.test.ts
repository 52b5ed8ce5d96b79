// VmiCollector on plugin records recorded from a real guest (testdata/guest-naming.rec: the busybox
// initramfs running test/vm/naming.test.ts's loop under monitorGuest, cut to the records that name
// a few processes: their first call, forks, execs and the calls right after, exits): every
// exec names the file that runs, kernel-exec'd programs are named, a child is announced before
// its own calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { VmiCollector, execExe } from './collector.js';
import { PATH_CUT, exePath } from './records.js';
import { SemanticState } from '../../semantics/state.js';
import type { ExecEvent, SyscallEvent, TraceEvent } from '../events.js';

const REC = readFileSync(new URL('./testdata/guest-naming.rec', import.meta.url));

async function collect(rootExe?: string, chunk = REC.length): Promise<{ c: VmiCollector; events: TraceEvent[] }> {
  const parts: Buffer[] = [];
  for (let o = 0; o < REC.length; o += chunk) parts.push(REC.subarray(o, o + chunk));
  const c = new VmiCollector({ open: async () => Readable.from(parts), ...(rootExe ? { rootExe } : {}) });
  await c.start();
  const events: TraceEvent[] = [];
  for await (const b of c.events()) events.push(...b);
  return { c, events };
}

test('recorded guest: exec events name the file that runs, the execve call keeps what was passed', async () => {
  const { c, events } = await collect();
  assert.equal(c.stats().lost, 0);
  const execs = events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => [e.pid, e.exe, e.argv[0]]);
  assert.deepEqual(execs, [
    [39, '/bin/busybox', '/sbin/modprobe'], // the kernel's usermode helper: no execve call
    [1, '/bin/busybox', '/bin/sh'], // init: the kernel ran the /init script
    [79, '/sbin/mount', 'mount'], // an absolute path is kept as passed (after /proc/self/exe failed: no /proc yet)
    [80, '/bin/busybox', 'mount'], // /proc/self/exe
    [85, '/bin/busybox', 'timeout'],
    [85, '/sample/svc.sh', '/bin/sh'], // a script stays the script
    [91, '/tmp/true', './true'], // relative, on the tmpfs /tmp: the mount's path is kept
    [92, '/tmp/s.sh', '/bin/sh'], // a script by a relative path: the working directory's, not its interpreter
    [93, '/tmp/sh', '/tmp/sh'],
    [94, '/tmp/sh', 'sleep'], // /proc/self/exe of a busybox copy on another mount
    [95, '/bin/busybox', 'sleep'],
  ]);
  // init and the usermode helper were started by the kernel itself; nothing else was
  assert.deepEqual(events.filter((e): e is ExecEvent => e.type === 'exec' && e.byKernel === true).map((e) => e.pid), [39, 1]);
  const call = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.pid === 94);
  assert.deepEqual([call?.path, call?.argv, call?.ret], ['/proc/self/exe', ['sleep', '0.05'], 0]);
  assert.equal(c.processes().find((p) => p.pid === 94)?.exe, '/tmp/sh');
  assert.equal(c.processes().find((p) => p.pid === 92)?.exe, '/bin/busybox'); // what the kernel mapped
  assert.match(c.stats().notes.join('\n'), /2 process\(es\) exec'd by the kernel/);
});

test('recorded guest: a child that runs before its parent\'s fork returns is announced first and inherits the program', async () => {
  // chunking must not matter
  for (const chunk of [REC.length, 97]) {
    const { events } = await collect(undefined, chunk);
    const first = new Map<number, number>();
    for (const e of events) if (!first.has(e.pid)) first.set(e.pid, e.seq);
    const forks = events.filter((e) => e.type === 'fork' && !e.thread);
    assert.ok(forks.length >= 10);
    for (const f of forks) if (f.type === 'fork') assert.ok(first.get(f.childPid) === undefined || f.seq < (first.get(f.childPid) ?? 0), `fork of ${f.childPid}`);
    // timeout (85) vforks 86, which forks 87 and exits, all before 85's vfork returns: one fork event each
    assert.equal(forks.filter((f) => f.type === 'fork' && f.childPid === 86).length, 1);
    const vfork = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'vfork');
    assert.equal(vfork?.ret, 86);
    // Through the semantic layer (what the per-program models key on), every call has a real program.
    const sem = new SemanticState({});
    const unnamed = new Set<string>();
    for (const e of events) {
      const x = sem.apply(e);
      if (e.type === 'syscall' && !/^\/(?!proc\/)./.test(x.proc.exe)) unnamed.add(`${e.pid}:${x.proc.exe}`);
    }
    assert.deepEqual([...unnamed], []);
    assert.equal(sem.process(87)?.exe, '/bin/busybox');
  }
});

test('recorded guest, scoped to the sample: kernel-exec\'d programs and boot stay out', async () => {
  const { events } = await collect('/sample/svc.sh');
  const pids = new Set(events.map((e) => e.pid));
  assert.ok(!pids.has(1) && !pids.has(39) && !pids.has(86));
  assert.deepEqual(events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => [e.pid, e.exe]),
    [[85, '/sample/svc.sh'], [91, '/tmp/true'], [92, '/tmp/s.sh'], [93, '/tmp/sh'], [94, '/tmp/sh'], [95, '/bin/busybox']]);
});

test('execExe: the passed path unless it is an alias, relative, empty or unread', () => {
  assert.equal(execExe('/usr/bin/ls', '/usr/bin/busybox'), '/usr/bin/ls');
  assert.equal(execExe('/tmp/s.sh', '/bin/busybox'), '/tmp/s.sh');
  for (const alias of ['/proc/self/exe', '/proc/thread-self/exe', '/proc/42/exe', './x', 'x', '', undefined]) {
    assert.equal(execExe(alias, '/tmp/x'), '/tmp/x', String(alias));
  }
  // fexecve: the descriptor's file; a memfd keeps fileless execution visible (proc.is_exe_from_memfd)
  for (const fd of ['/proc/self/fd/3', '/dev/fd/3', '/proc/12/fd/4']) assert.equal(execExe(fd, '/memfd:x'), '/memfd:x', fd);
  // whatever name led to a memfd (an alias spelled oddly, a link to it), the program is the memfd
  for (const odd of ['/proc//self/fd/3', '/dev/fd/./3', '/tmp/link-to-fd', '/proc/self/fdinfo/3']) assert.equal(execExe(odd, '/memfd:x'), '/memfd:x', odd);
  assert.equal(execExe('/proc//self/exe', '/bin/busybox'), '/bin/busybox');
  assert.equal(execExe('./x', ''), './x'); // nothing better: the semantic layer resolves it against the cwd
  // a relative script maps its interpreter: named by the working directory and the path instead
  assert.equal(execExe('./s.sh', '/bin/busybox', { cwd: '/tmp', newArgv: ['/bin/sh', './s.sh'] }), '/tmp/s.sh');
  assert.equal(execExe('../s.sh', '/bin/busybox', { cwd: '/tmp/d', newArgv: ['/bin/sh', '-e', '../s.sh', 'a'] }), '/tmp/s.sh');
  assert.equal(execExe('./true', '/tmp/true', { cwd: '/tmp', newArgv: ['./true'] }), '/tmp/true'); // a binary: the mapped file
  assert.equal(execExe('bin/x', '', { cwd: '/', newArgv: ['x'] }), '/bin/x');
  assert.equal(execExe(undefined, ''), '');
});

test('exePath: a path the plugin had to cut (record full, too deep, unreadable component) names nothing, never a shorter path', () => {
  assert.equal(exePath(['ls', 'bin', 'usr']), '/usr/bin/ls');
  assert.equal(exePath(['ls', 'bin', PATH_CUT]), '');
  assert.equal(execExe('/opt/deep/x', exePath(['x', PATH_CUT])), '/opt/deep/x'); // the passed path then
});

test('stop() twice: the second call waits for the guest to be shut down, as the first does (a CLI that exits after it leaves nothing behind)', async () => {
  let finished = false;
  const c = new VmiCollector({
    open: async () => Readable.from([]),
    stop: async () => { await new Promise((r) => setTimeout(r, 50)); finished = true; },
  });
  await c.start();
  void c.stop();
  await c.stop();
  assert.equal(finished, true);
});
