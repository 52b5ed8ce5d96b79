// sendmmsg and recvmmsg in a TCG guest, on its own loopback: each message's address, as the VM
// backend reads it (SyscallEvent.addrs), made as direct 64-bit calls, as direct i386 calls (int
// $0x80: sendmmsg, recvmmsg, recvmmsg_time64; struct compat_mmsghdr) and through the i386
// socketcall multiplexer (SYS_SENDMMSG, SYS_RECVMMSG). sendmmsg: each sent message's msg_name, read
// at the call (none for a message without one; the first only when the call failed; a call that
// sent more than 16 gives 16, cut). recvmmsg: the sender the kernel wrote to each received
// message's msg_name, read at the return as the call's pointers and rooms say (none asked for:
// none; a 4-byte room: family and port, cut, and the planted address beyond it never read). A
// recvmsg's or recvmmsg's header in a page not touched at the call is read at the return.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import { factsOf } from '../../src/capture/conformance/facts.js';
import type { SyscallEvent } from '../../src/capture/events.js';

const SRC = fileURLToPath(new URL('./mmsg.c', import.meta.url));
const PORT = 39223; // direct 64-bit calls on PORT..PORT + 3; i386 on PORT + 10..; socketcall on PORT + 20..
const MANY = 20;

test('sendmmsg and recvmmsg in the guest name every message\'s address (x86_64, i386 int $0x80, i386 socketcall)', { timeout: 300_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmmmsg-'));
  try {
    const exe = join(dir, 'mmsg');
    // static and not PIE: the i386 calls' vectors and addresses sit below 4 GiB
    const cc = spawnSync('cc', ['-O1', '-static', '-no-pie', `-DPORT=${PORT}`, '-o', exe, SRC], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
    const { events, res, stats } = await captureInVm({ sample: exe, timeout: 60 });
    assert.equal(res.sampleExit, 0, res.output);
    assert.equal(stats.lost, 0);
    const lo = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
    const CUT4 = { family: 'other', raw: 2 }; // a 4-byte room: family and port, no address
    const ways = [
      { tag: 'mmsg64', base: PORT, abi: 'x86_64', via: null, recv: ['recvmmsg', 'recvmmsg'], nrs: [307, 299] },
      { tag: 'mmsg32', base: PORT + 10, abi: 'i386', via: null, recv: ['recvmmsg', 'recvmmsg_time64'], nrs: [345, 337, 417] },
      { tag: 'mmsgsc', base: PORT + 20, abi: 'i386', via: 'socketcall', recv: ['recvmmsg', 'recvmmsg'], nrs: [345, 337] },
    ] as const;
    for (const w of ways) {
      const m = new RegExp(`^${w.tag} (.*)$`, 'm').exec(res.output);
      assert.ok(m, `no report from ${w.tag}: ${res.output}`);
      const g = Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
      const b = w.base;
      // what the guest saw: unconnected, the nameless third message fails (2 sent); EBADF; connected,
      // 3 sent; 4 received, the cut one's port written and the planted address left; 20 and 20
      assert.deepEqual([g['unc'], g['bad'], g['con'], g['recv'], g['many'], g['manyrecv']],
        ['2', '-9', '3', `4:${b + 2}:${b + 2}:16:${b + 3}:1`, `${MANY}`, `${MANY}:${b + 2}:${b + 3}`], m[0]);
      const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === Number(g['pid']) && e.abi === w.abi &&
        /^(send|recv)mmsg/.test(e.name) && (e.via ?? null) === w.via);
      const row = (e: SyscallEvent) => [e.name, e.ret, e.addrs ?? null, e.truncated ?? null, e.unreadable ?? null, e.addr ?? null];
      assert.deepEqual(calls.map(row), [
        ['sendmmsg', 2, [lo(b), lo(b + 1)], null, null, null], // the two it sent
        ['sendmmsg', -9, [lo(b)], null, null, null], // failed: the first message
        ['sendmmsg', 3, [lo(b), lo(b + 1), null], null, null, null], // connected: the nameless one goes to the peer
        // senders: b + 2 (twice: the second asked for none), then cut at 4 bytes, then b + 3
        [w.recv[0], 4, [lo(b + 2), null, CUT4, lo(b + 3)], ['addr'], null, null],
        ['sendmmsg', MANY, Array.from({ length: 16 }, () => lo(b + 1)), ['addr'], null, null], // more than 16: cut
        [w.recv[1], MANY, [lo(b + 2), lo(b + 2), ...Array.from({ length: 14 }, () => lo(b + 3))], ['addr'], null, null],
      ], w.tag);
      assert.deepEqual([...new Set(calls.map((e) => e.nr))], w.nrs, w.tag);
    }
    // a recvmsg's msghdr and a recvmmsg's vector in pages not touched yet: unreadable at the call,
    // read at the return (msg_name too: marked read at exit), 64-bit and i386
    const um = /^unpaged (.*)$/m.exec(res.output);
    assert.ok(um, `no report from the unpaged calls: ${res.output}`);
    const ug = Object.fromEntries(um[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
    const sender = PORT + 32;
    assert.deepEqual([ug['recvmsg'], ug['recvmmsg'], ug['recvmsg32'], ug['recvmmsg32'], ug['from']],
      ['1', '2', '1', '2', Array(6).fill(sender).join(':')], um[0]);
    const late = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === Number(ug['pid']) && /^recvm/.test(e.name));
    assert.deepEqual(late.map((e) => [e.abi, e.name, e.ret, e.addr ?? null, e.addrs ?? null, e.readAtExit ?? null, e.truncated ?? null, e.unreadable ?? null]), [
      ['x86_64', 'recvmsg', 1, lo(sender), null, true, null, null],
      ['x86_64', 'recvmmsg', 2, null, [lo(sender), lo(sender)], true, null, null],
      ['i386', 'recvmsg', 1, lo(sender), null, true, null, null],
      ['i386', 'recvmmsg', 2, null, [lo(sender), lo(sender)], true, null, null],
    ]);
    assert.ok(!JSON.stringify(events).includes('10.11.12.13'), 'a planted address was reported');
    // what the conformance suite's facts make of it: every destination and sender, nothing else
    const f = factsOf(events, { startAtFirstExec: false });
    const key = (p: number) => `inet:127.0.0.1:${p}`;
    assert.deepEqual(f.sent, [PORT, PORT + 1, PORT + 10, PORT + 11, PORT + 20, PORT + 21, PORT + 30].map(key));
    // (the cut one: a family without an address)
    assert.deepEqual(f.received, [...[PORT + 2, PORT + 3, PORT + 12, PORT + 13, PORT + 22, PORT + 23, PORT + 32].map(key), 'other:2']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
