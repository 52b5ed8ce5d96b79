// Connects whose address the VM backend cannot read at the call (a page the program has not touched
// yet), in a TCG guest. The plugin used to read the sockaddr again at the return (readAtExit), which
// a second thread can rewrite meanwhile: a blocking connect that waited for its SYN's retransmission
// while the other thread pointed its port at a decoy listener was reported as a connect to the
// decoy. Now a connect (x86_64; i386 direct and through socketcall with its argument array readable
// at the call) that connected (0, or EINPROGRESS) reports the peer the kernel connected its socket to,
// read from the socket behind its descriptor (task->files, sk->__sk_common: addrFromKernel, no
// readAtExit), inet and inet6, as the eBPF probe does (kernel_peer). No peer to take (refused; a unix
// socket), or a socketcall whose array could not be read at the call either: read again at the
// return, as before. An address readable at the call stays as the program gave it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import type { SyscallEvent } from '../../src/capture/events.js';

const SRC = fileURLToPath(new URL('./connpeer.c', import.meta.url));

test('a connect whose address was unreadable at the call reports the peer its socket was connected to, not a re-read (x86_64, i386, socketcall)', { timeout: 300_000 }, async (t) => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmpeer-'));
  try {
    const exe = join(dir, 'connpeer');
    // static and not PIE: the i386 calls' argument array and addresses sit below 4 GiB
    const cc = spawnSync('cc', ['-O1', '-static', '-no-pie', '-pthread', '-o', exe, SRC], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
    const { events, res, stats } = await captureInVm({ sample: exe, timeout: 60 });
    assert.equal(res.sampleExit, 0, res.output);
    assert.equal(stats.lost, 0);
    const m = /^connpeer (.*)$/m.exec(res.output);
    assert.ok(m, `no report from the sample: ${res.output}`);
    t.diagnostic(m[0]);
    const g = Object.fromEntries(m[1]!.trim().split(' ').map((x) => x.split('=') as [string, string]));
    const n = (k: string) => Number(g[k]);
    const [srv, decoy, closed] = [n('srv'), n('decoy'), n('closed')];
    const ipv6 = g['ipv6'] === '1';
    // what the guest saw: the blocked connect reached the real listener (its peer, by getpeername)
    // while its sockaddr was rewritten to the decoy's port; the others as intended
    assert.deepEqual([g['race'], g['accepted'], n('peer'), n('rewritten'), g['unix'], g['refused'], g['c362'], g['sc'], g['sclate']],
      ['0', g['accepted'], srv, decoy, '0', '-111', '0', '0', '0']);
    assert.ok(n('accepted') >= 0, 'the second thread accepted the filler\'s connection');
    assert.ok(g['nonblock'] === '-115' || g['nonblock'] === '0', `non-blocking connect: ${g['nonblock']}`);
    if (ipv6) assert.equal(g['udp6'], '0');
    assert.ok(srv !== decoy && srv > 0 && decoy > 0 && closed > 0);

    const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
    const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === n('pid') && e.name === 'connect');
    const row = (e: SyscallEvent) => [e.tid === e.pid ? 'main' : 'thread', e.abi, e.via ?? null, e.ret, e.addr ?? null, e.addrFromKernel ?? null,
      e.readAtExit ?? null, e.unreadable ?? null];
    const rows = calls.map(row);
    const expected = [
      ['main', 'x86_64', null, 0, inet(srv), null, null, null], // the filler: readable at the call, as given
      // the listener the socket connected to, not the decoy its sockaddr named at the return
      ['main', 'x86_64', null, 0, inet(srv), true, null, null],
      ['main', 'x86_64', null, n('nonblock'), inet(decoy), true, null, null], // EINPROGRESS: the peer is set
      // no peer to take: read again at the return, as before (a unix socket; refused)
      ['main', 'x86_64', null, 0, { family: 'unix', path: '/tmp/connpeer.sock', abstract: false }, null, true, null],
      ['main', 'x86_64', null, -111, inet(closed), null, true, null],
      ...(ipv6 ? [['main', 'x86_64', null, 0, { family: 'inet6', address: '::1', port: 4242 }, true, null, null]] : []),
      ['main', 'i386', null, 0, inet(decoy), true, null, null], // int $0x80, 362
      ['main', 'i386', 'socketcall', 0, inet(decoy), true, null, null], // socketcall(3), its array readable
      // the array itself unreadable at the call: its descriptor is known only at the return, read again
      ['main', 'i386', 'socketcall', 0, inet(decoy), null, true, null],
    ];
    await t.test('the blocked connect whose sockaddr a thread rewrote is the real listener\'s (addrFromKernel), not the decoy\'s', () => {
      assert.deepEqual(rows[1], expected[1], JSON.stringify(rows));
    });
    await t.test('every connect, in order: inet (blocking, EINPROGRESS), i386 direct and through socketcall from the peer; unix, refused and a late socketcall array read again', () => {
      assert.deepEqual(rows, expected, JSON.stringify(rows));
    });
    await t.test('inet6: a UDP connect to [::1]:4242 is its socket\'s peer', { skip: ipv6 ? false : 'the guest has no IPv6 loopback (::1 could not be bound)' }, () => {
      const e = calls.find((c) => c.addr?.family === 'inet6');
      assert.deepEqual(e && row(e), ['main', 'x86_64', null, 0, { family: 'inet6', address: '::1', port: 4242 }, true, null, null]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
