// Calls a signal interrupts, in a TCG guest. The plugin's return hook runs after the kernel set up
// the handler's frame (ax is then the handler's argument, sp the frame), so the result of a call
// a handler cut short is read from the frame the kernel saved the call's registers in: the event
// says -EINTR, what the program saw, and that a signal interrupted it; a call the kernel makes
// again (SA_RESTART, or no handler: a stop and continue) returned nothing (ret null, 'restarted')
// and the same call made again carries the result. In 64-bit programs (the 64-bit rt_sigframe) and
// in an i386 program (the ia32 rt_sigframe and sigframe), through the vDSO's fast path (sysenter or
// syscall) and int $0x80; an address the kernel never wrote (a planted one in an accept4's buffer)
// is not read, whichever way the call came back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import type { SyscallEvent } from '../../src/capture/events.js';

const SRC64 = fileURLToPath(new URL('./signal.c', import.meta.url));
const SRC32 = fileURLToPath(new URL('./signal32.c', import.meta.url));
const PORT = 39200; // the i386 program's listener on the guest's loopback

function build(dir: string): string {
  const p32 = join(dir, 'sig32');
  let r = spawnSync('cc', ['-m32', '-nostdlib', '-static', '-fno-pie', '-no-pie', '-ffreestanding', '-fno-stack-protector',
    '-fno-asynchronous-unwind-tables', '-O1', `-DPORT=${PORT}`, '-o', p32, SRC32], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc -m32 failed: ${r.stderr}`);
  const bytes = readFileSync(p32);
  writeFileSync(join(dir, 'signal32.h'), `static const unsigned char sig32[] = {${[...bytes].join(',')}};\nstatic const unsigned int sig32_len = ${bytes.length};\n`);
  const exe = join(dir, 'signal');
  r = spawnSync('cc', ['-O1', '-static', '-I', dir, `-DPORT=${PORT}`, '-o', exe, SRC64], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc -static failed: ${r.stderr}`);
  return exe;
}

const kv = (line: string) => Object.fromEntries(line.trim().split(' ').slice(1).map((x) => x.split('=') as [string, string]));

test('a call a signal interrupts: -EINTR from the handler\'s frame, or no result when the kernel makes it again; 64-bit, i386 fast path and int $0x80', { timeout: 300_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat?.fast, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part with the fast path');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmsig-'));
  try {
    const { events, res, stats } = await captureInVm({ sample: build(dir), timeout: 60 });
    assert.equal(res.sampleExit, 0, res.output);
    assert.equal(stats.lost, 0);
    const l64 = /^sig64 .*$/m.exec(res.output)?.[0], l32 = /^sig32 .*$/m.exec(res.output)?.[0], dl = /^dialer .*$/m.exec(res.output)?.[0];
    assert.ok(l64 && l32 && dl, `no report from the sample: ${res.output}`);
    const g64 = kv(l64), g32 = kv(l32), gd = kv(dl);
    // what the guest saw: EINTR (errno 4) without SA_RESTART and for nanosleep, the byte the handler
    // fed with SA_RESTART; the stopped child's read, and the i386 calls, likewise
    assert.deepEqual([g64['r1'], g64['r2'], g64['r3'], g64['child']?.split(':')[1]], ['-1:4', '1', '-1:4', '0']);
    const [f32, fport] = (g32['f'] ?? '').split(':').map(Number);
    assert.deepEqual([g32['a'], g32['b'], g32['c'], g32['c2'], g32['d'], g32['e']], ['-4', '-4', '1', '1', '-4', '-4:13'], l32);
    assert.ok(f32! > 0 && fport === Number(gd['port']), l32); // the dialer's address, written by the accept4 made again
    assert.ok(g32['via'] === 'syscall' || g32['via'] === 'sysenter', `the i386 vDSO should enter by syscall or sysenter, not ${g32['via']}`);

    const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall');
    const pid = Number(g64['pid']), child = Number(g64['child']?.split(':')[0]), pid32 = Number(g32['pid']);
    const show = (e: SyscallEvent) => [e.name, e.ret, e.signal ?? null];
    // 64-bit: the pipe's reads (fd 3; the /proc reads of the wait are others), and nanosleep
    const mine = calls.filter((e) => e.pid === pid && e.abi === 'x86_64' && ((e.name === 'read' && e.args[0] === 3) || e.name === 'nanosleep'));
    assert.deepEqual(mine.map(show), [
      ['read', -4, 'interrupted'], // no SA_RESTART: not the handler's ax (0)
      ['read', null, 'restarted'], // SA_RESTART: not the call's number (0, read) ...
      ['read', 1, null], // ... the same call made again, after the handler fed the pipe
      ['nanosleep', -4, 'interrupted'], // restart_syscall's case: EINTR even with SA_RESTART
    ]);
    // the handler ran between the restarted read and the one made again: its write, then rt_sigreturn
    const [, again, made] = mine;
    assert.deepEqual(calls.filter((e) => e.pid === pid && e.seq > again!.seq && e.seq < made!.seq).map((e) => [e.name, e.ret]),
      [['write', 1], ['rt_sigreturn', 0]]);
    // stopped and continued in its read (no handler): made again, then the byte
    assert.deepEqual(calls.filter((e) => e.pid === child && e.name === 'read').map(show), [['read', null, 'restarted'], ['read', 1, null]]);

    // i386: fast path unless said otherwise
    const c32 = calls.filter((e) => e.pid === pid32 && e.abi === 'i386' && (e.name === 'read' || e.name === 'accept4'));
    const lo = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
    assert.deepEqual(c32.map((e) => [...show(e), e.addr ?? null]), [
      // stopped and continued in accept4 (no handler): the kernel makes it again by the int $0x80
      // before the vDSO's landing pad, ax = the call's number; the planted address is not read
      ['accept4', null, 'restarted', null],
      ['accept4', f32, null, lo(fport!)], // made again (int $0x80): the dialer
      ['read', -4, 'interrupted', null], // SA_SIGINFO: the ia32 rt_sigframe
      ['read', -4, 'interrupted', null], // no SA_SIGINFO: the ia32 sigframe
      ['read', null, 'restarted', null], // SA_RESTART, ia32 sigframe ...
      ['read', 1, null, null], // ... made again (int $0x80)
      ['read', null, 'restarted', null], // SA_RESTART, ia32 rt_sigframe
      ['read', 1, null, null],
      ['read', -4, 'interrupted', null], // int $0x80
      ['accept4', -4, 'interrupted', null], // a handler cut it short: nothing written, the planted address is not read
    ]);
    assert.ok(!JSON.stringify(events).includes('10.11.12.13'), 'a planted address was reported');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
