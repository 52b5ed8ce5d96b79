// Program naming in a real guest: every process that runs is named by the file it runs, whether
// it exec'd by a path, by a relative path, as /proc/self/exe (busybox), or was exec'd by the
// kernel itself (init, modprobe); programs on other mounts (the tmpfs /tmp) keep their mount's path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { monitorGuest } from '../../src/vm/monitor.js';
import { buildInitramfs, PLUGIN_PATH } from '../../src/vm/guest.js';
import { captureInVm } from './capture.js';
import { defaultKernel } from '../../src/vmi/profile.js';
import { SemanticState } from '../../src/semantics/state.js';
import type { ExecEvent, SyscallEvent, TraceEvent } from '../../src/capture/events.js';

const SVC = `#!/bin/sh
cp /bin/busybox /tmp/true
cp /bin/busybox /tmp/sh
printf '#!/bin/sh\\ntrue\\n' > /tmp/s.sh
chmod +x /tmp/s.sh
cd /tmp
while true; do
  ./true
  ./s.sh
  /tmp/sh -c 'sleep 0.05; true'
  read -r up rest < /proc/uptime
  sleep 0.05
done
`;

test('guest programs are named by the file that runs: /proc/self/exe, relative, kernel-exec\'d, other mounts', { timeout: 180_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(existsSync(PLUGIN_PATH), `QEMU plugin not built at ${PLUGIN_PATH}: run make setup`);
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-naming-'));
  try {
    writeFileSync(join(dir, 'svc.sh'), SVC, { mode: 0o755 });
    const initrd = buildInitramfs(dir, join(dir, 'svc.sh'), [], 600);
    const g = monitorGuest({ kernel, qemuArgs: ['-nodefaults', '-display', 'none', '-m', '256', '-no-reboot', '-nic', 'none',
      '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 quiet panic=-1 rdinit=/init', '-serial', `file:${join(dir, 'console.log')}`] });
    await g.collector.start();
    const events: TraceEvent[] = [];
    let loops = 0;
    const timer = setTimeout(() => void g.collector.stop(), 120_000);
    for await (const batch of g.collector.events()) {
      events.push(...batch);
      loops += batch.filter((e) => e.type === 'exec' && e.argv[0] === 'sleep' && e.exe === '/tmp/sh').length;
      if (loops >= 3) void g.collector.stop();
    }
    clearTimeout(timer);
    await g.done;
    assert.ok(loops >= 3, `the guest loop ran ${loops} time(s) before the guest stopped`);
    assert.equal(g.collector.stats().lost, 0);

    const execs = events.filter((e): e is ExecEvent => e.type === 'exec');
    for (const e of execs) assert.match(e.exe, /^\/(?!proc\/)[^\0]+$/, `exec of pid ${e.pid} (${e.comm}) named '${e.exe}'`);
    // busybox re-executing itself: the exec names the file, the execve call keeps what was passed
    const sleepExec = execs.find((e) => e.argv[0] === 'sleep' && e.exe === '/tmp/sh');
    assert.ok(sleepExec);
    const sleepCall = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.pid === sleepExec.pid && e.ret === 0);
    assert.deepEqual([sleepCall?.path, sleepCall?.argv], ['/proc/self/exe', ['sleep', '0.05']]);
    assert.ok(execs.some((e) => e.argv[0] === 'sleep' && e.exe === '/bin/busybox'), 'sleep under /bin/sh is /bin/busybox');
    // a relative path on the tmpfs /tmp: the mount's path is kept (not /true)
    const rel = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.path === './true' && e.ret === 0);
    assert.ok(rel, 'no execve of ./true');
    assert.equal(execs.find((e) => e.pid === rel.pid && e.seq > rel.seq)?.exe, '/tmp/true');
    // a script by a relative path: the kernel maps its interpreter; the exec names the script, placed in the working directory
    const script = execs.find((e) => e.argv[1] === './s.sh');
    assert.deepEqual([script?.exe, script?.argv], ['/tmp/s.sh', ['/bin/sh', './s.sh']]);
    // exec'd by the kernel (no execve call): init (the /init script) and the modprobe usermode helper
    const init = execs.find((e) => e.pid === 1);
    assert.deepEqual([init?.exe, init?.argv], ['/bin/busybox', ['/bin/sh', '/init']]);
    assert.ok(execs.some((e) => e.comm === 'modprobe' && e.exe === '/bin/busybox' && e.argv[0] === '/sbin/modprobe'));
    assert.match(g.collector.stats().notes.join('\n'), /\d+ process\(es\) exec'd by the kernel/);

    // Every process that made a call has a program: through the semantic layer (what the models key on).
    const sem = new SemanticState({});
    const bad = new Map<number, string>();
    const firstSeq = new Map<number, number>();
    for (const e of events) {
      if (!firstSeq.has(e.pid)) firstSeq.set(e.pid, e.seq);
      const x = sem.apply(e);
      if (e.type === 'syscall' && !/^\/(?!proc\/)/.test(x.proc.exe)) bad.set(e.pid, `${x.proc.exe || "''"} (${e.comm})`);
    }
    assert.deepEqual([...bad], [], 'processes without a program');
    // A child is announced before its own calls, even when it ran before its parent's fork returned (vfork).
    for (const f of events) {
      if (f.type !== 'fork' || f.thread) continue;
      const first = firstSeq.get(f.childPid);
      assert.ok(first === undefined || f.seq < first, `fork of ${f.childPid} (seq ${f.seq}) after the child's first event (seq ${first})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// fexecve of a memfd: execveat(fd, "", AT_EMPTY_PATH). The file has no path; /proc/PID/exe shows /memfd:NAME.
const MEMFD_C = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  int in = open("/bin/busybox", O_RDONLY), fd = memfd_create("payload", MFD_CLOEXEC);
  char buf[65536]; ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) if (write(fd, buf, (size_t)n) != n) return 1;
  pid_t p = fork();
  if (p == 0) { char *argv[] = { "true", 0 }, *envp[] = { 0 }; fexecve(fd, argv, envp); _exit(127); }
  int st; waitpid(p, &st, 0);
  printf("memfd child=%d status=%d\\n", (int)p, st);
  return 0;
}
`;

/** Compiles C source as a static program, runs it in a TCG guest and returns its events and the run's result. */
async function runGuestProgram(name: string, source: string, ccFlags: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), `sandtrace-${name}-`));
  try {
    writeFileSync(join(dir, `${name}.c`), source);
    const cc = spawnSync('cc', ['-static', '-O1', ...ccFlags, '-o', join(dir, name), join(dir, `${name}.c`)], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc -static failed (run make setup): ${cc.stderr}`);
    return await captureInVm({ sample: join(dir, name), timeout: 30 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a program exec\'d from a memfd is named /memfd:NAME (a pseudo file: its own root)', { timeout: 180_000 }, async () => {
  const { events, res } = await runGuestProgram('memfd', MEMFD_C);
  const m = /memfd child=(\d+) status=0/.exec(res.output);
  assert.ok(m, `the sample did not run its memfd child: ${res.output}`);
  const call = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execveat' && e.pid === Number(m[1]));
  // the path passed is empty; the call reports the kernel's name for it (AT_EXECFN), the exec the file
  assert.match(call?.path ?? '', /^\/dev\/fd\/\d+$/);
  assert.equal(call?.ret, 0);
  const exec = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === Number(m[1]));
  assert.deepEqual([exec?.exe, exec?.argv], ['/memfd:payload', ['true']]);
});

// The main thread ends with exit (not exit_group) while a worker thread goes on: the process is
// still alive, and its worker's calls are its own, not a new process's.
const MAIN_EXIT_C = `#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static void *worker(void *a) {
  (void)a;
  usleep(300000);
  printf("worker pid=%d\\n", (int)getpid());
  fflush(stdout);
  syscall(SYS_exit_group, 3);
  return 0;
}
int main(void) {
  pthread_t t;
  pthread_create(&t, 0, worker, 0);
  syscall(SYS_exit, 0);
  return 1;
}
`;

test('a main thread that exits while a worker lives on ends a thread, not the process: one process, one exec, exit at exit_group', { timeout: 180_000 }, async () => {
  const { events, res } = await runGuestProgram('mainexit', MAIN_EXIT_C, ['-pthread']);
  const m = /worker pid=(\d+)/.exec(res.output);
  assert.ok(m, `the worker did not run: ${res.output}`);
  const pid = Number(m[1]);
  const mine = events.filter((e) => e.pid === pid);
  assert.deepEqual(mine.filter((e) => e.type === 'exec').length, 1, 'one exec: the worker is not announced as a new program');
  const exits = mine.filter((e) => e.type === 'exit').map((e) => [e.tid === pid ? 'main' : 'worker', e.type === 'exit' && e.thread, e.type === 'exit' && e.code]);
  assert.deepEqual(exits, [['main', true, 0], ['worker', false, 3]]);
  // the worker's calls after the main thread's exit belong to the process, and reach the console
  assert.ok(mine.some((e) => e.type === 'syscall' && e.name === 'write' && e.tid !== pid));
});
