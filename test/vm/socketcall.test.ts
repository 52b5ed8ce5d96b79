// i386 socketcall (nr 102) in a TCG guest: a program that makes its socket calls through the
// multiplexer (int $0x80 from a 64-bit program, call number in ebx, u32 argument array at ecx), on
// the guest's own loopback only. Each call must come out as the direct i386 call it stands for
// (socket, bind, connect, ...) with `via: 'socketcall'`, its unpacked arguments and its decoded
// address, as the eBPF probe reports it, so that the report's network section and the network
// rules see it; an argument array that cannot be read stays a socketcall, marked unreadable, and
// one in a page not mapped yet at the call is read at its return (readAtExit), as the probe does.
// The addresses the kernel writes back (accept, accept4, getsockname, getpeername, recvfrom, and
// recvmsg's sender through its msghdr) are read at the return, through socketcall, as direct
// 64-bit calls and as direct i386 ones, never more of them than the caller's buffer held at the
// call (a shorter buffer: cut and marked; what lies beyond, a recvmsg that asked for no address,
// and a buffer a signal-interrupted call never wrote, is not the address).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import { RecordingWriter } from '../../src/capture/replay/index.js';
import { replay } from '../../src/replay.js';
import type { SyscallEvent } from '../../src/capture/events.js';
import type { Report } from '../../src/report/schema.js';

const SRC = fileURLToPath(new URL('./socketcall-int80.c', import.meta.url));
const PORT = 39123; // the guest's loopback; UDP on PORT + 1; the direct calls on PORT + 3 to PORT + 6

test('i386 socketcall in the guest is unpacked into the direct socket calls, with their addresses, and reaches the report', { timeout: 300_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmsc-'));
  try {
    const exe = join(dir, 'socketcall');
    // static and not PIE: the argument arrays and addresses sit below 4 GiB, where 32-bit pointers reach
    const cc = spawnSync('cc', ['-O1', '-static', '-no-pie', `-DPORT=${PORT}`, '-o', exe, SRC], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
    const { events, res, stats } = await captureInVm({ sample: exe, timeout: 60 });
    assert.equal(res.sampleExit, 0, res.output);
    assert.equal(stats.lost, 0);
    // what the guest itself saw
    const m = /^socketcall (.*)$/m.exec(res.output);
    assert.ok(m, `no report from the sample: ${res.output}`);
    const g = Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
    const n = (k: string) => Number(g[k]);
    const pid = n('pid'), srv = n('srv'), cli = n('cli'), acc = n('accept'), udp = n('udp');
    assert.deepEqual([g['so'], g['bind'], g['listen'], g['getsockname'], g['connect'], g['getpeername'], g['getsockopt'], g['send'], g['recv'],
      g['shutdown'], g['ubind'], g['sendto'], g['recvfrom'], g['sendmsg'], g['recvmsg'], g['accept4'], g['bad'], g['inval']],
    ['0', '0', '0', `0:${PORT}`, '0', `0:${PORT}`, '0:1', '4', '4:ping', '0', '0', '1', '1', '2', '2', '-95', '-14', '-22'],
    'the socket calls worked in the guest (on its loopback)');
    assert.match(g['socketpair'] ?? '', /^0:\d+:\d+$/);
    assert.match(res.output, /^child socket=3 connect=-111$/m, 'the child\'s socket calls worked (nothing listens on PORT + 2)');

    const peer = n('peer');
    assert.ok(peer > 0 && n('from') === PORT + 1 && n('rfrom') === PORT + 1, 'accept, recvfrom and recvmsg wrote the peer\'s address in the guest');
    const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === pid && e.abi === 'i386');
    // every socketcall, in order: the direct call's name and number, how it was made, its result
    assert.deepEqual(calls.map((e) => [e.name, e.nr, e.via ?? null, e.ret]), [
      ['socket', 359, 'socketcall', srv],
      ['setsockopt', 366, 'socketcall', 0],
      ['bind', 361, 'socketcall', 0],
      ['listen', 363, 'socketcall', 0],
      ['getsockname', 367, 'socketcall', 0],
      ['socket', 359, 'socketcall', cli],
      ['connect', 362, 'socketcall', 0],
      ['accept4', 364, 'socketcall', acc], // SYS_ACCEPT: accept4 with flags 0 (no direct i386 accept)
      ['getpeername', 368, 'socketcall', 0],
      ['getsockopt', 365, 'socketcall', 0],
      ['sendto', 369, 'socketcall', 4], // SYS_SEND: sendto without an address
      ['recvfrom', 371, 'socketcall', 4], // SYS_RECV
      ['shutdown', 373, 'socketcall', 0],
      ['socket', 359, 'socketcall', udp],
      ['bind', 361, 'socketcall', 0],
      ['sendto', 369, 'socketcall', 1],
      ['recvfrom', 371, 'socketcall', 1],
      ['sendmsg', 370, 'socketcall', 2],
      ['recvmsg', 372, 'socketcall', 2],
      ['socketpair', 360, 'socketcall', 0],
      ['accept4', 364, 'socketcall', -95], // SYS_ACCEPT4 on a datagram socket: EOPNOTSUPP
      ['socketcall', 102, null, -14], // the array could not be read: EFAULT for the kernel too
      ['socketcall', 102, null, -22], // no such call: the kernel refuses it
    ]);
    const tcp = { family: 'inet', address: '127.0.0.1', port: PORT };
    const udpAddr = { ...tcp, port: PORT + 1 };
    // the addresses passed in, and those the kernel wrote back (read at the return)
    assert.deepEqual(calls.filter((e) => e.addr).map((e) => [e.name, e.addr]),
      [['bind', tcp], ['getsockname', tcp], ['connect', tcp], ['accept4', { ...tcp, port: peer }], ['getpeername', tcp],
        ['bind', udpAddr], ['sendto', udpAddr], ['recvfrom', udpAddr], ['sendmsg', udpAddr], ['recvmsg', udpAddr]]);
    // the unpacked arguments are the words of the array, as the kernel read them
    const [sock, , , listen, , , connect, accept, , getsockopt, send] = calls;
    assert.deepEqual(sock?.args, [2, 1, 0, 0, 0, 0]); // AF_INET, SOCK_STREAM
    assert.deepEqual([connect?.args[0], connect?.args[2], connect?.args.slice(3)], [cli, 16, [0, 0, 0]]);
    assert.deepEqual(listen?.args, [srv, 4, 0, 0, 0, 0]);
    assert.deepEqual([accept?.args[0], accept?.args[3]], [srv, 0]);
    assert.deepEqual(getsockopt?.args.slice(0, 3), [cli, 1, 3]); // SOL_SOCKET, SO_TYPE
    assert.deepEqual([send?.args[0], send?.args[2], send?.args[4], send?.args[5]], [cli, 4, 0, 0]);
    assert.deepEqual([calls[20]?.args[0], calls[20]?.args[3]], [udp, 0o4000]); // SYS_ACCEPT4's flags: SOCK_NONBLOCK
    assert.deepEqual([calls[21]?.args.slice(0, 2), calls[21]?.unreadable], [[3, 0x10], ['addr']]);
    assert.deepEqual([calls[22]?.args[0], calls[22]?.unreadable], [99, undefined]);
    assert.ok(calls.every((e, i) => i >= 21 || (e.unreadable === undefined && e.readAtExit === undefined)));

    // A forked child whose argument arrays (and address) sit in read-only pages it has not mapped
    // yet: unreadable at the call, read at its return, and said so.
    const child = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === n('child') && e.abi === 'i386');
    assert.deepEqual(child.map((e) => [e.name, e.via, e.args, e.ret, e.addr ?? null, e.readAtExit, e.unreadable]), [
      ['socket', 'socketcall', [2, 1, 0, 0, 0, 0], 3, null, true, undefined],
      ['connect', 'socketcall', [3, child[1]?.args[1], 16, 0, 0, 0], -111, { ...tcp, port: PORT + 2 }, true, undefined],
    ]);

    // Direct calls whose address the kernel writes back: 64-bit, then i386 (int $0x80).
    const dm = /^direct (.*)$/m.exec(res.output);
    assert.ok(dm, `no report from the direct calls: ${res.output}`);
    const d = Object.fromEntries(dm[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
    const dn = (k: string) => Number(d[k]);
    const at = (k: string) => (d[k] ?? '').split(':').map(Number);
    const [acc64, peer64] = at('accept'), [a4, port2, len2] = at('accept4'), [acc32, peer32] = at('accept32');
    // what the guest saw: the calls worked; the short buffers got 8 and 4 bytes and the full length (16)
    assert.deepEqual([at('getsockname'), at('getpeername'), at('cut'), [port2, len2], at('recvfrom'), at('recvmsg'), at('recvmsgnull'),
      at('recvmsgcut'), at('eintr'), at('getsockname32'), at('getpeername32'), at('cut32'), at('recvfrom32'), at('recvmsg32')],
    [[0, PORT + 3], [0, PORT + 3], [0, peer64, 16], [port2, 16], [1, PORT + 4], [1, PORT + 4, 16], [1], [1, PORT + 4, 16],
      [-1, 4], // EINTR
      [0, PORT + 5], [0, PORT + 5], [0, peer32, 16], [1, PORT + 6], [1, PORT + 6, 16]], dm[0]);
    assert.ok([acc64, peer64, a4, port2, acc32, peer32].every((x) => x! > 0), dm[0]);
    const OUT = new Set(['accept', 'accept4', 'getsockname', 'getpeername', 'recvfrom', 'recvmsg']);
    const direct = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === dn('pid') && OUT.has(e.name));
    const lo = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
    assert.deepEqual(direct.map((e) => [e.abi, e.name, e.via ?? null, e.ret, e.addr ?? null, e.truncated ?? null, e.unreadable ?? null]), [
      ['x86_64', 'getsockname', null, 0, lo(PORT + 3), null, null],
      ['x86_64', 'accept', null, acc64, lo(peer64!), null, null],
      ['x86_64', 'getpeername', null, 0, lo(PORT + 3), null, null],
      ['x86_64', 'getpeername', null, 0, lo(peer64!), ['addr'], null], // 8 bytes of 16: cut, still the whole inet address
      // 4 bytes: family and port; the planted 10.11.12.13 beyond the buffer is never read
      ['x86_64', 'accept4', null, a4, { family: 'other', raw: 2 }, ['addr'], null],
      ['x86_64', 'recvfrom', null, 1, lo(PORT + 4), null, null],
      // recvmsg: the sender (itself, PORT + 4) from msg_name; none asked for, none read; a 4-byte
      // msg_name: family and port, cut, and the planted address beyond it is never read
      ['x86_64', 'recvmsg', null, 1, lo(PORT + 4), null, null],
      ['x86_64', 'recvmsg', null, 1, null, null, null],
      ['x86_64', 'recvmsg', null, 1, { family: 'other', raw: 2 }, ['addr'], null],
      // interrupted by a signal: the kernel wrote nothing, and the buffer's planted address is not
      // read; the result, -EINTR, from the handler's signal frame
      ['x86_64', 'accept', null, -4, null, null, null],
      ['i386', 'getsockname', null, 0, lo(PORT + 5), null, null],
      ['i386', 'accept4', null, acc32, lo(peer32!), null, null],
      ['i386', 'getpeername', null, 0, lo(PORT + 5), null, null],
      ['i386', 'getpeername', null, 0, lo(peer32!), ['addr'], null],
      ['i386', 'recvfrom', null, 1, lo(PORT + 6), null, null],
      ['i386', 'recvmsg', null, 1, lo(PORT + 6), null, null], // struct compat_msghdr
    ]);
    assert.equal(direct.find((e) => e.name === 'accept' && e.ret === -4)?.signal, 'interrupted');
    assert.deepEqual(direct.filter((e) => e.abi === 'i386').map((e) => e.nr), [367, 364, 368, 368, 371, 372]);
    assert.ok(!JSON.stringify(direct).includes('10.11.12.13'), 'a planted address was reported');

    // Through the analysis pipeline (semantics, rules, report), as `analyze --vm` would run it.
    const rec = join(dir, 'events.jsonl.gz');
    const w = await RecordingWriter.create(rec, { backend: 'vmi', target: 'socketcall' });
    w.write(events);
    await w.close(stats);
    const { report } = await replay({ file: rec, outDir: join(dir, 'out') });
    const r = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as Report;
    assert.deepEqual(r.network, report.network);
    const net = report.network.filter((x) => x.pid === pid || x.pid === n('child')).map((x) => [x.op, x.proto, x.address, x.port, x.result]).sort();
    assert.deepEqual(net, [
      ['accept', 'tcp', '127.0.0.1', peer, 'ok'],
      ['bind', 'tcp', '127.0.0.1', PORT, 'ok'],
      ['bind', 'udp', '127.0.0.1', PORT + 1, 'ok'],
      ['connect', 'tcp', '127.0.0.1', PORT, 'ok'],
      ['connect', 'tcp', '127.0.0.1', PORT + 2, 'ECONNREFUSED'],
      ['listen', 'tcp', '127.0.0.1', PORT, 'ok'],
      ['recvfrom', 'udp', '127.0.0.1', PORT + 1, 'ok'],
      ['recvmsg', 'udp', '127.0.0.1', PORT + 1, 'ok'], // the sender socketcall's recvmsg named
      ['sendmsg', 'udp', '127.0.0.1', PORT + 1, 'ok'],
      ['sendto', 'udp', '127.0.0.1', PORT + 1, 'ok'],
    ].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
