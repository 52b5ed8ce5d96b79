// i386 system calls in a TCG guest: int $0x80 from a 64-bit program (the evasion: calls the
// 64-bit hook never sees) and a real i386 program entering through the vDSO's fast path
// (syscall or sysenter, do_fast_syscall_32). Both must show up as abi 'i386' events with i386
// names, paths, argv, addresses and return values (a socketcall unpacked into the direct call),
// and their execs as execs of the program, saying which ABI the new image has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import type { SyscallEvent, ExecEvent, ForkEvent, ExitEvent } from '../../src/capture/events.js';

const INT80_C = fileURLToPath(new URL('./compat-int80.c', import.meta.url));
const FAST32_C = fileURLToPath(new URL('./compat-fast32.c', import.meta.url));

function build(dir: string): string {
  const fast = join(dir, 'fast32');
  let r = spawnSync('cc', ['-m32', '-nostdlib', '-static', '-fno-pie', '-no-pie', '-ffreestanding', '-fno-stack-protector',
    '-fno-asynchronous-unwind-tables', '-O1', '-o', fast, FAST32_C], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc -m32 failed: ${r.stderr}`);
  const bytes = readFileSync(fast);
  writeFileSync(join(dir, 'fast32.h'), `static const unsigned char fast32[] = {${[...bytes].join(',')}};\nstatic const unsigned int fast32_len = ${bytes.length};\n`);
  const exe = join(dir, 'int80');
  // static and not PIE: string literals and the argv arrays sit below 4 GiB, where 32-bit pointers reach
  r = spawnSync('cc', ['-O1', '-static', '-no-pie', '-I', dir, '-o', exe, INT80_C], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc -static failed: ${r.stderr}`);
  return exe;
}

test('i386 calls in the guest: int $0x80 from a 64-bit program and the fast path of an i386 program', { timeout: 300_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat?.fast, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part with the fast path');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vm32-'));
  try {
    const { events, res, stats } = await captureInVm({ sample: build(dir), timeout: 60 });
    const m = /int80 pid=(\d+) fd=(\d+) wrote=(-?\d+) enoent=(-?\d+) symlink=(-?\d+) true=(\d+):(\d+) fast=(\d+):(\d+) fast64=(\d+):(\d+)/.exec(res.output);
    assert.ok(m, `no report from the sample: ${res.output}`);
    const [pid, fd, wrote, enoent, symlink, truePid, trueRc, fastPid, fastRc, fast64Pid, fast64Rc] = m.slice(1).map(Number) as number[];
    // what the guest itself saw: every call worked
    // (the second run of the i386 program finds its directory made: mkdir fails, it exits 6)
    assert.deepEqual([wrote, enoent, symlink, trueRc, fastRc, fast64Rc], [6, -2, 0, 0, 5, 6]);
    assert.equal(res.sampleExit, 7);
    const via = /via (syscall|sysenter|int80)/.exec(res.output)?.[1];
    assert.ok(via === 'syscall' || via === 'sysenter', `the i386 vDSO should enter by syscall or sysenter, not ${via}`);
    assert.equal(stats.lost, 0);

    const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall');
    const of = (p: number | undefined) => calls.filter((e) => e.pid === p && e.abi === 'i386').map((e) =>
      [e.name, e.nr, e.path ?? null, e.path2 ?? null, e.ret]);
    // the 64-bit program's int $0x80 calls, in order, i386 names and numbers, paths and return values
    assert.deepEqual(of(pid), [
      ['open', 5, '/work/i386.txt', null, fd],
      ['write', 4, null, null, 6],
      ['close', 6, null, null, 0],
      ['open', 5, '/nonexistent/i386', null, -2],
      ['symlink', 83, '/work/i386.txt', '/work/i386.lnk', 0], // target, then the link (as the eBPF probe)
      ['fork', 2, null, null, truePid],
      ['wait4', 114, null, null, truePid],
      ['fork', 2, null, null, fastPid],
      ['wait4', 114, null, null, fastPid],
      ['exit_group', 252, null, null, null],
    ]);
    const open = calls.find((e) => e.pid === pid && e.name === 'open' && e.abi === 'i386');
    assert.deepEqual(open?.args.slice(1, 3), [0o1101, 0o644]); // O_WRONLY|O_CREAT|O_TRUNC, mode
    // the 64-bit calls of the same process stay x86_64
    assert.ok(calls.some((e) => e.pid === pid && e.abi === 'x86_64' && e.name === 'openat' && e.path === '/work/fast32'));
    assert.ok(!calls.some((e) => e.abi === 'x86_64' && e.path === '/work/i386.txt'), 'an i386 call was decoded as x86_64');

    // forks through i386 fork: the children are the sample's
    const forks = events.filter((e): e is ForkEvent => e.type === 'fork' && e.pid === pid).map((e) => [e.childPid, e.thread]);
    assert.deepEqual(forks, [[truePid, false], [fastPid, false], [fast64Pid, false]]);
    // i386 execve: path and argv (an array of 4-byte pointers) at the call, and the exec of that program
    const execve = (p: number | undefined) => calls.find((e) => e.pid === p && e.name === 'execve');
    assert.deepEqual([execve(truePid)?.abi, execve(truePid)?.nr, execve(truePid)?.path, execve(truePid)?.argv, execve(truePid)?.ret],
      ['i386', 11, '/bin/true', ['true', 'from-int80'], 0]);
    assert.deepEqual([execve(fastPid)?.abi, execve(fastPid)?.path, execve(fastPid)?.argv, execve(fastPid)?.ret],
      ['i386', '/work/fast32', ['fast32', 'x'], 0]);
    // a 64-bit execve of the i386 program: an x86_64 call that returns as "11" (the kernel's i386 execve number)
    assert.deepEqual([execve(fast64Pid)?.abi, execve(fast64Pid)?.nr, execve(fast64Pid)?.path, execve(fast64Pid)?.argv, execve(fast64Pid)?.ret],
      ['x86_64', 59, '/work/fast32', ['fast32', 'y'], 0]);
    assert.ok(!calls.some((e) => e.pid === fast64Pid && e.name === 'munmap'), 'the exec return was taken for a munmap');
    // each exec says which ABI the new image has, whichever ABI the execve was made in
    const execs = events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => [e.pid, e.exe, e.argv, e.abi]);
    assert.deepEqual(execs, [[pid, '/sample/int80', ['/sample/int80'], 'x86_64'], [truePid, '/bin/true', ['true', 'from-int80'], 'x86_64'],
      [fastPid, '/work/fast32', ['fast32', 'x'], 'i386'], [fast64Pid, '/work/fast32', ['fast32', 'y'], 'i386']]);
    // /bin/true is a 64-bit program: after the i386 execve its calls are x86_64
    assert.ok(calls.some((e) => e.pid === truePid && e.abi === 'x86_64' && e.name === 'exit_group'));

    // the i386 program: every call after its exec is i386, through the vDSO (the fast path) and one int $0x80
    const fastCalls = calls.filter((e) => e.pid === fastPid && e.seq > (execve(fastPid)?.seq ?? Infinity));
    // (sendto's and connect's results depend on the guest's loopback: only that they returned)
    assert.deepEqual(fastCalls.map((e) => [e.abi, e.name, e.path ?? null, e.name === 'sendto' || e.name === 'connect' ? typeof e.ret : e.ret]), [
      ['i386', 'write', null, `via ${via}\n`.length],
      ['i386', 'open', '/work/fast32.txt', 3],
      ['i386', 'write', null, 5],
      ['i386', 'close', null, 0],
      ['i386', 'socket', null, 3],
      ['i386', 'sendto', null, 'number'],
      ['i386', 'connect', null, 'number'], // socketcall(SYS_CONNECT), unpacked
      ['i386', 'mkdir', '/work/dir32', 0],
      ['i386', 'exit_group', null, null],
    ]);
    const sendto = fastCalls.find((e) => e.name === 'sendto');
    // the 6th argument (addrlen) is on the user stack on the fast path: read there at entry
    assert.equal(sendto?.args[5], 16);
    assert.deepEqual(sendto?.addr, { family: 'inet', address: '127.0.0.1', port: 9 });
    assert.equal(fastCalls.find((e) => e.name === 'mkdir')?.args[1], 0o755);
    // the socketcall through the fast path: the direct call, its arguments and address, as the eBPF probe reports it
    const connect = fastCalls.find((e) => e.name === 'connect');
    assert.deepEqual([connect?.nr, connect?.via, connect?.args[0], connect?.args[2], connect?.addr],
      [362, 'socketcall', 3, 16, { family: 'inet', address: '127.0.0.1', port: 9 }]);
    const exits = events.filter((e): e is ExitEvent => e.type === 'exit' && !e.thread).map((e) => [e.pid, e.code]);
    assert.deepEqual(exits.sort(), [[pid, 7], [truePid, 0], [fastPid, 5], [fast64Pid, 6]].sort());
    // the third child runs the same i386 calls
    assert.deepEqual(calls.filter((e) => e.pid === fast64Pid && e.abi === 'i386').map((e) => [e.name, e.path ?? null]),
      [['write', null], ['open', '/work/fast32.txt'], ['write', null], ['close', null], ['socket', null], ['sendto', null],
        ['connect', null], ['mkdir', '/work/dir32'], ['exit_group', null]]);
    assert.equal(calls.find((e) => e.pid === fast64Pid && e.name === 'mkdir')?.ret, -17); // EEXIST
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
