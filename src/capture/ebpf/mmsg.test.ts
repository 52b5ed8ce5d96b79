// sendmmsg and recvmmsg on the real probe: every message's address (SyscallEvent.addrs), sendmmsg's
// destinations read at the call and kept for the messages the call sent, recvmmsg's senders read
// at the return where each msg_name pointed at the call, cut at its room; x86_64, and i386 direct
// and through socketcall. Needs root and `make setup`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { SyscallEvent, TraceEvent } from '../events.js';
import { defaultLoaderPath } from './collector.js';
import { PY_SOCKETS, capturePython, ia32Syscalls } from './testutil.js';

const syscalls = (evs: TraceEvent[]) => evs.filter((e): e is SyscallEvent => e.type === 'syscall');
const inet = (port: number) => ({ family: 'inet', address: '127.0.0.1', port });
const brief = (e: SyscallEvent | undefined) => e && [e.name, e.ret, e.addrs ?? 'none', e.truncated ?? [], e.unreadable ?? []];

before(() => {
  assert.ok(existsSync(defaultLoaderPath()), `the eBPF probe is not built (${defaultLoaderPath()}): run make setup`);
  assert.equal(process.getuid?.(), 0, 'the eBPF tests need root');
});

// Every socket is UDP on 127.0.0.1 with a port the kernel picks; the script prints them.
const X64 = `${PY_SOCKETS}import threading, time
assert ctypes.sizeof(mmsghdr) == 64
r1, r2, r3, s, s2 = udp(), udp(), udp(), udp(), udp()
port = lambda x: x.getsockname()[1]
keep = []
def sockaddr(p):
    b = ctypes.create_string_buffer(socket.AF_INET.to_bytes(2, 'little') + p.to_bytes(2, 'big') + socket.inet_aton('127.0.0.1') + bytes(8), 16)
    keep.append(b); return b
def vec(names):
    # names: a port (that destination), None (msg_name NULL), or ('room', n): an n-byte buffer
    msgs = (mmsghdr * len(names))()
    for i, n in enumerate(names):
        buf = ctypes.create_string_buffer(64); keep.append(buf)
        io = iovec(ctypes.cast(buf, ctypes.c_void_p), 8); keep.append(io)
        if n is None:
            name, size = None, 0
        elif isinstance(n, tuple):
            name = ctypes.create_string_buffer(b'\\x0a\\x0b\\x0c\\x0d' * 32); keep.append(name); size = n[1]
        else:
            name = sockaddr(n); size = 16
        msgs[i].hdr = msghdr(ctypes.cast(name, ctypes.c_void_p) if name is not None else None, size, ctypes.pointer(io), 1, None, 0, 0)
    return msgs
def sendmmsg(sock, names):
    return libc.sendmmsg(sock.fileno(), vec(names), len(names), 0)
print('ports', port(r1), port(r2), port(r3), port(s), port(s2))
# connected to r2: a message naming no destination goes there, the others where they say
s.connect(('127.0.0.1', port(r2)))
print('three', sendmmsg(s, [port(r1), None, port(r3)]))
# unconnected: a message naming none fails (EDESTADDRREQ); the kernel reports what it sent before
print('partial', sendmmsg(s2, [port(r1), None, port(r3)]))
print('failed', sendmmsg(s2, [None, port(r1)]))
# 20 messages, to r3 then r1 alternately: 16 read, marked cut
print('twenty', sendmmsg(s2, [port(r3) if i % 2 == 0 else port(r1) for i in range(20)]))
for r in (r1, r2, r3):
    r.setblocking(False)
    try:
        while True: r.recv(64)
    except BlockingIOError: pass
    r.setblocking(True)
# recvmmsg of 5 datagrams (s, s2, s, s2, s): a sender, none asked for, room for 4 bytes (cut),
# room for none (cut), a sender; MSG_WAITFORONE: returns with what is queued
for x in (s, s2, s, s2, s): x.sendto(b'd', r1.getsockname())
MSG_WAITFORONE = 0x10000
print('received', libc.recvmmsg(r1.fileno(), vec([('room', 128), None, ('room', 4), ('room', 0), ('room', 128), ('room', 128)]), 6, MSG_WAITFORONE, None))
# 18 datagrams, vlen 20: 16 senders read, cut
for i in range(18): (s2 if i % 3 else s).sendto(b'e', r1.getsockname())
print('eighteen', libc.recvmmsg(r1.fileno(), vec([('room', 128)] * 20), 20, MSG_WAITFORONE, None))
print('efault', libc.recvmmsg(r1.fileno(), ctypes.c_void_p(8), 2, MSG_WAITFORONE, None))
# blocked in recvmmsg, its first msg_name is pointed at a planted 10.11.12.13:7 by another thread,
# then the datagram comes: the kernel writes the sender where msg_name pointed at the call
fake = ctypes.create_string_buffer(b'\\x02\\x00\\x00\\x07\\x0a\\x0b\\x0c\\x0d' + b'\\0' * 8)
v = vec([('room', 128), ('room', 128)])
def swap():
    time.sleep(0.3)
    v[0].hdr.name = ctypes.cast(fake, ctypes.c_void_p).value
    s2.sendto(b'y', r1.getsockname())
threading.Thread(target=swap).start()
print('swapped', libc.recvmmsg(r1.fileno(), v, 2, MSG_WAITFORONE, None), flush=True)
`;

test('x86_64 sendmmsg and recvmmsg: each message\'s destination or sender, for the messages the call handled', { timeout: 30_000 }, async () => {
  const { events, stats, result } = await capturePython('mmsg', X64);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  assert.equal(stats.parseErrors, 0);
  const m = /ports (\d+) (\d+) (\d+) (\d+) (\d+)\nthree 3\npartial 1\nfailed -1\ntwenty 20\nreceived 5\neighteen 18\nefault -1\nswapped 1\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const [r1, , r3, s, s2] = m.slice(1).map(Number) as [number, number, number, number, number];
  const sys = syscalls(events).filter((e) => e.pid === result.pid);
  const sends = sys.filter((e) => e.name === 'sendmmsg');
  assert.deepEqual(sends.map(brief), [
    // a NULL msg_name on a connected socket: null (the connect names that destination)
    ['sendmmsg', 3, [inet(r1), null, inet(r3)], [], []],
    // the second message failed (EDESTADDRREQ): only the first was sent, the third not tried
    ['sendmmsg', 1, [inet(r1)], [], []],
    // nothing sent: the error is the first message's, which named none
    ['sendmmsg', -89, [null], [], []],
    // 20 sent, the first 16 read
    ['sendmmsg', 20, Array.from({ length: 16 }, (_, i) => inet(i % 2 === 0 ? r3 : r1)), ['addr'], []],
  ]);
  const recvs = sys.filter((e) => e.name === 'recvmmsg');
  const senders18 = Array.from({ length: 16 }, (_, i) => inet(i % 3 ? s2 : s));
  assert.deepEqual(recvs.map(brief), [
    // 4 bytes of the third sender: family and port, never the planted 10.11.12.13 after them;
    // room for none: null, cut
    ['recvmmsg', 5, [inet(s), null, { family: 'other', raw: 2 }, null, inet(s)], ['addr'], []],
    ['recvmmsg', 18, senders18, ['addr'], []],
    ['recvmmsg', -14, 'none', [], []],
    // msg_name swapped for a planted address while the call blocked: the real sender still
    ['recvmmsg', 1, [inet(s2)], [], []],
  ]);
  assert.ok(sends.concat(recvs).every((e) => e.readAtExit === undefined));
});

// A 64-bit python issues i386 calls with `int 0x80`, from code and data mapped below 4 GiB
// (MAP_32BIT), as truncation.test.ts's i386 test does; this stub passes five arguments (ebx, ecx,
// edx, esi, edi: recvmmsg's timeout is the fifth).
const I386 = `${PY_SOCKETS}import struct
MAP_32BIT, ANON_PRIVATE = 0x40, 0x22
# push rbx; eax=nr; ebx, ecx, edx, esi, edi from the C arguments; int 0x80; pop rbx; ret
code = bytes([0x53, 0x89, 0xf8, 0x89, 0xf3, 0x49, 0x89, 0xca, 0x89, 0xd1, 0x44, 0x89, 0xd2, 0x44, 0x89, 0xc6, 0x44, 0x89, 0xcf,
              0xcd, 0x80, 0x5b, 0xc3])
cp = libc.mmap(None, 4096, 7, ANON_PRIVATE | MAP_32BIT, -1, 0)
ctypes.memmove(cp, code, len(code))
sc32 = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(cp)
data = libc.mmap(None, 1 << 16, 3, ANON_PRIVATE | MAP_32BIT, -1, 0)
top = [0]
def put(b):
    off = top[0]; top[0] += (len(b) + 15) & ~15
    ctypes.memmove(data + off, b, len(b)); return data + off
r1, r2, s = udp(), udp(), udp()
port = lambda x: x.getsockname()[1]
def sin(p):
    return put(struct.pack('<HH4s8x', 2, socket.htons(p), bytes([127, 0, 0, 1])))
# struct compat_mmsghdr: compat_msghdr (u32 msg_name, s32 msg_namelen, u32 msg_iov,
# u32 msg_iovlen, u32 msg_control, u32 msg_controllen, u32 msg_flags) and u32 msg_len: 32 bytes
def vec(names):
    out = b''
    for name, size in names:
        iov = put(struct.pack('<II', put(bytes(64)), 8))
        out += struct.pack('<IiIIIIII', name, size, iov, 1, 0, 0, 0, 0)
    return put(out)
def room(n):
    return (put(b'\\x0a\\x0b\\x0c\\x0d' * 32), n)
def sockcall(call, *a):
    return sc32(102, call, put(struct.pack('<%dI' % len(a), *a)), 0, 0, 0)
print('ports', port(r1), port(r2), port(s))
s.connect(('127.0.0.1', port(r2)))
print('sendmmsg', sc32(345, s.fileno(), vec([(sin(port(r1)), 16), (0, 0), (sin(port(r2)), 16)]), 3, 0, 0))
print('sc-sendmmsg', sockcall(20, s.fileno(), vec([(sin(port(r2)), 16), (sin(port(r1)), 16)]), 2, 0))
r1.setblocking(False)
try:
    while True: r1.recv(64)
except BlockingIOError: pass
MSG_WAITFORONE = 0x10000
for i in range(3): s.sendto(b'x', r1.getsockname())
print('recvmmsg', sc32(337, r1.fileno(), vec([room(16), (0, 0), room(4)]), 3, MSG_WAITFORONE, 0))
for i in range(2): s.sendto(b'x', r1.getsockname())
print('sc-recvmmsg', sockcall(19, r1.fileno(), vec([room(16), room(16), room(16)]), 3, MSG_WAITFORONE, 0))
s.sendto(b'x', r1.getsockname())
print('recvmmsg64', sc32(417, r1.fileno(), vec([room(16)]), 1, MSG_WAITFORONE, 0))
# a socketcall recvmmsg whose argument array is not paged in at the call (a file mapping never
# touched) is unpacked only at the return, where its headers say where the sender went; the msg_name
# of the recvmmsg before it, planted with 10.11.12.13:7 since, must not be taken for its
prev = room(16)
s.sendto(b'x', r1.getsockname())
print('prev', sc32(337, r1.fileno(), vec([prev]), 1, MSG_WAITFORONE, 0))
ctypes.memmove(prev[0], struct.pack('<HH4s8x', 2, socket.htons(7), bytes([10, 11, 12, 13])), 16)
import tempfile
f = tempfile.TemporaryFile(); f.write(struct.pack('<5I', r1.fileno(), vec([room(16)]), 1, MSG_WAITFORONE, 0).ljust(4096, b'\\0')); f.flush()
args = libc.mmap(None, 4096, 1, 2 | MAP_32BIT, f.fileno(), 0)
s.sendto(b'x', r1.getsockname())
print('unpaged', sc32(102, 19, args, 0, 0, 0), flush=True)
`;

test('i386 sendmmsg and recvmmsg (compat_mmsghdr), direct and through socketcall', { timeout: 30_000 }, async (t) => {
  const ia32 = ia32Syscalls();
  if (!ia32.ok) { t.skip(ia32.why); return; }
  const { events, stats, result } = await capturePython('mmsg32', I386);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  assert.equal(stats.parseErrors, 0);
  const m = /ports (\d+) (\d+) (\d+)\nsendmmsg 3\nsc-sendmmsg 2\nrecvmmsg 3\nsc-recvmmsg 2\nrecvmmsg64 1\nprev 1\nunpaged 1\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const [r1, r2, s] = m.slice(1).map(Number) as [number, number, number];
  const calls = syscalls(events).filter((e) => e.abi === 'i386' && /mmsg/.test(e.name));
  assert.deepEqual(calls.map((e) => [e.via ?? 'direct', e.nr, ...brief(e)!]), [
    ['direct', 345, 'sendmmsg', 3, [inet(r1), null, inet(r2)], [], []],
    ['socketcall', 345, 'sendmmsg', 2, [inet(r2), inet(r1)], [], []],
    ['direct', 337, 'recvmmsg', 3, [inet(s), null, { family: 'other', raw: 2 }], ['addr'], []],
    ['socketcall', 337, 'recvmmsg', 2, [inet(s), inet(s)], [], []],
    ['direct', 417, 'recvmmsg_time64', 1, [inet(s)], [], []],
    ['direct', 337, 'recvmmsg', 1, [inet(s)], [], []],
    // unpacked at the return: the sender where its own header points, not where the call before pointed
    ['socketcall', 337, 'recvmmsg', 1, [inet(s)], [], []],
  ]);
  assert.deepEqual(calls.map((e) => e.readAtExit ?? false), [false, false, false, false, false, false, true]);
});

// A destination in a file mapping the process never touched: the probe cannot read it at the call
// (no page yet), the kernel faults it in and uses it.
const UNPAGED = `${PY_SOCKETS}import tempfile
r1, r2, s = udp(), udp(), udp()
port = lambda x: x.getsockname()[1]
def sin(p, family=socket.AF_INET):
    return family.to_bytes(2, 'little') + p.to_bytes(2, 'big') + socket.inet_aton('127.0.0.1') + bytes(8)
def unpaged(b, prot=1):
    # a private mapping of a file, never read or written by this process
    f = tempfile.TemporaryFile(); f.write(b.ljust(4096, b'\\0')); f.flush()
    return libc.mmap(None, 4096, prot, 2, f.fileno(), 0), f
keep = []
def send(names):
    msgs = (mmsghdr * len(names))()
    for i, name in enumerate(names):
        buf = ctypes.create_string_buffer(8); keep.append(buf)
        io = iovec(ctypes.cast(buf, ctypes.c_void_p), 8); keep.append(io)
        if isinstance(name, bytes):
            b = ctypes.create_string_buffer(name, 16); keep.append(b); name = ctypes.cast(b, ctypes.c_void_p).value
        msgs[i].hdr = msghdr(name, 16, ctypes.pointer(io), 1, None, 0, 0)
    return libc.sendmmsg(s.fileno(), msgs, len(names), 0)
print('ports', port(r1), port(r2), port(s))
# the second destination not paged in, sent: read again at the return, from that message on
a, fa = unpaged(sin(port(r2)))
print('sent', send([sin(port(r1)), a]))
# the second not paged in and refused by the kernel (an AF_INET6 family on an AF_INET socket): never
# sent, so never read again; the first stands as read at the call
b, fb = unpaged(sin(port(r2), socket.AF_INET6))
print('refused', send([sin(port(r1)), b]))
# a recvmsg's msghdr and a recvmmsg's vector not paged in at the call (writable: the kernel writes
# msg_namelen back): the senders are read at the return, from msg_name as it is then, and said so
names = [ctypes.create_string_buffer(16) for i in range(3)]; rb = ctypes.create_string_buffer(8)
rio = iovec(ctypes.cast(rb, ctypes.c_void_p), 8)
hdr = lambda i: msghdr(ctypes.cast(names[i], ctypes.c_void_p), 16, ctypes.pointer(rio), 1, None, 0, 0)
v = (mmsghdr * 2)(); v[0].hdr = hdr(1); v[1].hdr = hdr(2)
h, fh = unpaged(bytes(hdr(0)), 3)
vv, fv = unpaged(bytes(v), 3)
r1.setblocking(False)
try:
    while True: r1.recv(64)
except BlockingIOError: pass
for i in range(3): s.sendto(b'x', r1.getsockname())
print('recvmsg', libc.recvmsg(r1.fileno(), ctypes.c_void_p(h), socket.MSG_DONTWAIT))
print('recvmmsg', libc.recvmmsg(r1.fileno(), ctypes.c_void_p(vv), 2, socket.MSG_DONTWAIT, None), flush=True)
`;

test('a sendmmsg destination not paged in at the call is read at the return, from that message on, and only when the call sent it; so are recvmsg and recvmmsg headers', { timeout: 30_000 }, async () => {
  const { events, stats, result } = await capturePython('mmsg-unpaged', UNPAGED);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  const m = /ports (\d+) (\d+) (\d+)\nsent 2\nrefused 1\nrecvmsg 1\nrecvmmsg 2\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const [r1, r2, s] = m.slice(1).map(Number) as [number, number, number];
  const sends = syscalls(events).filter((e) => e.pid === result.pid && e.name === 'sendmmsg');
  assert.deepEqual(sends.map((e) => [...brief(e)!, e.readAtExit ?? false]), [
    ['sendmmsg', 2, [inet(r1), inet(r2)], [], [], true],
    ['sendmmsg', 1, [inet(r1)], [], [], false],
  ]);
  // the senders, where msg_name points at the return (nothing noted at the call): marked read at exit
  const recvs = syscalls(events).filter((e) => e.pid === result.pid && /^recvm/.test(e.name));
  assert.deepEqual(recvs.map((e) => [...brief(e)!, e.addr ?? null, e.readAtExit ?? false]), [
    ['recvmsg', 1, 'none', [], [], inet(s), true],
    ['recvmmsg', 2, [inet(s), inet(s)], [], [], null, true],
  ]);
});
