// The plugin's record format (qemu-plugin/sandtrace.c) decoded from byte streams split anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordReader, REC, BLOB, ENTER_FLAG, RET_REREAD, RET_OUT, RET_SIGNAL, MMSG_FLAG } from './records.js';
import { Readable } from 'node:stream';
import { decodeSockaddr, VmiCollector } from './collector.js';
import type { TraceEvent } from '../events.js';
import type { CaptureStats } from '../collector.js';

/** Every event the VM collector makes of a stream of plugin records, and its stats after. */
async function collectStream(stream: Buffer): Promise<{ events: TraceEvent[]; stats: CaptureStats }> {
  const c = new VmiCollector({ open: async () => Readable.from([stream]) });
  await c.start();
  const events: TraceEvent[] = [];
  for await (const b of c.events()) events.push(...b);
  return { events, stats: c.stats() };
}

function header(type: number, len: number, tid: number, tgid: number, ppid: number, ts: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt16LE(type, 0); b.writeUInt16LE(len, 2); b.writeUInt32LE(tid, 4); b.writeUInt32LE(tgid, 8);
  b.writeUInt32LE(ppid, 12); b.writeBigUInt64LE(ts, 16);
  return b;
}
const blob = (kind: number, data: Buffer) => { const b = Buffer.alloc(4); b[0] = kind; b.writeUInt16LE(data.length, 2); return Buffer.concat([b, data]); };

function enterRec(): Buffer {
  const body = Buffer.alloc(8 + 48 + 16);
  body.writeUInt32LE(59, 0);
  for (let i = 0; i < 6; i++) body.writeBigUInt64LE(BigInt(i + 1) << 40n, 8 + 8 * i);
  body.write('sh', 56);
  const tail = Buffer.concat([blob(BLOB.PATH, Buffer.from('/bin/ls')), blob(BLOB.ARGV, Buffer.from('ls')), blob(BLOB.ARGV, Buffer.from('-l'))]);
  const len = 24 + body.length + tail.length;
  return Buffer.concat([header(REC.ENTER, len, 7, 7, 1, 100n), body, tail]);
}
function retRec(): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(59, 0);
  body.writeBigInt64LE(0n, 8);
  const tail = Buffer.concat([blob(BLOB.COMM, Buffer.from('ls')), blob(BLOB.EXE, Buffer.from('busybox')), blob(BLOB.EXE, Buffer.from('bin')),
    blob(BLOB.NEWARGV, Buffer.from('ls\0-l\0')), blob(BLOB.EXECFN, Buffer.from('/bin/ls')), blob(BLOB.UID, Buffer.from([0, 0, 0, 0]))]);
  return Buffer.concat([header(REC.RET, 24 + 16 + tail.length, 7, 7, 1, 200n), body, tail]);
}

test('records decode the same whatever the chunking', () => {
  const stream = Buffer.concat([enterRec(), retRec()]);
  for (const size of [1, 3, 24, 25, 1000]) {
    const r = new RecordReader();
    const out = [];
    for (let o = 0; o < stream.length; o += size) out.push(...r.push(stream.subarray(o, o + size)));
    assert.equal(out.length, 2, `chunk size ${size}`);
    assert.equal(r.parseErrors, 0);
    assert.equal(r.leftover, 0);
    const [e, x] = out;
    assert.ok(e?.kind === 'enter' && x?.kind === 'ret');
    assert.deepEqual([e.nr, e.tid, e.tgid, e.ppid, e.comm, e.path, e.argv, e.args[5]], [59, 7, 7, 1, 'sh', '/bin/ls', ['ls', '-l'], 6n << 40n]);
    assert.deepEqual([x.comm, x.exeParts, x.newArgv, x.execfn, x.uid, x.ret], ['ls', ['busybox', 'bin'], ['ls', '-l'], '/bin/ls', 0, 0n]);
  }
});

test('a corrupt stream is counted, not thrown', () => {
  const r = new RecordReader();
  const bad = Buffer.alloc(48, 0xff);
  assert.deepEqual(r.push(bad), []);
  assert.equal(r.parseErrors, 1);
});

test('sockaddr decoding: inet, inet6, unix (path and abstract)', () => {
  const in4 = Buffer.from([2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeSockaddr(in4), { family: 'inet', address: '127.0.0.1', port: 8080 });
  const in6 = Buffer.alloc(28); in6.writeUInt16LE(10, 0); in6.writeUInt16BE(443, 2); in6.writeUInt16BE(1, 22);
  assert.deepEqual(decodeSockaddr(in6), { family: 'inet6', address: '::1', port: 443 });
  const un = Buffer.concat([Buffer.from([1, 0]), Buffer.from('/run/x.sock\0')]);
  assert.deepEqual(decodeSockaddr(un), { family: 'unix', path: '/run/x.sock', abstract: false });
  const abs = Buffer.concat([Buffer.from([1, 0, 0]), Buffer.from('bus')]);
  assert.deepEqual(decodeSockaddr(abs), { family: 'unix', path: 'bus', abstract: true });
});

/** An ENTER/ENTER32 record: number, 32-bit arguments, comm, blobs. */
function enter(type: number, tid: number, nr: number, args: number[], tail: Buffer[] = [], flags = 0): Buffer {
  const body = Buffer.alloc(8 + 48 + 16);
  body.writeUInt32LE(nr, 0);
  body.writeUInt32LE(flags, 4);
  args.forEach((a, i) => body.writeBigUInt64LE(BigInt(a), 8 + 8 * i));
  body.write('x', 56);
  const t = Buffer.concat(tail);
  return Buffer.concat([header(type, 24 + body.length + t.length, tid, tid, 1, BigInt(tid) * 1000n + BigInt(nr)), body, t]);
}
function ret(type: number, tid: number, nr: number, value: bigint, tail: Buffer[] = [], flags = 0): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(nr, 0);
  body.writeUInt32LE(flags, 4);
  body.writeBigInt64LE(value, 8);
  const t = Buffer.concat(tail);
  return Buffer.concat([header(type, 24 + 16 + t.length, tid, tid, 1, BigInt(tid) * 1000n + 500n), body, t]);
}

test('i386 records (ENTER32/RET32): abi, i386 names, paths and argv; paired only with their own ABI; an exec returns the new image\'s number', async () => {
  const stream = Buffer.concat([
    enter(REC.ENTER32, 10, 5, [0x8049000, 0o1101, 0o644], [blob(BLOB.PATH, Buffer.from('/work/a'))]), ret(REC.RET32, 10, 5, 3n),
    // x86_64 11 is munmap: a 64-bit call with the i386 execve's number is no exec
    enter(REC.ENTER, 10, 11, [0x7f0000000000, 4096]), ret(REC.RET, 10, 11, 0n),
    enter(REC.ENTER32, 10, 102, [3, 0x8049100]), ret(REC.RET32, 10, 102, 0n),
    // an i386 execve of a 64-bit program returns as 59 (set_personality_64bit)
    enter(REC.ENTER32, 10, 11, [0x8049200, 0x8049300, 0], [blob(BLOB.PATH, Buffer.from('/bin/true')), blob(BLOB.ARGV, Buffer.from('true')), blob(BLOB.ARGV, Buffer.from('-a'))]),
    ret(REC.RET32, 10, 59, 0n, [blob(BLOB.COMM, Buffer.from('true')), blob(BLOB.EXE, Buffer.from('busybox')), blob(BLOB.EXE, Buffer.from('bin')),
      blob(BLOB.NEWARGV, Buffer.from('true\0-a\0'))]),
    // a 64-bit execve of an i386 program returns as 11 (__set_personality_ia32): an i386 image
    enter(REC.ENTER, 11, 59, [0x401000, 0x402000, 0], [blob(BLOB.PATH, Buffer.from('/work/fast32')), blob(BLOB.ARGV, Buffer.from('fast32'))]),
    ret(REC.RET, 11, 11, 0n, [blob(BLOB.COMM, Buffer.from('fast32')), blob(BLOB.EXE, Buffer.from('fast32')), blob(BLOB.EXE, Buffer.from('work'))]),
    // a return through the other hook is not this call's: the i386 read stays open (ends unfinished)
    enter(REC.ENTER32, 10, 3, [0, 0x8049400, 16]), ret(REC.RET, 10, 3, 16n),
  ]);
  const { events, stats } = await collectStream(stream);
  const brief = events.map((e) => e.type === 'syscall' ? [e.abi, e.name, e.nr, e.path ?? null, e.argv ?? null, e.ret] : e.type === 'exec' ? ['exec', e.exe, e.argv, e.abi] : [e.type]);
  assert.deepEqual(brief, [
    ['i386', 'open', 5, '/work/a', null, 3],
    ['x86_64', 'munmap', 11, null, null, 0],
    ['i386', 'socketcall', 102, null, null, 0],
    ['i386', 'execve', 11, '/bin/true', ['true', '-a'], 0],
    ['exec', '/bin/true', ['true', '-a'], 'x86_64'], // the new image's ABI, from the number the exec returned with
    ['x86_64', 'execve', 59, '/work/fast32', ['fast32'], 0],
    ['exec', '/work/fast32', ['fast32'], 'i386'],
    ['i386', 'read', 3, null, null, null],
  ]);
  const open = events[0];
  assert.ok(open?.type === 'syscall');
  assert.deepEqual(open.args.slice(0, 3), [0x8049000, 0o1101, 0o644]);
  assert.equal(stats.parseErrors, 0);
});

const words = (...w: number[]) => { const b = Buffer.alloc(4 * w.length); w.forEach((v, i) => b.writeUInt32LE(v, 4 * i)); return b; };
const IN4 = (port: number) => Buffer.from([2, 0, port >> 8, port & 0xff, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);

test('i386 socketcall is unpacked into the direct call it stands for (via socketcall), as the eBPF probe does; an unreadable array stays a socketcall, marked', async () => {
  const sc = (tid: number, call: number, ptr: number, tail: Buffer[], flags = 0) => enter(REC.ENTER32, tid, 102, [call, ptr], tail, flags);
  const stream = Buffer.concat([
    sc(20, 1, 0x8049000, [blob(BLOB.SCARGS, words(2, 1, 0))]), ret(REC.RET32, 20, 102, 3n), // socket(AF_INET, SOCK_STREAM, 0)
    sc(20, 3, 0x8049010, [blob(BLOB.SCARGS, words(3, 0x8049100, 16)), blob(BLOB.SOCKADDR, IN4(4242))]), ret(REC.RET32, 20, 102, -111n), // connect
    sc(20, 5, 0x8049020, [blob(BLOB.SCARGS, words(3, 0, 0))]), ret(REC.RET32, 20, 102, 4n), // accept: accept4 with flags 0
    sc(20, 9, 0x8049030, [blob(BLOB.SCARGS, words(3, 0x8049200, 5, 0))]), ret(REC.RET32, 20, 102, 5n), // send: sendto without an address
    sc(20, 11, 0x8049040, [blob(BLOB.SCARGS, words(3, 0x8049200, 5, 0, 0x8049100, 16)), blob(BLOB.SOCKADDR, IN4(53))]), ret(REC.RET32, 20, 102, 5n),
    sc(20, 16, 0x8049050, [blob(BLOB.SCARGS, words(3, 0x8049300, 0)), blob(BLOB.SOCKADDR, IN4(7))]), ret(REC.RET32, 20, 102, 1n), // sendmsg
    sc(20, 3, 0x10, [], ENTER_FLAG.SCARGS_UNREAD), ret(REC.RET32, 20, 102, -14n), // the array unreadable: EFAULT
    sc(20, 99, 0x8049000, []), ret(REC.RET32, 20, 102, -22n), // no such call: EINVAL, nothing to unpack
    // connect whose address could not be read; a 64-bit one (the flag means the same there)
    sc(20, 3, 0x8049010, [blob(BLOB.SCARGS, words(3, 0x9000000, 16))], ENTER_FLAG.ADDR_UNREAD), ret(REC.RET32, 20, 102, -14n),
    enter(REC.ENTER, 20, 42, [3, 0x7f0000001000, 200], [blob(BLOB.SOCKADDR, Buffer.concat([IN4(80), Buffer.alloc(112)]))], ENTER_FLAG.ADDR_CUT), ret(REC.RET, 20, 42, -22n),
    // clone3's flags are clone flags: CLONE_NEWNET (0x40000000) is no address mark
    enter(REC.ENTER, 20, 435, [0x7f0000002000, 88], [], 0x40000000), ret(REC.RET, 20, 435, -1n),
  ]);
  const { events, stats } = await collectStream(stream);
  const got = events.map((e) => {
    assert.ok(e.type === 'syscall');
    return { abi: e.abi, nr: e.nr, name: e.name, args: e.args, ret: e.ret, addr: e.addr, via: e.via, unreadable: e.unreadable, truncated: e.truncated };
  });
  const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
  const i386 = (nr: number, name: string, args: number[], ret: number, more: object = {}) =>
    ({ abi: 'i386', nr, name, args, ret, addr: undefined, via: 'socketcall', unreadable: undefined, truncated: undefined, ...more });
  assert.deepEqual(got, [
    i386(359, 'socket', [2, 1, 0, 0, 0, 0], 3),
    i386(362, 'connect', [3, 0x8049100, 16, 0, 0, 0], -111, { addr: inet(4242) }),
    i386(364, 'accept4', [3, 0, 0, 0, 0, 0], 4),
    i386(369, 'sendto', [3, 0x8049200, 5, 0, 0, 0], 5),
    i386(369, 'sendto', [3, 0x8049200, 5, 0, 0x8049100, 16], 5, { addr: inet(53) }),
    i386(370, 'sendmsg', [3, 0x8049300, 0, 0, 0, 0], 1, { addr: inet(7) }),
    i386(102, 'socketcall', [3, 0x10, 0, 0, 0, 0], -14, { via: undefined, unreadable: ['addr'] }),
    i386(102, 'socketcall', [99, 0x8049000, 0, 0, 0, 0], -22, { via: undefined }),
    i386(362, 'connect', [3, 0x9000000, 16, 0, 0, 0], -14, { unreadable: ['addr'] }),
    { abi: 'x86_64', nr: 42, name: 'connect', args: [3, 0x7f0000001000, 200, 0, 0, 0], ret: -22, addr: inet(80), via: undefined, unreadable: undefined, truncated: ['addr'] },
    { abi: 'x86_64', nr: 435, name: 'clone3', args: [0x7f0000002000, 88, 0, 0, 0, 0], ret: -1, addr: undefined, via: undefined, unreadable: undefined, truncated: undefined },
  ]);
  assert.equal(stats.parseErrors, 0);
});

test('socket arguments unreadable at the call and read at its return replace the entry\'s and are marked readAtExit', async () => {
  const stream = Buffer.concat([
    // socketcall(SYS_CONNECT) whose array was not mapped at the call: unpacked from the return's read
    enter(REC.ENTER32, 30, 102, [3, 0x80a0000], [], ENTER_FLAG.SCARGS_UNREAD),
    ret(REC.RET32, 30, 102, -111n, [blob(BLOB.SCARGS, words(3, 0x80a000c, 16)), blob(BLOB.SOCKADDR, IN4(9))], RET_REREAD),
    // still unreadable at the return (a bad pointer): stays a marked socketcall
    enter(REC.ENTER32, 30, 102, [1, 0x10], [], ENTER_FLAG.SCARGS_UNREAD),
    ret(REC.RET32, 30, 102, -14n, [], RET_REREAD | ENTER_FLAG.SCARGS_UNREAD),
    // a direct connect whose address was read at the return
    enter(REC.ENTER, 30, 42, [3, 0x7f0000001000, 16], [], ENTER_FLAG.ADDR_UNREAD),
    ret(REC.RET, 30, 42, 0n, [blob(BLOB.SOCKADDR, IN4(443))], RET_REREAD),
    // a path read at the return
    enter(REC.ENTER, 30, 2, [0x7f0000002000, 0]), ret(REC.RET, 30, 2, 3n, [blob(BLOB.PATH, Buffer.from('/etc/passwd'))], RET_REREAD),
  ]);
  const { events } = await collectStream(stream);
  const got = events.map((e) => e.type === 'syscall' ? [e.name, e.args.slice(0, 3), e.ret, e.addr ?? null, e.path ?? null, e.via ?? null, e.readAtExit ?? null, e.unreadable ?? null] : [e.type]);
  assert.deepEqual(got, [
    ['connect', [3, 0x80a000c, 16], -111, { family: 'inet', address: '127.0.0.1', port: 9 }, null, 'socketcall', true, null],
    ['socketcall', [1, 0x10, 0], -14, null, null, null, true, ['addr']],
    ['connect', [3, 0x7f0000001000, 16], 0, { family: 'inet', address: '127.0.0.1', port: 443 }, null, null, true, null],
    ['open', [0x7f0000002000, 0, 0], 3, null, '/etc/passwd', null, true, null],
  ]);
});

test('a connect that connected, its address unreadable at the call (PEER blob): the address is its socket\'s peer, addrFromKernel and not readAtExit', async () => {
  const in6 = Buffer.alloc(28); in6.writeUInt16LE(10, 0); in6.writeUInt16BE(4242, 2); in6.writeUInt16BE(1, 22);
  const peer = (b: Buffer) => blob(BLOB.PEER, b);
  const stream = Buffer.concat([
    // x86_64 connect: the peer instead of the sockaddr read again, no RET_REREAD (an address longer
    // than 128 bytes at the call, cut and unreadable then, is neither once named by the kernel)
    enter(REC.ENTER, 32, 42, [3, 0x7f0000001000, 16], [], ENTER_FLAG.ADDR_UNREAD), ret(REC.RET, 32, 42, 0n, [peer(IN4(443))]),
    enter(REC.ENTER, 32, 42, [4, 0x7f0000002000, 200], [], ENTER_FLAG.ADDR_UNREAD | ENTER_FLAG.ADDR_CUT), ret(REC.RET, 32, 42, -115n, [peer(IN4(80))]),
    enter(REC.ENTER, 32, 42, [5, 0x7f0000003000, 28], [], ENTER_FLAG.ADDR_UNREAD), ret(REC.RET, 32, 42, 0n, [peer(in6)]),
    // i386 direct, and through socketcall (its array read at the call: the words stay the call's)
    enter(REC.ENTER32, 32, 362, [3, 0x8049100, 16], [], ENTER_FLAG.ADDR_UNREAD), ret(REC.RET32, 32, 362, 0n, [peer(IN4(7))]),
    enter(REC.ENTER32, 32, 102, [3, 0x80a0000], [blob(BLOB.SCARGS, words(3, 0x80b0000, 16))], ENTER_FLAG.ADDR_UNREAD),
    ret(REC.RET32, 32, 102, 0n, [peer(IN4(9))]),
    // refused: no peer, the sockaddr read again, as before
    enter(REC.ENTER, 32, 42, [6, 0x7f0000004000, 16], [], ENTER_FLAG.ADDR_UNREAD), ret(REC.RET, 32, 42, -111n, [blob(BLOB.SOCKADDR, IN4(1))], RET_REREAD),
  ]);
  const r = new RecordReader();
  const x = r.push(stream)[1];
  assert.ok(x?.kind === 'ret');
  assert.deepEqual([x.peer, x.sockaddr, x.flags], [IN4(443), undefined, 0]);
  const { events } = await collectStream(stream);
  const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
  const got = events.map((e) => e.type === 'syscall'
    ? [e.abi, e.name, e.via ?? null, e.args.slice(0, 3), e.ret, e.addr ?? null, e.addrFromKernel ?? null, e.readAtExit ?? null, e.unreadable ?? null, e.truncated ?? null]
    : [e.type]);
  assert.deepEqual(got, [
    ['x86_64', 'connect', null, [3, 0x7f0000001000, 16], 0, inet(443), true, null, null, null],
    ['x86_64', 'connect', null, [4, 0x7f0000002000, 200], -115, inet(80), true, null, null, null],
    ['x86_64', 'connect', null, [5, 0x7f0000003000, 28], 0, { family: 'inet6', address: '::1', port: 4242 }, true, null, null, null],
    ['i386', 'connect', null, [3, 0x8049100, 16], 0, inet(7), true, null, null, null],
    ['i386', 'connect', 'socketcall', [3, 0x80b0000, 16], 0, inet(9), true, null, null, null],
    ['x86_64', 'connect', null, [6, 0x7f0000004000, 16], -111, inet(1), null, true, null, null],
  ]);
});

test('an open named from its descriptor (FDPATH blobs): the path is the file\'s, absolute, pathFromKernel and not readAtExit', async () => {
  const fd = (...parts: string[]) => parts.map((p) => blob(BLOB.FDPATH, Buffer.from(p)));
  const stream = Buffer.concat([
    // openat: '/', then the components leaf first, without RET_REREAD
    enter(REC.ENTER, 31, 257, [3, 0x7f0000002000, 0]), ret(REC.RET, 31, 257, 3n, fd('/', 'openpath.fifo', 'tmp')),
    // i386 open; creat of a relative path named from the root
    enter(REC.ENTER32, 31, 5, [0x8049000, 0]), ret(REC.RET32, 31, 5, 4n, fd('/', 'b', 'a')),
    enter(REC.ENTER, 31, 85, [0x7f0000003000, 0o600]), ret(REC.RET, 31, 85, 5n, fd('/', 'new', 'work')),
    // the root directory itself: '/' only
    enter(REC.ENTER, 31, 2, [0x7f0000004000, 0o200000]), ret(REC.RET, 31, 2, 6n, fd('/')),
    // no name (ENOENT, O_TMPFILE): the string read again, as before
    enter(REC.ENTER, 31, 257, [3, 0x7f0000005000, 0]), ret(REC.RET, 31, 257, -2n, [blob(BLOB.PATH, Buffer.from('/nope'))], RET_REREAD),
    // a cut walk names nothing (the plugin reads the string again instead; never a shorter path)
    enter(REC.ENTER, 31, 257, [3, 0x7f0000006000, 0], [blob(BLOB.PATH, Buffer.from('/x/y'))]), ret(REC.RET, 31, 257, 7n, fd('/', 'y', '//')),
  ]);
  const r = new RecordReader();
  const recs = r.push(stream);
  const x = recs[1];
  assert.ok(x?.kind === 'ret');
  assert.deepEqual([x.fdPathParts, x.path, x.flags], [['/', 'openpath.fifo', 'tmp'], undefined, 0]);
  const { events } = await collectStream(stream);
  const got = events.map((e) => e.type === 'syscall' ? [e.abi, e.name, e.ret, e.path ?? null, e.readAtExit ?? null, e.pathFromKernel ?? null] : [e.type]);
  assert.deepEqual(got, [
    ['x86_64', 'openat', 3, '/tmp/openpath.fifo', null, true],
    ['i386', 'open', 4, '/a/b', null, true],
    ['x86_64', 'creat', 5, '/work/new', null, true],
    ['x86_64', 'open', 6, '/', null, true],
    ['x86_64', 'openat', -2, '/nope', true, null],
    ['x86_64', 'openat', 7, '/x/y', null, null],
  ]);
});

test('addresses the kernel writes back (accept, accept4, recvfrom, recvmsg, getsockname, getpeername; direct, i386 and through socketcall) come from the return, cut at the caller\'s buffer and marked', async () => {
  const out = (b: Buffer) => blob(BLOB.OUTADDR, b);
  const stream = Buffer.concat([
    // accept(3, &sa, &len): the peer
    enter(REC.ENTER, 40, 43, [3, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 43, 4n, [out(IN4(40000))]),
    // recvfrom(4, buf, 16, 0, &from, &fromlen)
    enter(REC.ENTER, 40, 45, [4, 0x7f0000002000, 16, 0, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 45, 5n, [out(IN4(53))]),
    // recvmsg(4, &msg, 0): the sender, from its msg_name; one without msg_name: none
    enter(REC.ENTER, 40, 47, [4, 0x7f0000003000, 0]), ret(REC.RET, 40, 47, 5n, [out(IN4(55))]),
    enter(REC.ENTER, 40, 47, [4, 0x7f0000003000, 0]), ret(REC.RET, 40, 47, 5n),
    // getsockname with an 8-byte buffer: the kernel said 16, 8 were read (still the whole inet address)
    enter(REC.ENTER, 40, 51, [3, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 51, 0n, [out(IN4(39123).subarray(0, 8))], RET_OUT.CUT),
    // getpeername with a 4-byte buffer: family and port only; what lies beyond is the caller's (no address)
    enter(REC.ENTER, 40, 52, [3, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 52, 0n, [out(IN4(39123).subarray(0, 4))], RET_OUT.CUT),
    // a room of 1 byte: no family, no address, cut
    enter(REC.ENTER, 40, 52, [3, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 52, 0n, [out(Buffer.from([2]))], RET_OUT.CUT),
    // addrlen or the buffer could not be read at the return
    enter(REC.ENTER, 40, 288, [3, 0x7f0000001000, 0x7f0000001080, 0]), ret(REC.RET, 40, 288, 5n, [], RET_OUT.UNREAD),
    // a failed accept: nothing written, nothing read
    enter(REC.ENTER, 40, 43, [3, 0x7f0000001000, 0x7f0000001080]), ret(REC.RET, 40, 43, -11n),
    // i386: accept4 and recvfrom direct; accept, getsockname and getpeername through socketcall
    enter(REC.ENTER32, 41, 364, [3, 0x8049000, 0x8049080, 0]), ret(REC.RET32, 41, 364, 4n, [out(IN4(40001))]),
    enter(REC.ENTER32, 41, 371, [4, 0x8049100, 16, 0, 0x8049000, 0x8049080]), ret(REC.RET32, 41, 371, 1n, [out(IN4(54))]),
    enter(REC.ENTER32, 41, 102, [5, 0x8049200], [blob(BLOB.SCARGS, words(3, 0x8049000, 0x8049080))]), ret(REC.RET32, 41, 102, 5n, [out(IN4(40002))]),
    // recvmsg: direct (struct compat_msghdr) and through socketcall (SYS_RECVMSG)
    enter(REC.ENTER32, 41, 372, [4, 0x8049300, 0]), ret(REC.RET32, 41, 372, 2n, [out(IN4(56))]),
    enter(REC.ENTER32, 41, 102, [17, 0x8049200], [blob(BLOB.SCARGS, words(4, 0x8049300, 0))]), ret(REC.RET32, 41, 102, 2n, [out(IN4(57))]),
    enter(REC.ENTER32, 41, 102, [6, 0x8049200], [blob(BLOB.SCARGS, words(3, 0x8049000, 0x8049080))]),
    ret(REC.RET32, 41, 102, 0n, [out(IN4(39123).subarray(0, 6))], RET_OUT.CUT),
    // a socketcall whose array was read only at the return (readAtExit), and its written-back address
    enter(REC.ENTER32, 41, 102, [7, 0x80a0000], [], ENTER_FLAG.SCARGS_UNREAD),
    ret(REC.RET32, 41, 102, 0n, [blob(BLOB.SCARGS, words(3, 0x8049000, 0x8049080)), out(IN4(39123))], RET_REREAD),
  ]);
  const { events, stats } = await collectStream(stream);
  const got = events.map((e) => {
    assert.ok(e.type === 'syscall');
    return [e.abi, e.name, e.ret, e.addr ?? null, e.via ?? null, e.truncated ?? null, e.unreadable ?? null, e.readAtExit ?? null];
  });
  const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
  assert.deepEqual(got, [
    ['x86_64', 'accept', 4, inet(40000), null, null, null, null],
    ['x86_64', 'recvfrom', 5, inet(53), null, null, null, null],
    ['x86_64', 'recvmsg', 5, inet(55), null, null, null, null],
    ['x86_64', 'recvmsg', 5, null, null, null, null, null],
    ['x86_64', 'getsockname', 0, inet(39123), null, ['addr'], null, null],
    ['x86_64', 'getpeername', 0, { family: 'other', raw: 2 }, null, ['addr'], null, null],
    ['x86_64', 'getpeername', 0, null, null, ['addr'], null, null],
    ['x86_64', 'accept4', 5, null, null, null, ['addr'], null],
    ['x86_64', 'accept', -11, null, null, null, null, null],
    ['i386', 'accept4', 4, inet(40001), null, null, null, null],
    ['i386', 'recvfrom', 1, inet(54), null, null, null, null],
    ['i386', 'accept4', 5, inet(40002), 'socketcall', null, null, null],
    ['i386', 'recvmsg', 2, inet(56), null, null, null, null],
    ['i386', 'recvmsg', 2, inet(57), 'socketcall', null, null, null],
    ['i386', 'getsockname', 0, { family: 'other', raw: 2 }, 'socketcall', ['addr'], null, null],
    ['i386', 'getpeername', 0, inet(39123), 'socketcall', null, null, true],
  ]);
  assert.equal(stats.parseErrors, 0);
});

test('the RET record\'s written-back address and its flags decode', () => {
  const r = new RecordReader();
  const [x] = r.push(ret(REC.RET32, 9, 102, 0n, [blob(BLOB.OUTADDR, IN4(7).subarray(0, 8))], RET_OUT.CUT | RET_REREAD));
  assert.ok(x?.kind === 'ret');
  assert.deepEqual([x.abi, x.outAddr, x.sockaddr, x.flags], ['i386', IN4(7).subarray(0, 8), undefined, RET_OUT.CUT | RET_REREAD]);
});

test('a signal at the return: a call a handler cut short says so (EINTR from its frame), one the kernel makes again returns nothing', async () => {
  const stream = Buffer.concat([
    // read(3, buf, 1): a handler without SA_RESTART ran, the frame saved -EINTR
    enter(REC.ENTER, 50, 0, [3, 0x7f0000001000, 1]), ret(REC.RET, 50, 0, -4n, [], RET_SIGNAL.FRAME),
    // read: SA_RESTART, the kernel makes it again (ret is the call's number, no result) ...
    enter(REC.ENTER, 50, 0, [3, 0x7f0000001000, 1]), ret(REC.RET, 50, 0, 0n, [], RET_SIGNAL.RESTART),
    // ... and the same call made again returns 1
    enter(REC.ENTER, 50, 0, [3, 0x7f0000001000, 1]), ret(REC.RET, 50, 0, 1n),
    // a call that completed before a handler ran at its return keeps its result, unmarked
    enter(REC.ENTER, 50, 1, [4, 0x7f0000001000, 1]), ret(REC.RET, 50, 1, 1n, [], RET_SIGNAL.FRAME),
    // i386 accept4 made again (its written-back address is never read): no result, no address
    enter(REC.ENTER32, 51, 364, [3, 0x8049000, 0x8049080, 0]), ret(REC.RET32, 51, 364, 364n, [], RET_SIGNAL.RESTART),
    // fork made again (ERESTARTNOINTR): its number is no child's pid
    enter(REC.ENTER, 50, 57, []), ret(REC.RET, 50, 57, 57n, [], RET_SIGNAL.RESTART),
  ]);
  const { events } = await collectStream(stream);
  assert.deepEqual(events.map((e) => e.type === 'syscall' ? [e.abi, e.name, e.ret, e.signal ?? null, e.addr ?? null] : [e.type]), [
    ['x86_64', 'read', -4, 'interrupted', null],
    ['x86_64', 'read', null, 'restarted', null],
    ['x86_64', 'read', 1, null, null],
    ['x86_64', 'write', 1, null, null],
    ['i386', 'accept4', null, 'restarted', null],
    ['x86_64', 'fork', null, 'restarted', null],
  ]);
});

/** One message's MMSG/OUTMMSG blob: its flags byte, then the address (none: no address). */
const mm = (kind: number, addr: Buffer | null, flags = 0) => blob(kind, Buffer.concat([Buffer.from([flags]), addr ?? Buffer.alloc(0)]));

test('the MMSG and OUTMMSG blobs decode: flags, and the address when there is one', () => {
  const r = new RecordReader();
  const [e, x] = r.push(Buffer.concat([
    enter(REC.ENTER, 60, 307, [3, 0x7f0000001000, 2, 0], [mm(BLOB.MMSG, IN4(53)), mm(BLOB.MMSG, null), mm(BLOB.MMSG, null, MMSG_FLAG.END)], ENTER_FLAG.MMSG_UNREAD),
    ret(REC.RET, 60, 299, 2n, [mm(BLOB.OUTMMSG, IN4(54).subarray(0, 4), MMSG_FLAG.CUT), mm(BLOB.OUTMMSG, null, MMSG_FLAG.UNREAD)]),
  ]));
  assert.ok(e?.kind === 'enter' && x?.kind === 'ret');
  assert.deepEqual([e.flags, e.mmsg], [ENTER_FLAG.MMSG_UNREAD, [{ flags: 0, addr: IN4(53) }, { flags: 0 }, { flags: MMSG_FLAG.END }]]);
  assert.deepEqual([x.mmsg, x.outMmsg], [undefined, [{ flags: MMSG_FLAG.CUT, addr: IN4(54).subarray(0, 4) }, { flags: MMSG_FLAG.UNREAD }]]);
  assert.equal(r.parseErrors, 0);
});

test('sendmmsg and recvmmsg (x86_64, direct i386, socketcall): an address per message handled, at most 16, cut and unreadable marked', async () => {
  const S = (a: Buffer | null, f = 0) => mm(BLOB.MMSG, a, f);
  const R = (a: Buffer | null, f = 0) => mm(BLOB.OUTMMSG, a, f);
  const three = [S(IN4(4448)), S(IN4(4449)), S(null)];
  const many = Array.from({ length: 16 }, (_, i) => S(IN4(5000 + i)));
  const V = 0x7f0000001000;
  const stream = Buffer.concat([
    // sendmmsg(3, vec, 3, 0): two destinations and a message with no name, all sent
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], three), ret(REC.RET, 70, 307, 3n),
    // two of three sent: the first two; failed: the first (the kernel stops at it); none sent; no message
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], three), ret(REC.RET, 70, 307, 2n),
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], three), ret(REC.RET, 70, 307, -111n),
    enter(REC.ENTER, 70, 307, [3, V, 3, 0x40], three), ret(REC.RET, 70, 307, 0n),
    enter(REC.ENTER, 70, 307, [3, V, 0, 0]), ret(REC.RET, 70, 307, -9n),
    // 20 sent: the first 16 (the plugin reads no more), cut
    enter(REC.ENTER, 70, 307, [3, V, 20, 0], many), ret(REC.RET, 70, 307, 20n),
    // an address over 128 bytes (a prefix: cut); one that could not be read (the list ends: unreadable)
    enter(REC.ENTER, 70, 307, [3, V, 2, 0], [S(IN4(7), MMSG_FLAG.CUT), S(null, MMSG_FLAG.UNREAD)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 2n),
    // the second header could not be read: the list ends there, unreadable if the call got that far
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], [S(IN4(8)), S(null, MMSG_FLAG.END)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 3n),
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], [S(IN4(8)), S(null, MMSG_FLAG.END)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 1n),
    // read again at the return (not mapped at the call): the return's reading, readAtExit
    enter(REC.ENTER, 70, 307, [3, V, 1, 0], [S(null, MMSG_FLAG.END)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 1n, [S(IN4(9))], RET_REREAD),
    // only from the first message unreadable at the call: the one before stands as read then (a
    // thread repointed it since), and nothing is read again for a message the call did not send
    enter(REC.ENTER, 70, 307, [3, V, 2, 0], [S(IN4(1)), S(null, MMSG_FLAG.UNREAD)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 2n, [S(IN4(99)), S(IN4(2))], RET_REREAD),
    enter(REC.ENTER, 70, 307, [3, V, 2, 0], [S(IN4(1)), S(null, MMSG_FLAG.END)], ENTER_FLAG.MMSG_UNREAD), ret(REC.RET, 70, 307, 1n, [S(IN4(99)), S(IN4(2))], RET_REREAD),
    // made again: nothing handled yet
    enter(REC.ENTER, 70, 307, [3, V, 3, 0], three), ret(REC.RET, 70, 307, 307n, [], RET_SIGNAL.RESTART),
    // recvmmsg(4, vec, 4, MSG_DONTWAIT, NULL): three received; the second asked for no sender; the
    // third had a 4-byte room (family and port: cut)
    enter(REC.ENTER, 71, 299, [4, V, 4, 0x40, 0]), ret(REC.RET, 71, 299, 3n, [R(IN4(4450)), R(null), R(IN4(4451).subarray(0, 4), MMSG_FLAG.CUT)]),
    // nothing received; a failed one
    enter(REC.ENTER, 71, 299, [4, V, 4, 0x40, 0]), ret(REC.RET, 71, 299, 0n),
    enter(REC.ENTER, 71, 299, [4, V, 4, 0x40, 0]), ret(REC.RET, 71, 299, -11n),
    // 2 received, the second's header unreadable; received with no blob at all (not read): unreadable
    enter(REC.ENTER, 71, 299, [4, V, 4, 0, 0]), ret(REC.RET, 71, 299, 2n, [R(IN4(1)), R(null, MMSG_FLAG.END)]),
    enter(REC.ENTER, 71, 299, [4, V, 4, 0, 0]), ret(REC.RET, 71, 299, 2n),
    // 17 received: 16 senders, cut
    enter(REC.ENTER, 71, 299, [4, V, 17, 0, 0]), ret(REC.RET, 71, 299, 17n, Array.from({ length: 16 }, () => R(IN4(2)))),
    // i386: direct sendmmsg (struct compat_mmsghdr), recvmmsg and recvmmsg_time64
    enter(REC.ENTER32, 72, 345, [3, 0x8049000, 3, 0], three), ret(REC.RET32, 72, 345, 3n),
    enter(REC.ENTER32, 72, 337, [4, 0x8049000, 2, 0, 0]), ret(REC.RET32, 72, 337, 1n, [R(IN4(4450))]),
    enter(REC.ENTER32, 72, 417, [4, 0x8049000, 2, 0, 0]), ret(REC.RET32, 72, 417, 2n, [R(null), R(IN4(4451))]),
    // through socketcall: SYS_SENDMMSG (20, 4 words), SYS_RECVMMSG (19, 5 words); vlen from the words
    enter(REC.ENTER32, 72, 102, [20, 0x8049100], [blob(BLOB.SCARGS, words(3, 0x8049000, 3, 0)), ...three]), ret(REC.RET32, 72, 102, 3n),
    enter(REC.ENTER32, 72, 102, [19, 0x8049100], [blob(BLOB.SCARGS, words(4, 0x8049000, 2, 0, 0))]), ret(REC.RET32, 72, 102, 2n, [R(IN4(4450)), R(null)]),
    enter(REC.ENTER32, 72, 102, [20, 0x8049100], [blob(BLOB.SCARGS, words(3, 0x8049000, 0, 0))]), ret(REC.RET32, 72, 102, -9n),
  ]);
  const { events, stats } = await collectStream(stream);
  const got = events.map((e) => {
    assert.ok(e.type === 'syscall');
    return [e.abi, e.name, e.via ?? null, e.ret, e.addrs ?? null, e.truncated ?? null, e.unreadable ?? null, e.readAtExit ?? null];
  });
  const A = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
  const sent3 = [A(4448), A(4449), null];
  assert.deepEqual(got, [
    ['x86_64', 'sendmmsg', null, 3, sent3, null, null, null],
    ['x86_64', 'sendmmsg', null, 2, sent3.slice(0, 2), null, null, null],
    ['x86_64', 'sendmmsg', null, -111, sent3.slice(0, 1), null, null, null],
    ['x86_64', 'sendmmsg', null, 0, null, null, null, null],
    ['x86_64', 'sendmmsg', null, -9, null, null, null, null],
    ['x86_64', 'sendmmsg', null, 20, Array.from({ length: 16 }, (_, i) => A(5000 + i)), ['addr'], null, null],
    ['x86_64', 'sendmmsg', null, 2, [A(7)], ['addr'], ['addr'], null],
    ['x86_64', 'sendmmsg', null, 3, [A(8)], null, ['addr'], null],
    ['x86_64', 'sendmmsg', null, 1, [A(8)], null, null, null],
    ['x86_64', 'sendmmsg', null, 1, [A(9)], null, null, true],
    ['x86_64', 'sendmmsg', null, 2, [A(1), A(2)], null, null, true],
    ['x86_64', 'sendmmsg', null, 1, [A(1)], null, null, null],
    ['x86_64', 'sendmmsg', null, null, null, null, null, null],
    ['x86_64', 'recvmmsg', null, 3, [A(4450), null, { family: 'other', raw: 2 }], ['addr'], null, null],
    ['x86_64', 'recvmmsg', null, 0, null, null, null, null],
    ['x86_64', 'recvmmsg', null, -11, null, null, null, null],
    ['x86_64', 'recvmmsg', null, 2, [A(1)], null, ['addr'], null],
    ['x86_64', 'recvmmsg', null, 2, null, null, ['addr'], null],
    ['x86_64', 'recvmmsg', null, 17, Array.from({ length: 16 }, () => A(2)), ['addr'], null, null],
    ['i386', 'sendmmsg', null, 3, sent3, null, null, null],
    ['i386', 'recvmmsg', null, 1, [A(4450)], null, null, null],
    ['i386', 'recvmmsg_time64', null, 2, [null, A(4451)], null, null, null],
    ['i386', 'sendmmsg', 'socketcall', 3, sent3, null, null, null],
    ['i386', 'recvmmsg', 'socketcall', 2, [A(4450), null], null, null, null],
    ['i386', 'sendmmsg', 'socketcall', -9, null, null, null, null],
  ]);
  assert.deepEqual(events.map((e) => e.type === 'syscall' && e.nr).slice(-6), [345, 337, 417, 345, 337, 345]);
  // (no single address on these calls)
  assert.ok(events.every((e) => e.type === 'syscall' && e.addr === undefined));
  assert.equal(stats.parseErrors, 0);
});
