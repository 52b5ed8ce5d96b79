// Boots Debian's kernel under TCG with the capture plugin and checks that the events name the
// sample's processes with the pids, parents and programs the guest itself reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm, assertTcg, buildInitramfs, PLUGIN_PATH } from '../../src/vm/guest.js';
import { captureInVm } from './capture.js';
import type { TraceEvent, SyscallEvent, ExecEvent, ForkEvent } from '../../src/capture/events.js';
import { isSandtraceError } from '../../src/errors.js';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createVmSandbox } from '../../src/vm/sandbox.js';

const SAMPLE = fileURLToPath(new URL('./sample-spawn.sh', import.meta.url));

test('a sample in a TCG guest: processes, parents, exe paths, file and exec events', { timeout: 240_000 }, async () => {
  assert.ok(readdirSync(join(PLUGIN_PATH, '..')).includes('libsandtrace.so'), `QEMU plugin not built at ${PLUGIN_PATH}: run make setup`);
  const out = mkdtempSync(join(tmpdir(), 'sandtrace-vmtest-'));
  let workDir = '';
  try {
    const vm = runInVm({ sample: SAMPLE, timeout: 30, outDir: out });
    workDir = vm.workDir;
    assert.ok(existsSync(workDir));
    await vm.collector.start();
    const events: TraceEvent[] = [];
    for await (const b of vm.collector.events()) events.push(...b);
    const res = await vm.done;
    assert.equal(res.sampleExit, 0);
    assert.equal(res.timedOut, false);
    const con = readFileSync(res.consolePath, 'utf8');
    // What the guest itself says about its processes.
    const s = /sample pid=(\d+) ppid=(\d+)/.exec(con), c = /child pid=(\d+) ppid=(\d+)/.exec(con);
    assert.ok(s && c, `console lacks the sample's own report:\n${con.slice(-2000)}`);
    const [samplePid, samplePpid, childPid, childPpid] = [s[1], s[2], c[1], c[2]].map(Number) as [number, number, number, number];
    assert.equal(childPpid, samplePid);

    // Only the sample's tree: no boot noise, no init.
    // (plus nc, a third process the sample spawns)
    const pids = new Set(events.map((e) => e.pid));
    assert.equal(pids.size, 3);
    assert.ok(pids.has(samplePid) && pids.has(childPid) && !pids.has(1));
    for (let i = 1; i < events.length; i++) assert.ok((events[i]?.seq ?? 0) > (events[i - 1]?.seq ?? 0));
    assert.equal(vm.collector.stats().lost, 0);
    assert.equal(vm.collector.stats().backend, 'vmi');

    const execs = events.filter((e): e is ExecEvent => e.type === 'exec');
    const ncPid = [...pids].find((p) => p !== samplePid && p !== childPid);
    assert.deepEqual(execs.map((e) => [e.pid, e.exe]), [
      [samplePid, '/sample/sample-spawn.sh'], [childPid, '/bin/sh'], [childPid, '/bin/busybox'],
      [ncPid, '/bin/busybox'], [samplePid, '/bin/ls']]);
    // busybox re-executes itself as /proc/self/exe: the exec names the file (mm->exe_file), the call keeps what was passed
    const ncExecve = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve' && e.pid === ncPid && e.ret === 0);
    assert.deepEqual([ncExecve?.path, ncExecve?.argv], ['/proc/self/exe', ['nc', '-w', '1', '127.0.0.1', '9']]);
    assert.deepEqual(execs[4]?.argv, ['/bin/ls', '/work']);
    assert.equal(execs[4]?.comm, 'ls');
    assert.ok(execs.every((e) => e.uid === 0), 'exec uid (task->cred->uid) should be root'); 
    assert.deepEqual(execs[3]?.argv, ['nc', '-w', '1', '127.0.0.1', '9']);
    // exec events carry the kernel's argv (the script's interpreter first); the execve call what was passed
    assert.deepEqual(execs[0]?.argv, ['/bin/sh', '/sample/sample-spawn.sh']);
    const firstExecve = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'execve');
    assert.deepEqual(firstExecve?.argv, ['/sample/sample-spawn.sh']);
    const fork = events.find((e): e is ForkEvent => e.type === 'fork' && e.childPid === childPid);
    assert.ok(fork, 'no fork event for the child');
    assert.equal(fork.pid, samplePid);
    assert.equal(fork.thread, false);

    const opens = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'openat' && e.path === '/work/out.txt');
    const write = opens.find((e) => e.pid === samplePid && ((e.args[2] ?? 0) & 0o100) !== 0); // O_CREAT
    assert.ok(write && (write.ret ?? -1) >= 0, 'no successful openat(O_CREAT) of /work/out.txt by the sample');
    assert.ok(opens.some((e) => e.pid === childPid && e.comm === 'cat'), 'cat (the child) did not read /work/out.txt');
    assert.ok(events.some((e) => e.type === 'syscall' && e.name === 'openat' && e.path === '/work/copy.txt' && e.pid === childPid));
    assert.ok(events.some((e) => e.type === 'exit' && e.pid === childPid && e.code === 0));
    const conn = events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'connect');
    assert.deepEqual(conn?.addr, { family: 'inet', address: '127.0.0.1', port: 9 });

    // Read from guest memory through the profile's offsets (task_struct.real_parent/comm,
    // mm->exe_file dentry walk): matches what the guest reported.
    const procs = new Map(vm.collector.processes().map((p) => [p.pid, p]));
    assert.equal(procs.get(samplePid)?.ppid, samplePpid);
    assert.equal(procs.get(childPid)?.ppid, samplePid);
    assert.equal(procs.get(samplePid)?.comm, 'ls');
    assert.equal(procs.get(childPid)?.comm, 'cat');
    assert.equal(procs.get(samplePid)?.exe, '/bin/busybox'); // /bin/ls is a symlink to busybox
    assert.ok(vm.collector.stats().notes.some((n) => /KASLR slide 0x[0-9a-f]+/.test(n)));
    // What the guest reported back: the files the sample left and its output.
    const hello = createHash('sha256').update('hello\n').digest('hex');
    assert.deepEqual(res.files.map((f) => [f.path, f.size, f.sha256]).sort(), [['/work/copy.txt', 6, hello], ['/work/out.txt', 6, hello]]);
    assert.match(res.output, /^sample pid=\d+ ppid=1\nchild pid=/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  // (this run's own directory: other VM runs on the machine may have theirs)
  assert.equal(existsSync(workDir), false, `the guest left temporary files behind: ${workDir}`);
});

test('page-table isolation on (pti=on): the same attribution, read on the kernel page tables', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'sandtrace-vmtest-'));
  try {
    const { events, res } = await captureInVm({ sample: SAMPLE, timeout: 30, outDir: out, kernelArgs: ['pti=on', 'loglevel=7'] });
    const con = readFileSync(res.consolePath, 'utf8');
    assert.match(con, /page tables isolation: enabled/);
    const s = /sample pid=(\d+)/.exec(con), c = /child pid=(\d+)/.exec(con);
    assert.ok(s && c);
    const execs = events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => [e.pid, e.exe]);
    assert.deepEqual([execs[0], execs[1], execs.at(-1)], [[Number(s[1]), '/sample/sample-spawn.sh'], [Number(c[1]), '/bin/sh'], [Number(s[1]), '/bin/ls']]);
    assert.ok(events.some((e) => e.type === 'syscall' && e.path === '/work/out.txt' && e.pid === Number(s[1])));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('VmSandbox follows the Sandbox contract: exit status, timeout, dropped files', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmsb-'));
  try {
    const sample = join(dir, 'drop.sh');
    writeFileSync(sample, '#!/bin/sh\necho dropped > /tmp/payload\nsleep 30\n', { mode: 0o755 });
    const sb = createVmSandbox({ sample, args: [], timeout: 2, rootfs: 'initramfs' });
    const info = await sb.create();
    assert.equal(info.samplePath, '/sample/drop.sh');
    const c = sb.collector();
    await c.start();
    const consume = (async () => { let n = 0; for await (const b of c.events()) n += b.length; return n; })();
    await sb.start();
    const r = await sb.wait();
    await c.stop();
    assert.ok(await consume > 0);
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 9);
    const ch = await sb.changes(dir);
    assert.deepEqual(ch.map((x) => [x.path, x.change, x.size]), [['/tmp/payload', 'created', 8]]);
    await sb.destroy();
    await sb.destroy(); // idempotent
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dynamically linked executable runs in the guest (glibc from the base image) and is traced', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmelf-'));
  try {
    writeFileSync(join(dir, 'elf.c'), `#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
  FILE *f = fopen("/work/elf.txt", "w"); fputs("x", f); fclose(f);
  pid_t p = fork();
  if (p == 0) { execl("/bin/true", "true", (char *)0); _exit(1); }
  int st; waitpid(p, &st, 0);
  printf("elf pid=%d child=%d\\n", (int)getpid(), (int)p);
  return 0;
}
`);
    const cc = spawnSync('cc', ['-O1', '-o', join(dir, 'elf'), join(dir, 'elf.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed (run make setup): ${cc.stderr}`);
    const { events, res, vm } = await captureInVm({ sample: join(dir, 'elf'), timeout: 30 });
    const m = /elf pid=(\d+) child=(\d+)/.exec(res.output);
    assert.ok(m, `no output from the ELF sample: ${res.output}`);
    const execs = events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => [e.pid, e.exe]);
    assert.deepEqual(execs, [[Number(m[1]), '/sample/elf'], [Number(m[2]), '/bin/true']]);
    // The child's "/bin/true" and argv live in .rodata pages it never touched: they come from the
    // retry at the return and from the new image's stack.
    assert.deepEqual(events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => e.argv), [['/sample/elf'], ['true']]);
    assert.ok(events.some((e) => e.type === 'syscall' && e.name === 'openat' && e.path === '/lib/x86_64-linux-gnu/libc.so.6'));
    assert.ok(events.some((e) => e.type === 'syscall' && e.name === 'openat' && e.path === '/work/elf.txt' && (e.ret ?? -1) >= 0));
    assert.equal(vm.collector.processes().find((p) => p.pid === Number(m[1]))?.exe, '/sample/elf');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a VM destroyed before it booted (an error between create() and start()) returns at once, leaving nothing', { timeout: 30_000 }, async () => {
  // (a VmRun outside the sandbox wrapper, to see its directory)
  const vm = runInVm({ sample: SAMPLE, timeout: 5 });
  assert.ok(existsSync(vm.workDir));
  await vm.collector.stop();
  await vm.collector.stop();
  assert.equal(existsSync(vm.workDir), false, 'temp dir left behind');
  await assert.rejects(vm.done, (e: unknown) => isSandtraceError(e) && e.code === 'VM_BOOT_FAILED');
  // the same through the Sandbox contract: destroy() before start() returns at once
  const sb = createVmSandbox({ sample: SAMPLE, args: [], timeout: 5, rootfs: 'initramfs' });
  await sb.create();
  await sb.destroy();
  await sb.destroy();
  await assert.rejects(sb.collector().start(), (e: unknown) => isSandtraceError(e) && e.code === 'VM_BOOT_FAILED');
  await assert.rejects(sb.wait(), (e: unknown) => isSandtraceError(e) && e.code === 'VM_BOOT_FAILED');
});

test('an initramfs rebuilt in the same directory (a second guest of one test) starts afresh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-initrd-'));
  try {
    const first = buildInitramfs(dir, SAMPLE, [], 5);
    const size = statSync(first).size;
    writeFileSync(join(dir, 'root', 'stale'), 'x');
    assert.equal(buildInitramfs(dir, SAMPLE, ['a'], 5), first);
    assert.equal(existsSync(join(dir, 'root', 'stale')), false);
    assert.ok(Math.abs(statSync(first).size - size) < 4096);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('KVM is refused plainly: TCG plugins do not run under it', () => {
  for (const args of [['-enable-kvm'], ['-accel', 'kvm'], ['-machine', 'q35,accel=kvm']]) {
    try { assertTcg(args); assert.fail(`accepted ${args.join(' ')}`); } catch (e) {
      assert.ok(isSandtraceError(e) && e.code === 'VM_UNSUPPORTED', String(e));
    }
  }
  assertTcg(['-accel', 'tcg', '-m', '512']);
});
