// The stream decoder on the probe's real output: chunk boundaries anywhere give the same events,
// and socket addresses of every family the kernel wrote decode right (needs root and `make
// setup`). On synthetic records: exec identities, and calls held for a signal's outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecEvent, SyscallEvent, TraceEvent } from '../events.js';
import { ProbeDecoder, REC_EXEC, REC_EXIT, REC_FIXED, REC_FORK, REC_SIGNAL, REC_STATS, REC_SYSCALL, userDev } from './decode.js';
import { capture, makeCgroup, runInCgroup } from './testutil.js';

const py = `
import os, socket
s6 = socket.socket(socket.AF_INET6); s6.bind(("::1", 0)); s6.listen(1)
c6 = socket.socket(socket.AF_INET6); c6.connect(s6.getsockname())
os.write(1, b"port6=%d\\n" % s6.getsockname()[1])
u = socket.socket(socket.AF_UNIX); u.bind("\\0sandtrace-abstract-test"); u.listen(1)
cu = socket.socket(socket.AF_UNIX); cu.connect("\\0sandtrace-abstract-test")
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.sendto(b"x", ("127.0.0.1", 9))
try: os.rename("/tmp/sandtrace-no-such-a", "/tmp/sandtrace-no-such-b")
except OSError: pass
`;

test('decoding is independent of chunk boundaries; addresses and two-path calls decode', { timeout: 30_000 }, async () => {
  const cg = makeCgroup('decode');
  const raw: Buffer[] = [];
  try {
    const { events, stats, result } = await capture({ cgroupPath: cg.path, rawSink: (b) => raw.push(Buffer.from(b)) },
      () => runInCgroup(cg.path, `exec /usr/bin/python3 -c '${py}'`));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(stats.lost, 0);
    const port6 = Number(/port6=(\d+)/.exec(result.stdout)?.[1]);
    const sys = events.filter((e): e is SyscallEvent => e.type === 'syscall');
    assert.deepEqual(sys.find((e) => e.name === 'connect' && e.addr?.family === 'inet6')?.addr, { family: 'inet6', address: '::1', port: port6 });
    assert.deepEqual(sys.find((e) => e.name === 'bind' && e.addr?.family === 'unix')?.addr, { family: 'unix', path: 'sandtrace-abstract-test', abstract: true });
    assert.deepEqual(sys.find((e) => e.name === 'sendto')?.addr, { family: 'inet', address: '127.0.0.1', port: 9 });
    const ren = sys.find((e) => e.name === 'rename' || e.name === 'renameat' || e.name === 'renameat2');
    assert.equal(ren?.path, '/tmp/sandtrace-no-such-a');
    assert.equal(ren?.path2, '/tmp/sandtrace-no-such-b');
    assert.equal(ren?.ret, -2);

    // The same bytes, re-cut into 1-, 7- and 4093-byte chunks, decode to the same events.
    const all = Buffer.concat(raw);
    const whole = new ProbeDecoder().push(all);
    assert.deepEqual(whole, events);
    for (const size of [1, 7, 4093]) {
      const d = new ProbeDecoder();
      const got: TraceEvent[] = [];
      for (let i = 0; i < all.length; i += size) got.push(...d.push(all.subarray(i, i + size)));
      assert.deepEqual(got, events, `chunks of ${size}`);
      assert.equal(d.leftover, 0);
      assert.equal(d.stats?.lost, 0);
      assert.equal(d.parseErrors, 0);
    }
    // A stream cut inside a record reports the leftover instead of inventing an event.
    const cut = new ProbeDecoder();
    cut.push(all.subarray(0, all.length - 3));
    assert.ok(cut.leftover > 0);
  } finally {
    await cg.remove();
  }
});

test('exec records: the loaded file\'s device in stat()\'s encoding, its 64-bit inode exact', () => {
  // kernel dev_t is major << 20 | minor; stat() has minor's low byte, major, then minor's upper bits
  assert.equal(userDev((8 << 20) | 1), 0x801); // sda1
  assert.equal(userDev((259 << 20) | 0x10005), 0x10010305);
  assert.equal(userDev(41), 41); // an anonymous device (overlayfs, tmpfs): major 0
  const exe = '/bin/x\0';
  const rec = Buffer.alloc(REC_FIXED + exe.length);
  rec[0] = REC_EXEC;
  rec[1] = 128; // F_INTERP
  rec.writeUInt16LE(exe.length, 2);
  rec.writeUInt32LE(7, 8);
  rec.writeUInt32LE(7, 12);
  rec.writeUInt32LE((8 << 20) | 1, 40); // a[0]: s_dev
  rec.writeBigUInt64LE((1n << 63n) | 5n, 48); // a[1]: an overlayfs xino inode, past 2^53
  rec.writeUInt16LE(exe.length, 96); // len_path
  rec.write(exe, REC_FIXED, 'latin1');
  const frame = Buffer.alloc(4 + rec.length + ((4 - (rec.length % 4)) % 4));
  frame.writeUInt32LE(rec.length, 0);
  rec.copy(frame, 4);
  const [ev] = new ProbeDecoder().push(frame) as ExecEvent[];
  assert.deepEqual(ev?.file, { dev: 0x801, ino: ((1n << 63n) | 5n).toString(), interpreter: true });
  // no identity (a[1] == 0): no field
  rec[1] = 0;
  rec.writeBigUInt64LE(0n, 48);
  rec.copy(frame, 4);
  assert.equal((new ProbeDecoder().push(frame)[0] as ExecEvent).file, undefined);
});

/** One framed record: type, tid, nr, a[], ret (the fixed part only). */
function frame(type: number, tid: number, f: { nr?: number; a?: number[]; ret?: number; flags?: number } = {}): Buffer {
  const rec = Buffer.alloc(type === REC_STATS ? 40 : REC_FIXED);
  rec[0] = type;
  if (type !== REC_STATS) {
    rec[1] = f.flags ?? 0;
    rec.writeInt32LE(f.nr ?? 0, 4);
    rec.writeUInt32LE(tid, 8);
    rec.writeUInt32LE(tid, 12);
    rec.writeBigUInt64LE(BigInt(tid) * 1000n, 16);
    rec.write('t', 24);
    (f.a ?? []).forEach((v, i) => rec.writeBigInt64LE(BigInt(v), 40 + i * 8));
    rec.writeBigInt64LE(BigInt(f.ret ?? 0), 88);
  }
  const out = Buffer.alloc(4 + rec.length);
  out.writeUInt32LE(rec.length, 0);
  rec.copy(out, 4);
  return out;
}
const ACCEPT4 = 288;
const call = (tid: number, ret: number, nr = ACCEPT4): Buffer => frame(REC_SYSCALL, tid, { nr, ret });
/** A signal record: signal, disposition (0 SIG_DFL, 1 SIG_IGN, 2 a handler), sa_flags, the call's restart code. */
const sig = (tid: number, signo: number, disp: number, ret: number, saFlags = 0): Buffer => frame(REC_SIGNAL, tid, { nr: ACCEPT4, a: [signo, disp, saFlags], ret });
const SA_RESTART = 0x10000000;
const brief = (evs: TraceEvent[]): string[] => evs.map((e) => e.type === 'syscall'
  ? `${e.seq} ${e.tid} ${e.name} ${e.ret}${e.signal ? ` ${e.signal}` : ''}` : `${e.seq} ${e.tid} ${e.type}`);

test('a call that exited with a restart code waits for its thread\'s next record; other threads\' events go on, seq stays in order', () => {
  const d = new ProbeDecoder();
  assert.deepEqual(brief(d.push(call(1, -512))), []);
  assert.deepEqual(brief(d.push(call(2, 2, 39))), ['1 2 getpid 2']); // another thread is not held up
  // a stop, an ignored signal and a continue decide nothing: the call stays pending
  assert.deepEqual(brief(d.push(Buffer.concat([sig(1, 19, 0, -512), sig(1, 10, 1, -512), sig(1, 18, 0, -512)]))), []);
  // then a handler without SA_RESTART: EINTR, released now, seq after the other thread's event
  assert.deepEqual(brief(d.push(sig(1, 14, 2, -512))), ['2 1 accept4 -4 interrupted']);
  assert.deepEqual(brief(d.push(call(1, 5))), ['3 1 accept4 5']);
  // no handler ran: the thread's next call (the same one made again) says it was restarted
  assert.deepEqual(brief(d.push(Buffer.concat([call(1, -512), sig(1, 19, 0, -512), call(1, 6)]))), ['4 1 accept4 null restarted', '5 1 accept4 6']);
  // a restarted call cut into again: the first settled, the second held in turn
  assert.deepEqual(brief(d.push(Buffer.concat([call(1, -512), call(1, -512)]))), ['6 1 accept4 null restarted']);
  assert.deepEqual(brief(d.push(frame(REC_FORK, 1, { a: [9, 9] }))), ['7 1 accept4 null restarted', '8 1 fork']);
  assert.deepEqual(d.parseErrors, 0);
});

test('each restart code with each disposition settles as handle_signal() does', () => {
  const cases: [number, number, number, number, string][] = [
    // ret, signal, disposition, sa_flags -> outcome
    [-512, 14, 2, SA_RESTART, 'accept4 null restarted'],
    [-512, 14, 2, 0, 'accept4 -4 interrupted'],
    [-513, 14, 2, 0, 'accept4 null restarted'], // ERESTARTNOINTR: always made again
    [-514, 14, 2, SA_RESTART, 'accept4 -4 interrupted'], // ERESTARTNOHAND: EINTR whenever a handler runs
    [-516, 14, 2, SA_RESTART, 'accept4 -4 interrupted'], // ERESTART_RESTARTBLOCK too
    [-512, 9, 0, 0, 'accept4 null'], // SIGKILL: the call never returns, no mark
    [-512, 15, 0, 0, 'accept4 null'], // a default action that kills
  ];
  for (const [ret, signo, disp, fl, want] of cases) {
    const d = new ProbeDecoder();
    assert.deepEqual(brief(d.push(Buffer.concat([call(1, ret), sig(1, signo, disp, ret, fl)]))), [`1 1 ${want}`], `${ret} ${signo} ${disp} ${fl}`);
  }
});

test('a held call of a task that exits was killed inside it; a signal with nothing held is no event', () => {
  const d = new ProbeDecoder();
  assert.deepEqual(brief(d.push(Buffer.concat([sig(3, 14, 2, -512), call(1, -512), sig(1, 19, 0, -512), frame(REC_EXIT, 1, { ret: 9 })]))),
    ['1 1 accept4 null', '2 1 exit']);
  const ev = new ProbeDecoder().push(Buffer.concat([call(1, -512), frame(REC_EXIT, 1, { ret: 9 })]))[0] as SyscallEvent;
  assert.equal(ev.signal, undefined);
  assert.equal(d.parseErrors, 0);
});

test('calls still held when the stream ends are released as reported, in seq order: at STATS, or by flush()', () => {
  const d = new ProbeDecoder();
  assert.deepEqual(brief(d.push(Buffer.concat([call(1, -512), call(2, -516, 230), call(3, 0, 39)]))), ['1 3 getpid 0']);
  assert.deepEqual(brief(d.push(frame(REC_STATS, 0))), ['2 1 accept4 -512', '3 2 clock_nanosleep -516']);
  assert.deepEqual(d.flush(), []);
  // a stream that broke off (no STATS): the collector flushes
  const cut = new ProbeDecoder();
  assert.deepEqual(brief(cut.push(call(1, -514, 34))), []);
  assert.deepEqual(brief(cut.flush()), ['1 1 pause -514']);
  assert.deepEqual(cut.flush(), []);
});

// sendmmsg/recvmmsg: the addr region is a list of [u16 word][sockaddr] entries (probe/sandtrace.h):
// word & 0x0fff the sockaddr's length (0: null), 0x8000 cut, 0x4000 unreadable (the list ends).
const MM_CUT = 0x8000;
const MM_BAD = 0x4000;
const A_ADDR = 8;
/** A sockaddr_in for 127.0.0.1:port (16 bytes). */
const sin = (port: number): Buffer => {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from([127, 0, 0, 1]).copy(b, 4);
  return b;
};
/** An entry: a sockaddr (null: a null entry), with extra flag bits. */
const entry = (sa: Buffer | null, flags = 0): Buffer => {
  const w = Buffer.alloc(2);
  w.writeUInt16LE((sa?.length ?? 0) | flags, 0);
  return sa ? Buffer.concat([w, sa]) : w;
};
/** A syscall record with an addr region (len_addr) and cut/bad bytes, framed. */
function mmsgFrame(nr: number, ret: number | null, vlen: number, entries: Buffer[], f: { compat?: boolean; cut?: number; bad?: number; socketcall?: boolean } = {}): Buffer {
  const data = Buffer.concat(entries);
  const rec = Buffer.alloc(REC_FIXED + data.length);
  rec[0] = REC_SYSCALL;
  rec[1] = (f.compat ? 1 : 0) | (ret === null ? 2 : 0) | (f.cut ? 8 : 0) | (f.socketcall ? 32 : 0);
  rec.writeUInt16LE(data.length, 2);
  rec.writeInt32LE(nr, 4);
  rec.writeUInt32LE(7, 8);
  rec.writeUInt32LE(7, 12);
  rec.write('t', 24);
  [5, 0x1000, vlen, 0].forEach((v, i) => rec.writeBigInt64LE(BigInt(v), 40 + i * 8));
  rec.writeBigInt64LE(BigInt(ret ?? 0), 88);
  rec.writeUInt16LE(data.length, 102); // len_addr
  rec[106] = f.cut ?? 0;
  rec[107] = f.bad ?? 0;
  data.copy(rec, REC_FIXED);
  const out = Buffer.alloc(4 + rec.length + ((4 - (rec.length % 4)) % 4));
  out.writeUInt32LE(rec.length, 0);
  rec.copy(out, 4);
  return out;
}
const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
const mm = (buf: Buffer): { name: string; ret: number | null; addrs?: unknown; truncated?: string[]; unreadable?: string[] } => {
  const d = new ProbeDecoder();
  const [ev, ...rest] = d.push(buf) as SyscallEvent[];
  assert.equal(rest.length, 0);
  assert.equal(d.parseErrors, 0);
  const o: ReturnType<typeof mm> = { name: ev!.name, ret: ev!.ret };
  if (ev!.addrs !== undefined) o.addrs = ev!.addrs;
  if (ev!.addr !== undefined) o.addrs = ['addr?', ev!.addr];
  if (ev!.truncated) o.truncated = ev!.truncated;
  if (ev!.unreadable) o.unreadable = ev!.unreadable;
  return o;
};

test('sendmmsg: the destinations of the messages the call handled (ret; the first one when it failed); null for a message naming none', () => {
  const three = [entry(sin(4448)), entry(null), entry(sin(4449))];
  assert.deepEqual(mm(mmsgFrame(307, 3, 3, three)), { name: 'sendmmsg', ret: 3, addrs: [inet(4448), null, inet(4449)] });
  // two of three sent: the third was read at the call but not sent
  assert.deepEqual(mm(mmsgFrame(307, 2, 3, three)), { name: 'sendmmsg', ret: 2, addrs: [inet(4448), null] });
  // failed: the kernel reports an error only when nothing was sent: the first message is the one it tried
  assert.deepEqual(mm(mmsgFrame(307, -111, 3, three)), { name: 'sendmmsg', ret: -111, addrs: [inet(4448)] });
  // never returned (killed inside it): the first message, as for a failure
  assert.deepEqual(mm(mmsgFrame(307, null, 3, three)), { name: 'sendmmsg', ret: null, addrs: [inet(4448)] });
  // nothing handled: no list at all (ret 0; vlen 0)
  assert.deepEqual(mm(mmsgFrame(307, 0, 3, three)), { name: 'sendmmsg', ret: 0 });
  assert.deepEqual(mm(mmsgFrame(307, -9, 0, [])), { name: 'sendmmsg', ret: -9 });
  // i386, direct (345) and through socketcall (unpacked to 345): the same list
  assert.deepEqual(mm(mmsgFrame(345, 3, 3, three, { compat: true })), { name: 'sendmmsg', ret: 3, addrs: [inet(4448), null, inet(4449)] });
  assert.deepEqual(mm(mmsgFrame(345, 1, 3, three, { compat: true, socketcall: true })), { name: 'sendmmsg', ret: 1, addrs: [inet(4448)] });
});

test('sendmmsg: cut and unreadable marks come from the entries kept; more than 16 messages handled is cut', () => {
  // an address cut at 128 bytes in a message that was sent: truncated
  const cut = Buffer.concat([sin(9), Buffer.alloc(112)]);
  assert.deepEqual(mm(mmsgFrame(307, 2, 2, [entry(sin(1)), entry(cut, MM_CUT)], { cut: A_ADDR })),
    { name: 'sendmmsg', ret: 2, addrs: [inet(1), inet(9)], truncated: ['addr'] });
  // ... in a message that was not sent: no mark
  assert.deepEqual(mm(mmsgFrame(307, 1, 2, [entry(sin(1)), entry(cut, MM_CUT)], { cut: A_ADDR })), { name: 'sendmmsg', ret: 1, addrs: [inet(1)] });
  // the third header unreadable: the list ends there; marked only when that message was handled
  const badThird = [entry(sin(1)), entry(sin(2)), entry(null, MM_BAD)];
  assert.deepEqual(mm(mmsgFrame(307, 2, 3, badThird, { bad: A_ADDR })), { name: 'sendmmsg', ret: 2, addrs: [inet(1), inet(2)] });
  assert.deepEqual(mm(mmsgFrame(307, 3, 3, badThird, { bad: A_ADDR })), { name: 'sendmmsg', ret: 3, addrs: [inet(1), inet(2)], unreadable: ['addr'] });
  // the vector itself unreadable (EFAULT): no list, unreadable
  assert.deepEqual(mm(mmsgFrame(307, -14, 3, [entry(null, MM_BAD)], { bad: A_ADDR })), { name: 'sendmmsg', ret: -14, unreadable: ['addr'] });
  // 20 messages sent, 16 read: cut (the decoder knows from ret)
  const sixteen = Array.from({ length: 16 }, (_, i) => entry(sin(1000 + i)));
  const all16 = Array.from({ length: 16 }, (_, i) => inet(1000 + i));
  assert.deepEqual(mm(mmsgFrame(307, 20, 20, sixteen)), { name: 'sendmmsg', ret: 20, addrs: all16, truncated: ['addr'] });
  assert.deepEqual(mm(mmsgFrame(307, 16, 20, sixteen)), { name: 'sendmmsg', ret: 16, addrs: all16 });
  assert.deepEqual(mm(mmsgFrame(307, -11, 20, sixteen)), { name: 'sendmmsg', ret: -11, addrs: [inet(1000)] });
});

test('recvmmsg: the sender of each message received; null where none was asked for; cut at the room', () => {
  const list = [entry(sin(4450)), entry(null), entry(sin(4451)), entry(sin(4450).subarray(0, 4), MM_CUT), entry(null, MM_CUT)];
  assert.deepEqual(mm(mmsgFrame(299, 5, 8, list, { cut: A_ADDR })), {
    name: 'recvmmsg', ret: 5,
    addrs: [inet(4450), null, inet(4451), { family: 'other', raw: 2 }, null], truncated: ['addr'],
  });
  assert.deepEqual(mm(mmsgFrame(299, 3, 8, list.slice(0, 3))), { name: 'recvmmsg', ret: 3, addrs: [inet(4450), null, inet(4451)] });
  // nothing received: no list
  assert.deepEqual(mm(mmsgFrame(299, -11, 8, [])), { name: 'recvmmsg', ret: -11 });
  assert.deepEqual(mm(mmsgFrame(299, 0, 8, [])), { name: 'recvmmsg', ret: 0 });
  // a header unreadable at the return ends the list: unreadable
  assert.deepEqual(mm(mmsgFrame(299, 3, 3, [entry(sin(1)), entry(null, MM_BAD)], { bad: A_ADDR })),
    { name: 'recvmmsg', ret: 3, addrs: [inet(1)], unreadable: ['addr'] });
  // more than 16 received: 16 senders, cut
  const sixteen = Array.from({ length: 16 }, () => entry(sin(7)));
  assert.deepEqual(mm(mmsgFrame(299, 17, 32, sixteen)), { name: 'recvmmsg', ret: 17, addrs: Array.from({ length: 16 }, () => inet(7)), truncated: ['addr'] });
  // i386: recvmmsg (337) and recvmmsg_time64 (417)
  assert.deepEqual(mm(mmsgFrame(337, 1, 2, [entry(sin(3))], { compat: true })), { name: 'recvmmsg', ret: 1, addrs: [inet(3)] });
  assert.deepEqual(mm(mmsgFrame(417, 2, 2, [entry(null), entry(sin(3))], { compat: true })), { name: 'recvmmsg_time64', ret: 2, addrs: [null, inet(3)] });
  // fewer entries than messages received, or none at all: what was not read is unreadable, never silently short
  assert.deepEqual(mm(mmsgFrame(299, 3, 3, [entry(sin(1))])), { name: 'recvmmsg', ret: 3, addrs: [inet(1)], unreadable: ['addr'] });
  assert.deepEqual(mm(mmsgFrame(299, 2, 2, [])), { name: 'recvmmsg', ret: 2, unreadable: ['addr'] });
});

test('other calls keep their single address and marks', () => {
  // sendmsg (46) with one sockaddr in the addr region, cut: addr, not addrs
  assert.deepEqual(mm(mmsgFrame(46, 1, 0, [sin(5)], { cut: A_ADDR })), { name: 'sendmsg', ret: 1, addrs: ['addr?', inet(5)], truncated: ['addr'] });
});

test('an open the probe named from its descriptor (K_PATH) carries pathFromKernel, not an unreadable or re-read mark', () => {
  const K_PATH = 16, F_REREAD = 64, A_PATH = 1;
  const open = (bad: number, flags: number) => {
    const path = Buffer.from('/tmp/w/fifo\0');
    const rec = Buffer.alloc(REC_FIXED + path.length);
    rec[0] = REC_SYSCALL;
    rec[1] = flags;
    rec.writeUInt16LE(path.length, 2);
    rec.writeInt32LE(257, 4);
    rec.writeUInt32LE(7, 8);
    rec.writeUInt32LE(7, 12);
    rec.writeBigInt64LE(3n, 88);
    rec.writeUInt16LE(path.length, 96); // len_path
    rec[107] = bad;
    path.copy(rec, REC_FIXED);
    const framed = Buffer.alloc(4 + rec.length + ((4 - (rec.length % 4)) % 4));
    framed.writeUInt32LE(rec.length, 0);
    rec.copy(framed, 4);
    const [ev] = new ProbeDecoder().push(framed) as SyscallEvent[];
    return { path: ev!.path, pathFromKernel: ev!.pathFromKernel, readAtExit: ev!.readAtExit, unreadable: ev!.unreadable };
  };
  assert.deepEqual(open(K_PATH, 0), { path: '/tmp/w/fifo', pathFromKernel: true, readAtExit: undefined, unreadable: undefined });
  // the caller's string read again at the return: marked so, and not the kernel's
  assert.deepEqual(open(0, F_REREAD), { path: '/tmp/w/fifo', pathFromKernel: undefined, readAtExit: true, unreadable: undefined });
  assert.deepEqual(open(A_PATH, F_REREAD).unreadable, ['path']);
});

test('a connect the probe took the peer of from its socket (K_ADDR) carries addrFromKernel', () => {
  const K_ADDR = 32;
  const connect = (bad: number) => {
    const [ev] = new ProbeDecoder().push(mmsgFrame(42, 0, 16, [sin(4242)], { bad })) as SyscallEvent[];
    return { addr: ev!.addr, addrFromKernel: ev!.addrFromKernel, unreadable: ev!.unreadable };
  };
  assert.deepEqual(connect(K_ADDR), { addr: inet(4242), addrFromKernel: true, unreadable: undefined });
  // read from the caller's memory: no mark
  assert.deepEqual(connect(0), { addr: inet(4242), addrFromKernel: undefined, unreadable: undefined });
});
