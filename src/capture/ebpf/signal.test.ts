// Calls a signal cut into, on the real probe: each event says what the program saw (EINTR, or
// the call made again), not the kernel-internal restart code the call exited with. A helper
// process waits until the traced program sleeps in the call (/proc/PID/syscall), then signals it.
// Needs root and `make setup`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExitEvent, SyscallEvent, TraceEvent } from '../events.js';
import { isRestartCode } from '../signals.js';
import { defaultLoaderPath, EbpfCollector } from './collector.js';
import { ProbeDecoder } from './decode.js';
import { capture, ia32Syscalls, makeCgroup, runInCgroup } from './testutil.js';

const PY = `
import ctypes, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGALRM, lambda *a: None)  # a handler without SA_RESTART
me = os.getpid()

def wait_for(nr, state):
    # the program is inside call nr (orig_ax, kept while it is stopped too) and in this state
    for _ in range(2000):
        try:
            f = open('/proc/%d/syscall' % me).read().split()
            st = open('/proc/%d/stat' % me).read().rsplit(')', 1)[1].split()[0]
        except OSError:
            f, st = [], ''
        if f[:1] == [str(nr)] and st == state:
            return
        time.sleep(0.005)
    os._exit(9)

def blocked(nr, state='S'):
    return lambda: wait_for(nr, state)

def kill(sig):
    return lambda: (os.kill(me, sig), time.sleep(0.2))  # let it act before looking again

def helper(*steps):
    pid = os.fork()
    if pid == 0:
        for s in steps:
            s()
        os._exit(0)
    return pid

srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(8)
port = srv.getsockname()[1]
def connect():
    socket.create_connection(('127.0.0.1', port)).close()

def accept(*steps):
    h = helper(*steps)
    c, _ = srv.accept()
    c.close()
    os.waitpid(h, 0)

ACCEPT4, CLOCK_NANOSLEEP, PAUSE32 = 288, 230, 29
# accept4 (ERESTARTSYS): a handler without SA_RESTART, with it, then a stop and continue
accept(blocked(ACCEPT4), kill(signal.SIGALRM), blocked(ACCEPT4), connect)
signal.siginterrupt(signal.SIGALRM, False)
accept(blocked(ACCEPT4), kill(signal.SIGALRM), blocked(ACCEPT4), connect)
signal.siginterrupt(signal.SIGALRM, True)
accept(blocked(ACCEPT4), kill(signal.SIGSTOP), blocked(ACCEPT4, 'T'), kill(signal.SIGCONT), blocked(ACCEPT4), connect)

# a relative nanosleep (ERESTART_RESTARTBLOCK): a handler, then a stop and continue
class timespec(ctypes.Structure):
    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
def nanosleep(s):
    return libc.nanosleep(ctypes.byref(timespec(s, 0)), None)
h = helper(blocked(CLOCK_NANOSLEEP), kill(signal.SIGALRM))
print('nanosleep', nanosleep(10), ctypes.get_errno(), flush=True)
os.waitpid(h, 0)
h = helper(blocked(CLOCK_NANOSLEEP), kill(signal.SIGSTOP), blocked(CLOCK_NANOSLEEP, 'T'), kill(signal.SIGCONT))
print('nanosleep', nanosleep(1), flush=True)
os.waitpid(h, 0)

# i386 pause (ERESTARTNOHAND), through int 0x80: a stop and continue, then the handler
if sys.argv[1] == 'i386':
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    code = bytes([0xb8, PAUSE32, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 29; int 0x80; ret
    p = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)
    ctypes.memmove(p, code, len(code))
    h = helper(blocked(PAUSE32), kill(signal.SIGSTOP), blocked(PAUSE32, 'T'), kill(signal.SIGCONT), blocked(PAUSE32), kill(signal.SIGALRM))
    print('pause', ctypes.CFUNCTYPE(ctypes.c_int)(p)(), flush=True)
    os.waitpid(h, 0)

# SIGTERM without a handler kills the program inside accept4: the call never returns
helper(blocked(ACCEPT4), kill(signal.SIGTERM))
srv.accept()
`;

test('a call a signal cut into reports what the program saw: EINTR, or the call made again; none when the signal killed', { timeout: 60_000 }, async () => {
  const ia32 = ia32Syscalls().ok;
  const cg = makeCgroup('signal');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-signal-'));
  const raw: Buffer[] = [];
  try {
    const script = join(dir, 'signalled.py');
    writeFileSync(script, PY);
    const { events, stats, result } = await capture({ cgroupPath: cg.path, rawSink: (b) => raw.push(Buffer.from(b)) },
      () => runInCgroup(cg.path, `exec /usr/bin/python3 ${script} ${ia32 ? 'i386' : 'x86_64'}`));
    assert.equal(result.code, null, `killed by SIGTERM: ${result.stderr}`);
    assert.equal(result.stdout, `nanosleep -1 4\nnanosleep 0\n${ia32 ? 'pause -4\n' : ''}`);
    assert.equal(stats.lost, 0);
    const main = result.pid;
    const mine = events.filter((e) => e.tid === main);
    const show = (e: SyscallEvent): string => `${e.abi === 'i386' ? 'i386:' : ''}${e.name} ${e.signal ?? '-'} ${e.ret === null ? 'null' : e.ret >= 0 ? 'ok' : e.ret}`;
    const calls = mine.filter((e): e is SyscallEvent => e.type === 'syscall'
      && ['accept4', 'clock_nanosleep', 'restart_syscall', 'pause'].includes(e.name));
    assert.deepEqual(calls.map(show), [
      // a handler without SA_RESTART: EINTR, then Python calls accept4 again (PEP 475)
      'accept4 interrupted -4', 'accept4 - ok',
      // SA_RESTART: the kernel makes the call again once the handler returns
      'accept4 restarted null', 'accept4 - ok',
      // a stop and continue: no handler ran, the kernel makes it again
      'accept4 restarted null', 'accept4 - ok',
      // ERESTART_RESTARTBLOCK: EINTR for a handler; restart_syscall after a stop and continue
      'clock_nanosleep interrupted -4',
      'clock_nanosleep restarted null', 'restart_syscall - ok',
      ...(ia32 ? ['i386:pause restarted null', 'i386:pause interrupted -4'] : []),
      // killed inside the call: no result, no signal mark
      'accept4 - null',
    ]);
    // What the thread did next: the call made again (restart_syscall for ERESTART_RESTARTBLOCK),
    // right away without a handler, after the handler's return (rt_sigreturn) with one.
    const name = (n: TraceEvent | undefined): string => n?.type === 'syscall' ? `${n.name}${n.signal ? ` ${n.signal}` : ''}` : `${n?.type}`;
    const after = mine.flatMap((e, i) => e.type === 'syscall' && e.signal === 'restarted'
      ? [name(mine[i + 1]) === 'rt_sigreturn' ? `rt_sigreturn > ${name(mine[i + 2])}` : name(mine[i + 1])] : []);
    assert.deepEqual(after, ['rt_sigreturn > accept4', 'accept4', 'restart_syscall', ...(ia32 ? ['pause interrupted'] : [])]);
    const exit = mine.find((e): e is ExitEvent => e.type === 'exit');
    assert.deepEqual([exit?.code, exit?.signal], [143, 15]);
    // No kernel-internal code is left in the stream, and the stream is in seq order.
    assert.deepEqual(events.filter((e) => e.type === 'syscall' && isRestartCode(e.ret)), []);
    assert.ok(events.every((e, i) => e.seq === i + 1));

    // The same bytes cut anywhere decode to the same events (a held call waits across chunks).
    const all = Buffer.concat(raw);
    for (const size of [1, 113]) {
      const d = new ProbeDecoder();
      const got: TraceEvent[] = [];
      for (let i = 0; i < all.length; i += size) got.push(...d.push(all.subarray(i, i + size)));
      assert.deepEqual(got, events, `chunks of ${size}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});

/** Waits until `pid` is in state `state` inside system call `nr` (/proc/PID/syscall). */
async function inCall(pid: number, nr: number, state: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    try {
      const call = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0];
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (call === String(nr) && st === state) return;
    } catch { /* not there yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${pid} never got to state ${state} in call ${nr}`);
}

test('a call held for a signal\'s outcome when the probe dies is released as the probe reported it, not lost', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('held');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-held-'));
  // the loader, through a wrapper that says its pid
  const loader = join(dir, 'loader.sh');
  writeFileSync(loader, `#!/bin/sh\necho $$ > ${dir}/pid\nexec ${defaultLoaderPath()} "$@"\n`, { mode: 0o755 });
  const c = new EbpfCollector({ cgroupPath: cg.path, loaderPath: loader });
  const work = spawn('sh', ['-c', `echo $$ > ${cg.path}/cgroup.procs && exec python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.accept()"`], { stdio: 'ignore' });
  try {
    await c.start();
    const events: TraceEvent[] = [];
    let failure: unknown;
    const consumer = (async () => {
      try {
        for await (const b of c.events()) events.push(...b);
      } catch (e) {
        failure = e;
      }
    })();
    // blocked in accept4, then stopped: the call exited with ERESTARTSYS, its outcome is open
    await inCall(work.pid!, 288, 'S');
    process.kill(work.pid!, 'SIGSTOP');
    await inCall(work.pid!, 288, 'T');
    await new Promise((r) => setTimeout(r, 300)); // the loader drains the ring every 20 ms
    process.kill(Number(readFileSync(join(dir, 'pid'), 'utf8')), 'SIGKILL');
    await consumer;
    assert.equal((failure as { code?: string } | undefined)?.code, 'CAPTURE_FAILED');
    const accepts = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.tid === work.pid && e.name === 'accept4');
    assert.deepEqual(accepts.map((e) => [e.ret, e.signal]), [[-512, undefined]]);
    assert.ok(events.every((e, i) => e.seq === i + 1));
  } finally {
    work.kill('SIGKILL');
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});
