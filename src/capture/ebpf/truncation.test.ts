// The probe never loses an argument silently: a path, argv or address it cut is marked
// `truncated`, one it could not read is marked `unreadable` (and is absent, not empty), and the
// report says how many events carry such marks. Real probe, real workloads: needs root and `make setup`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecEvent, SyscallEvent, TraceEvent } from '../events.js';
import { RecordingWriter } from '../replay/recording.js';
import { replay } from '../../replay.js';
import { defaultLoaderPath } from './collector.js';
import { PY_SOCKETS, capture, capturePython, ia32Syscalls, makeCgroup, runInCgroup } from './testutil.js';

const syscalls = (evs: TraceEvent[]) => evs.filter((e): e is SyscallEvent => e.type === 'syscall');
const marked = (e: TraceEvent) => (e.type === 'syscall' || e.type === 'exec') && (e.truncated !== undefined || e.unreadable !== undefined);

before(() => {
  assert.ok(existsSync(defaultLoaderPath()), `the eBPF probe is not built (${defaultLoaderPath()}): run make setup`);
  assert.equal(process.getuid?.(), 0, 'the eBPF tests need root');
});

// Paths: 4095 bytes (PATH_MAX - 1, the longest the kernel takes) fit exactly; 6000 bytes are cut
// to that prefix. Bad pointers (1, 8) for a path, an argv and a sockaddr; an empty path for contrast.
// Two children exec with 40 arguments (one of 600 bytes) and with 6 x 1000 bytes; one with exactly
// 32 arguments, the first of 255 bytes (both at the limit, nothing cut).
const WORKLOAD = `
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def sc(*a):
    r = libc.syscall(*a)
    return -ctypes.get_errno() if r == -1 else r
full = '/' * 4083 + 'etc/hostname'
fd = os.open(full, os.O_RDONLY); os.close(fd)
try: os.open('/' * 6000 + 'etc/hostname', os.O_RDONLY)
except OSError as e: print('long', e.errno)
try: os.rename('/tmp/sandtrace-no-such-src', '/tmp/' + 'y' * 5000)
except OSError as e: print('rename', e.errno)
print('badpath', sc(257, -100, ctypes.c_void_p(1), 0))
try: os.open('', os.O_RDONLY)
except OSError as e: print('empty', e.errno)
print('badargv', sc(59, b'/bin/true', ctypes.c_void_p(8), 0))
s = socket.socket()
print('badaddr', sc(42, s.fileno(), ctypes.c_void_p(8), 16))
for argv in (['true', 'x' * 600] + ['a%d' % i for i in range(38)], ['true'] + ['b' * 1000] * 6, ['true', 'z' * 255] + ['c%d' % i for i in range(30)]):
    pid = os.fork()
    if pid == 0:
        os.execv('/bin/true', argv)
    os.waitpid(pid, 0)
    print('child', pid)
`;

test('cut paths, argv and unreadable pointers are marked; the report counts them', { timeout: 60_000 }, async () => {
  const cg = makeCgroup('trunc');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-trunc-'));
  try {
    const script = join(dir, 'w.py');
    writeFileSync(script, WORKLOAD);
    const { events, stats, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 ${script}`));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /long 36\nrename 36\nbadpath -14\nempty 2\nbadargv -14\nbadaddr -14\n/);
    assert.equal(stats.lost, 0);
    assert.equal(stats.parseErrors, 0);
    const [c40, c6k, c32] = [...result.stdout.matchAll(/child (\d+)/g)].map((m) => Number(m[1]));
    const sys = syscalls(events).filter((e) => e.pid === result.pid);

    // The longest path the kernel accepts is read whole: nothing is cut at PATH_MAX.
    const full = '/'.repeat(4083) + 'etc/hostname';
    const ok = sys.find((e) => e.name === 'openat' && e.path === full);
    assert.ok(ok && ok.ret !== null && ok.ret >= 0, 'openat of the 4095-byte path succeeded and carries it whole');
    assert.equal(ok.truncated, undefined);

    // A longer one (the kernel says ENAMETOOLONG) is its 4095-byte prefix, marked.
    const long = sys.find((e) => e.name === 'openat' && e.ret === -36);
    assert.equal(long?.path, '/'.repeat(4095));
    assert.deepEqual(long?.truncated, ['path']);
    assert.equal(long?.unreadable, undefined);
    const ren = sys.find((e) => e.name === 'rename' || e.name === 'renameat' || e.name === 'renameat2');
    assert.equal(ren?.path, '/tmp/sandtrace-no-such-src');
    assert.equal(ren?.path2, ('/tmp/' + 'y'.repeat(5000)).slice(0, 4095));
    assert.deepEqual(ren?.truncated, ['path2']);

    // A bad pointer: no path at all (not ''), marked unreadable, EFAULT; the probe carries on.
    const bad = sys.find((e) => e.name === 'openat' && e.args[1] === 1);
    assert.equal(bad?.ret, -14);
    assert.equal(bad?.path, undefined);
    assert.deepEqual(bad?.unreadable, ['path']);
    assert.equal(bad?.truncated, undefined);
    const empty = sys.find((e) => e.name === 'openat' && e.path === '');
    assert.equal(empty?.ret, -2, 'an empty path is read as empty');
    assert.equal(empty?.unreadable, undefined);
    const badArgv = sys.find((e) => e.name === 'execve' && e.ret === -14);
    assert.equal(badArgv?.path, '/bin/true');
    assert.equal(badArgv?.argv, undefined);
    assert.deepEqual(badArgv?.unreadable, ['argv']);
    // the connect given the bad pointer (8): python may connect before, e.g. to nscd's socket when
    // it looks the user up for a HOME the environment does not set
    const badAddr = sys.find((e) => e.name === 'connect' && e.args[1] === 8);
    assert.equal(badAddr?.ret, -14);
    assert.equal(badAddr?.addr, undefined);
    assert.deepEqual(badAddr?.unreadable, ['addr']);

    // execve with 40 arguments, one of 600 bytes: the call's argv is the first 32, element 1 cut to
    // 255 bytes, marked; the exec event (the new image's argv, up to 4 KiB) has all of it.
    const argv40 = ['true', 'x'.repeat(600), ...Array.from({ length: 38 }, (_, i) => `a${i}`)];
    const execve40 = syscalls(events).find((e) => e.name === 'execve' && e.pid === c40);
    assert.deepEqual(execve40?.argv, [argv40[0], 'x'.repeat(255), ...argv40.slice(2, 32)]);
    assert.deepEqual(execve40?.truncated, ['argv']);
    assert.equal(execve40?.ret, 0);
    const exec40 = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === c40);
    assert.deepEqual(exec40?.argv, argv40);
    assert.equal(exec40?.truncated, undefined);
    // 6 x 1000 bytes: past the exec event's 4 KiB too, so both are marked and hold prefixes.
    const exec6k = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === c6k);
    const argv6k = ['true', ...Array.from({ length: 6 }, () => 'b'.repeat(1000))].join('\0') + '\0';
    assert.equal(exec6k?.argv.join('\0'), argv6k.slice(0, 4096));
    assert.deepEqual(exec6k?.truncated, ['argv']);
    assert.deepEqual(syscalls(events).find((e) => e.name === 'execve' && e.pid === c6k)?.truncated, ['argv']);
    // Exactly at the limits (32 elements, one of 255 bytes): whole, not marked.
    const execve32 = syscalls(events).find((e) => e.name === 'execve' && e.pid === c32);
    assert.deepEqual(execve32?.argv, ['true', 'z'.repeat(255), ...Array.from({ length: 30 }, (_, i) => `c${i}`)]);
    assert.equal(execve32?.truncated, undefined);

    // Nothing else in the capture (python's start-up included) is marked.
    const expected = new Set([long, ren, bad, badArgv, badAddr, execve40, exec6k, syscalls(events).find((e) => e.name === 'execve' && e.pid === c6k)]);
    assert.deepEqual(events.filter((e) => marked(e) && !expected.has(e as SyscallEvent)), []);

    // The report, through a recording (the marks survive it) and the whole analysis pipeline.
    const rec = join(dir, 'trace.jsonl.gz');
    const w = new RecordingWriter(rec, { backend: 'ebpf' });
    w.write(events);
    await w.close(stats);
    const { report, htmlPath } = await replay({ file: rec, outDir: join(dir, 'out') });
    assert.equal(report.capture.argsTruncated, 5);
    assert.equal(report.capture.argsUnreadable, 3);
    const warn = report.analysis.warnings.find((d) => d.code === 'ARGS_INCOMPLETE');
    assert.match(warn?.message ?? '', /^5 events carry an argument cut .*; 3 events carry an argument the capture could not read/);
    assert.match(readFileSync(htmlPath ?? '', 'utf8'), /5 with cut arguments, 3 with unreadable arguments/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
});

test('strings in pages not yet faulted in are read at exit: every path of a shell run is there', { timeout: 30_000 }, async () => {
  // bash opens /dev/tty and ls calls statfs with strings from their own read-only data, often in a
  // page the process has not touched yet: unreadable at sys_enter, read after the kernel faulted it in.
  const cg = makeCgroup('fault');
  try {
    const { events, stats, result } = await capture({ cgroupPath: cg.path },
      () => runInCgroup(cg.path, 'exec /bin/bash -c "ls -la /usr/lib > /dev/null; cat /etc/hostname > /dev/null; true"'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(stats.lost, 0);
    const pathCalls = syscalls(events).filter((e) => e.name === 'openat' || e.name === 'statfs' || e.name === 'newfstatat' || e.name === 'execve');
    assert.ok(pathCalls.length > 20, `path-taking calls seen: ${pathCalls.length}`);
    const ptr = (e: SyscallEvent) => (e.name === 'statfs' || e.name === 'execve' ? e.args[0] : e.args[1]);
    assert.deepEqual(pathCalls.filter((e) => ptr(e) !== 0 && e.path === undefined).map((e) => `${e.comm} ${e.name} ret=${e.ret}`), []);
    assert.deepEqual(events.filter(marked), []);
    assert.ok(pathCalls.some((e) => e.name === 'openat' && e.path === '/etc/hostname' && e.comm === 'cat'));
  } finally {
    await cg.remove();
  }
});

// Arguments a sample can make unreadable at the call on purpose, and addresses it can make the
// kernel write only in part: both reported for what they are.
const LATE = `
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.open.argtypes = [ctypes.c_void_p, ctypes.c_int]
print('touched', libc.open(ctypes.c_char_p(b'/etc/hostname'), 0))
# a path in a file-backed page this process never touched: unreadable at sys_enter (no page
# table entry yet), faulted in by the kernel, read at sys_exit
f = open(sys.argv[1], 'rb')
page = libc.mmap(None, 4096, 1, 2, f.fileno(), 0)  # PROT_READ, MAP_PRIVATE
print('untouched', libc.open(page, 0))
# accept with a 4-byte buffer: the kernel copies family and port only, and says the address
# has 16 bytes; the rest of the buffer is the caller's own (an address it planted)
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname())
sa = ctypes.create_string_buffer(struct.pack('<HH4s8x', 2, 0, bytes([10, 11, 12, 13])), 16)
n = ctypes.c_int(4)
print('accept', libc.accept(srv.fileno(), sa, ctypes.byref(n)), n.value, c.getsockname()[1])
`;

test('an argument unreadable at the call is read at its return and marked so; a kernel-written address is cut at the caller\'s buffer', { timeout: 30_000 }, async () => {
  const { events, stats, result } = await capturePython('late', LATE, {
    files: { page: Buffer.concat([Buffer.from('/etc/hostname\0'), Buffer.alloc(4096 - 14)]) },
    args: (dir) => [join(dir, 'page')],
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  const m = /touched (\d+)\nuntouched (\d+)\naccept (\d+) 16 (\d+)\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const opens = syscalls(events).filter((e) => e.name === 'openat' && e.path === '/etc/hostname');
  // the open of the untouched page returned a descriptor: named by the kernel from it (below)
  assert.deepEqual(opens.map((e) => [e.ret, e.readAtExit ?? false, e.pathFromKernel ?? false]), [[Number(m[1]), false, false], [Number(m[2]), false, true]]);
  const accept = syscalls(events).find((e) => e.name === 'accept' && e.ret === Number(m[3]));
  assert.deepEqual(accept?.truncated, ['addr'], JSON.stringify(accept));
  // the 4 bytes the kernel wrote: family and the client's port; never the planted 10.11.12.13
  assert.ok(!JSON.stringify(accept?.addr ?? null).includes('10.11.12.13'), JSON.stringify(accept?.addr));
});

// Python for the workloads below: bytes in a file-backed page the process never touched (written
// with write(), mapped MAP_PRIVATE read-write, never read): no page table entry when a call is
// made, so the probe cannot read them at sys_enter; the kernel faults the page in during the call.
// Their addresses are kept in \`pages\` (the workloads print them, to find their calls).
const PY_UNTOUCHED = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
pages = []
def untouched(data, low=False):
    if isinstance(data, str): data = data.encode()
    name = os.path.join(sys.argv[1], 'page%d' % len(pages))
    with open(name, 'wb') as f: f.write(data + bytes(4096 - len(data)))
    pages.append(libc.mmap(None, 4096, 3, 0x02 | (0x40 if low else 0), os.open(name, os.O_RDONLY), 0))  # MAP_32BIT if low
    return pages[-1]
`;

// An open whose path is in a page not faulted in at the call. A second thread rewrites the string
// while the open blocks (a FIFO with no writer yet), after the kernel looked the name up: read
// again at the return it would say /etc/hostname. The probe names the file from the descriptor
// the open returned instead. Also across mounts (/dev/shm: tmpfs on devtmpfs on /) and through a
// symlink (/proc/self). Without a named file behind a descriptor (a failed open; O_TMPFILE's
// unnamed file) the string is read at the return, and marked so.
const SWAPPED = `${PY_UNTOUCHED}
import threading, time
libc.open.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
d = sys.argv[1]
fifo = os.path.join(d, 'fifo'); os.mkfifo(fifo)
page = untouched(fifo)
def swap():
    time.sleep(1)
    ctypes.memmove(page, b'/etc/hostname\\0', 14)  # the open is blocked: its name was copied long ago
    os.close(os.open(fifo, os.O_WRONLY))
threading.Thread(target=swap).start()
print('fifo', libc.open(page, os.O_RDONLY, 0))
shm = '/dev/shm/sandtrace-kpath-%d' % os.getpid()
os.close(os.open(shm, os.O_CREAT | os.O_WRONLY, 0o600))
print('shm', libc.open(untouched(shm), os.O_RDONLY, 0), os.getpid())
os.unlink(shm)
print('proc', libc.open(untouched('/proc/self/status'), os.O_RDONLY, 0))
print('shmdir', libc.open(untouched('/dev/shm'), os.O_RDONLY | os.O_DIRECTORY, 0))  # a filesystem's root: never hashed, not unlinked
print('missing', libc.open(untouched(os.path.join(d, 'no-such-file')), os.O_RDONLY, 0))
print('tmpfile', libc.open(untouched(d), os.O_TMPFILE | os.O_RDWR, 0o600))
print('pages', *pages)
`;

test('an open whose path was unreadable at the call is named by the kernel from the descriptor it returned, not by the string another thread rewrote', { timeout: 30_000 }, async () => {
  let dir = '';
  const { events, stats, result } = await capturePython('swapped', SWAPPED, { args: (d) => { dir = join(d, 'w'); mkdirSync(dir); return [dir]; } });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  const m = /fifo (\d+)\nshm (\d+) (\d+)\nproc (\d+)\nshmdir (\d+)\nmissing (-1)\ntmpfile (\d+)\npages ([\d ]+)\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  // glibc's open() is openat; the opens of the untouched pages, by the path pointer
  const pages = new Set(m[8]!.split(' ').map(Number));
  const opens = syscalls(events).filter((e) => e.name === 'openat' && pages.has(e.args[1]!));
  const seen = opens.map((e) => [e.ret, e.path, e.pathFromKernel ?? false, e.readAtExit ?? false]);
  assert.deepEqual(seen, [
    [Number(m[1]), join(dir, 'fifo'), true, false], // not /etc/hostname
    [Number(m[2]), `/dev/shm/sandtrace-kpath-${m[3]}`, true, false],
    [Number(m[4]), `/proc/${m[3]}/status`, true, false],
    [Number(m[5]), '/dev/shm', true, false],
    [-2, join(dir, 'no-such-file'), false, true],
    [Number(m[7]), dir, false, true],
  ]);
});

// A connect whose sockaddr is in a page not faulted in at the call. The listener's accept queue
// is full, so the kernel drops the SYN and the blocking connect waits a second for its
// retransmission; meanwhile a second thread rewrites the port to a decoy listener's and makes
// room. Read again at the return the address would be the decoy's: the probe reports the peer
// from the connected socket instead. Also inet6 (a UDP connect to [::1]). A connect that failed
// has no peer to take: read at the return, marked so.
const CONNECT_SWAPPED = `${PY_UNTOUCHED}
import socket, struct, threading, time
libc.connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
sin = lambda port: struct.pack('<H', 2) + struct.pack('>H', port) + socket.inet_aton('127.0.0.1') + bytes(8)
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(0)
decoy = socket.socket(); decoy.bind(('127.0.0.1', 0)); decoy.listen(8)
filler = socket.create_connection(srv.getsockname())  # the accept queue (backlog 0) is full now
page = untouched(sin(srv.getsockname()[1]))
def swap():
    time.sleep(0.3)
    ctypes.memmove(page, sin(decoy.getsockname()[1]), 16)
    srv.accept()
threading.Thread(target=swap).start()
c = socket.socket()
print('tcp', libc.connect(c.fileno(), page, 16), srv.getsockname()[1], decoy.getsockname()[1])
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sin6 = struct.pack('<H', 10) + struct.pack('>H', 4242) + bytes(4) + socket.inet_pton(socket.AF_INET6, '::1') + bytes(4)
print('udp6', libc.connect(u6.fileno(), untouched(sin6), 28))
closed = socket.socket(); closed.bind(('127.0.0.1', 0)); port = closed.getsockname()[1]; closed.close()
c2 = socket.socket()
print('refused', libc.connect(c2.fileno(), untouched(sin(port)), 16), port)
print('pages', *pages)
`;

test('a connect whose address was unreadable at the call reports the peer the kernel connected to, not the address another thread rewrote', { timeout: 30_000 }, async () => {
  let dir = '';
  const { events, stats, result } = await capturePython('connswap', CONNECT_SWAPPED, { args: (d) => { dir = join(d, 'w'); mkdirSync(dir); return [dir]; } });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(stats.lost, 0);
  const m = /tcp (0) (\d+) (\d+)\nudp6 (0)\nrefused (-1) (\d+)\npages ([\d ]+)\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const pages = new Set(m[7]!.split(' ').map(Number));
  const calls = syscalls(events).filter((e) => e.name === 'connect' && pages.has(e.args[1]!));
  assert.deepEqual(calls.map((e) => [e.ret, e.addr, e.addrFromKernel ?? false, e.readAtExit ?? false]), [
    [0, { family: 'inet', address: '127.0.0.1', port: Number(m[2]) }, true, false], // not the decoy's port m[3]
    [0, { family: 'inet6', address: '::1', port: 4242 }, true, false],
    [-111, { family: 'inet', address: '127.0.0.1', port: Number(m[6]) }, false, true],
  ]);
});

// recvmsg on a UDP socket: the sender written back at msg_name, as much of it as msg_namelen had
// room for; none asked for (msg_name NULL, msg_namelen 0) and none made up.
const RECVMSG = `${PY_SOCKETS}r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
data = ctypes.create_string_buffer(256)
name = ctypes.create_string_buffer(b'\\x0a\\x0b\\x0c\\x0d' * 32)
def recvmsg(with_name, room):
    s.sendto(b'x', r.getsockname())
    io = iovec(ctypes.cast(data, ctypes.c_void_p), len(data))
    m = msghdr(ctypes.cast(name, ctypes.c_void_p) if with_name else None, room, ctypes.pointer(io), 1, None, 0, 0)
    return libc.recvmsg(r.fileno(), ctypes.byref(m), 0)
# blocked in recvmsg, msg_name is pointed at a planted sockaddr by another thread, then the datagram
# comes: the kernel writes the sender where msg_name pointed at the call
import threading, time
fake = ctypes.create_string_buffer(b'\\x02\\x00\\x00\\x07\\x0a\\x0b\\x0c\\x0d' + b'\\0' * 8)
def swapped():
    real = ctypes.create_string_buffer(128)
    io = iovec(ctypes.cast(data, ctypes.c_void_p), len(data))
    m = msghdr(ctypes.cast(real, ctypes.c_void_p), 128, ctypes.pointer(io), 1, None, 0, 0)
    def swap():
        time.sleep(0.3)
        m.name = ctypes.cast(fake, ctypes.c_void_p).value
        s.sendto(b'y', r.getsockname())
    threading.Thread(target=swap).start()
    return libc.recvmsg(r.fileno(), ctypes.byref(m), 0)
print('port', s.getsockname()[1])
print('named', recvmsg(True, 128), 'null', recvmsg(False, 0), 'zero', recvmsg(True, 0), 'short', recvmsg(True, 4), 'failed', libc.recvmsg(r.fileno(), ctypes.c_void_p(8), 0), 'swapped', swapped())
`;

test('recvmsg: the sender the kernel wrote back, cut at msg_namelen\'s room, where msg_name pointed at the call; none when none was asked for', { timeout: 30_000 }, async () => {
  const { events, result } = await capturePython('recvmsg', RECVMSG);
  assert.equal(result.code, 0, result.stderr);
  const m = /port (\d+)\nnamed 1 null 1 zero 1 short 1 failed -1 swapped 1\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const calls = syscalls(events).filter((e) => e.name === 'recvmsg');
  assert.deepEqual(calls.map((e) => [e.ret, e.addr ?? null, e.truncated ?? [], e.unreadable ?? []]), [
    [1, { family: 'inet', address: '127.0.0.1', port: Number(m[1]) }, [], []],
    [1, null, [], []],
    [1, null, ['addr'], []], // the kernel had a 16-byte sender and room for none of it
    // 4 bytes of it: family and port, never the 10.11.12.13 planted after them
    [1, { family: 'other', raw: 2 }, ['addr'], []],
    [-14, null, [], []],
    // msg_name swapped for a planted 10.11.12.13:7 while the call blocked: the real sender still
    [1, { family: 'inet', address: '127.0.0.1', port: Number(m[1]) }, [], []],
  ]);
});

// A 64-bit python issues i386 calls with `int 0x80` (the kernel runs them as compat calls, with
// 32-bit registers): code and strings live in pages mapped below 4 GiB (MAP_32BIT).
const I386 = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
MAP_32BIT, ANON_PRIVATE = 0x40, 0x22
# push rbx; eax=nr, ebx, ecx, edx, esi from the C arguments; int 0x80; pop rbx; ret
code = bytes([0x53, 0x89, 0xf8, 0x89, 0xf3, 0x49, 0x89, 0xca, 0x89, 0xd1, 0x44, 0x89, 0xd2, 0x44, 0x89, 0xc6, 0xcd, 0x80, 0x5b, 0xc3])
cp = libc.mmap(None, 4096, 7, ANON_PRIVATE | MAP_32BIT, -1, 0)
ctypes.memmove(cp, code, len(code))
sc32 = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(cp)
data = libc.mmap(None, 1 << 16, 3, ANON_PRIVATE | MAP_32BIT, -1, 0)
def put(off, b):
    ctypes.memmove(data + off, b, len(b)); return data + off
fd = sc32(5, put(0, b'/etc/hostname\\0'), 0, 0, 0)
print('open', fd)
sc32(6, fd, 0, 0, 0)
print('openat', sc32(295, -100, put(64, b'/tmp/sandtrace-i386-missing\\0'), 0, 0))
print('rename', sc32(38, put(128, b'/tmp/sandtrace-i386-a\\0'), put(192, b'/tmp/sandtrace-i386-b\\0'), 0, 0))
print('unlink', sc32(10, put(256, b'/' * 5000 + b'x\\0'), 0, 0, 0))
print('bad', sc32(5, 1, 0, 0, 0))
args = [put(8192, b'/bin/true\\0'), put(8256, b'one\\0'), put(8320, b'two words\\0')]
av = put(12288, bytes((ctypes.c_uint32 * 4)(*args, 0)))
print('execve', sc32(11, put(12352, b'/tmp/sandtrace-i386-nonexistent\\0'), av, 0, 0))
pid = os.fork()
if pid == 0:
    sc32(11, args[0], av, 0, 0)
    os._exit(99)
import socket, struct
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
port = srv.getsockname()[1]
sin = put(16384, struct.pack('<HH4s8x', 2, socket.htons(port), bytes([127, 0, 0, 1])))
c = socket.socket()
print('connect', sc32(362, c.fileno(), sin, 16, 0, 0), 'to', port)
lenp = put(16448, struct.pack('<i', 16))
print('getsockname', sc32(367, c.fileno(), put(16512, bytes(16)), lenp, 0, 0), 'port', c.getsockname()[1])
# the same through the socketcall multiplexer (102), as uclibc-built i386 malware makes them:
# socket, connect, getsockname, then accept on the listener (an address written back by the kernel)
def sockcall(call, off, *a):
    return sc32(102, call, put(off, struct.pack('<%dI' % len(a), *a)), 0, 0)
s = sockcall(1, 20480, 2, 1, 0)
print('sc-socket', s, 'connect', sockcall(3, 20544, s, sin, 16))
lenp2 = put(20608, struct.pack('<i', 16))
print('sc-getsockname', sockcall(6, 20672, s, put(20736, bytes(16)), lenp2), 'port', struct.unpack('<HH', ctypes.string_at(data + 20736, 4))[1])
lenp3 = put(20800, struct.pack('<i', 16))
a = sockcall(5, 20864, srv.fileno(), put(20928, bytes(16)), lenp3)
print('sc-accept', a, 'bad', sockcall(3, 20992, s, 0, 16), sc32(102, 3, 1, 0, 0), sc32(102, 99, put(21056, bytes(24)), 0, 0))
print('child', pid, os.waitpid(pid, 0)[1], flush=True)
# recvmsg, direct (372) and through socketcall (17): struct compat_msghdr is u32 msg_name, s32
# msg_namelen, u32 msg_iov, u32 msg_iovlen, u32 msg_control, u32 msg_controllen, u32 msg_flags
ur = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ur.bind(('127.0.0.1', 0))
us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); us.bind(('127.0.0.1', 0))
iov = put(24576, struct.pack('<II', data + 24640, 64))
def cmsg(off, name, room):
    return put(off, struct.pack('<IiIIIII', name, room, iov, 1, 0, 0, 0))
us.sendto(b'one', ur.getsockname())
print('recvmsg', sc32(372, ur.fileno(), cmsg(24704, data + 24768, 16), 0, 0), 'port', us.getsockname()[1])
us.sendto(b'two', ur.getsockname())
print('sc-recvmsg', sockcall(17, 24832, ur.fileno(), cmsg(24896, data + 24960, 16), 0))
us.sendto(b'three', ur.getsockname())
print('null-recvmsg', sc32(372, ur.fileno(), cmsg(25024, 0, 0), 0, 0), flush=True)
sc32(252, 3, 0, 0, 0)
`;

test('i386 (int 0x80) calls carry their paths and argv, marked like x86_64 ones', { timeout: 30_000 }, async (t) => {
  const ia32 = ia32Syscalls();
  if (!ia32.ok) { t.skip(ia32.why); return; }
  const { events, stats, result } = await capturePython('i386', I386);
  assert.equal(result.code, 3, result.stderr);
  assert.equal(stats.lost, 0);
  const m = /open (\d+)\nopenat -2\nrename -2\nunlink -36\nbad -14\nexecve -2\nconnect 0 to (\d+)\ngetsockname 0 port (\d+)\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const [fd, port, localPort] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const sc = /sc-socket (\d+) connect 0\nsc-getsockname 0 port (\d+)\nsc-accept (\d+) bad -14 -14 -22\nchild (\d+) 0\n/.exec(result.stdout);
  assert.ok(sc, result.stdout);
  const [scFd, scPortBE, accepted, child] = [Number(sc[1]), Number(sc[2]), Number(sc[3]), Number(sc[4])];
  const rm = /recvmsg 3 port (\d+)\nsc-recvmsg 3\nnull-recvmsg 5\n/.exec(result.stdout);
  assert.ok(rm, result.stdout);
  const sender = { family: 'inet', address: '127.0.0.1', port: Number(rm[1]) };
  const scPort = ((scPortBE & 0xff) << 8) | (scPortBE >> 8);
  const i386 = syscalls(events).filter((e) => e.abi === 'i386');
  const call = (name: string, ret: number) => i386.find((e) => e.name === name && e.ret === ret);
  assert.equal(call('open', fd)?.path, '/etc/hostname');
  assert.equal(call('openat', -2)?.path, '/tmp/sandtrace-i386-missing');
  assert.deepEqual([call('rename', -2)?.path, call('rename', -2)?.path2], ['/tmp/sandtrace-i386-a', '/tmp/sandtrace-i386-b']);
  assert.equal(call('unlink', -36)?.path, '/'.repeat(4095));
  assert.deepEqual(call('unlink', -36)?.truncated, ['path']);
  assert.deepEqual(call('open', -14)?.unreadable, ['path']);
  assert.equal(call('open', -14)?.path, undefined);
  // Direct socket calls: connect's address read at entry, getsockname's at exit.
  assert.deepEqual(call('connect', 0)?.addr, { family: 'inet', address: '127.0.0.1', port });
  assert.deepEqual(call('getsockname', 0)?.addr, { family: 'inet', address: '127.0.0.1', port: localPort });
  assert.equal(call('connect', 0)?.via, undefined);
  // socketcall (102) is unpacked into the direct call it stands for, with its arguments and
  // address, and says how it was made
  const via = i386.filter((e) => e.via === 'socketcall');
  assert.deepEqual(via.map((e) => [e.nr, e.name, e.args.slice(0, 3), e.ret]), [
    [359, 'socket', [2, 1, 0], scFd],
    [362, 'connect', [scFd, via[1]?.args[1], 16], 0],
    [367, 'getsockname', [scFd, via[2]?.args[1], via[2]?.args[2]], 0],
    [364, 'accept4', [via[3]?.args[0], via[3]?.args[1], via[3]?.args[2]], accepted], // accept: accept4 with flags 0
    [362, 'connect', [scFd, 0, 16], -14], // a null address: EFAULT, as for the direct call
    [372, 'recvmsg', [via[5]?.args[0], via[5]?.args[1], 0], 3],
  ]);
  // recvmsg's sender, read from the compat msghdr at the return: direct, through socketcall, and
  // none when msg_name is NULL
  const recvmsgs = i386.filter((e) => e.name === 'recvmsg');
  assert.deepEqual(recvmsgs.map((e) => [e.via ?? 'direct', e.ret, e.addr ?? null, e.truncated ?? []]), [
    ['direct', 3, sender, []], ['socketcall', 3, sender, []], ['direct', 5, null, []],
  ]);
  assert.deepEqual(via[1]?.addr, { family: 'inet', address: '127.0.0.1', port });
  assert.deepEqual(via[2]?.addr, { family: 'inet', address: '127.0.0.1', port: scPort });
  // accept's peer, written back by the kernel: the first client queued (the direct connect's)
  assert.deepEqual(via[3]?.addr, { family: 'inet', address: '127.0.0.1', port: localPort });
  assert.equal(via[3]?.args[3], 0);
  // what cannot be unpacked stays socketcall: an argument array at a bad address, an unknown call
  const raw = i386.filter((e) => e.name === 'socketcall');
  assert.deepEqual(raw.map((e) => [e.nr, e.args[0], e.ret, e.unreadable]), [[102, 3, -14, ['addr']], [102, 99, -22, undefined]]);
  // execve's argv is an array of 4-byte pointers.
  const failed = call('execve', -2);
  assert.equal(failed?.path, '/tmp/sandtrace-i386-nonexistent');
  assert.deepEqual(failed?.argv, ['/bin/true', 'one', 'two words']);
  // A successful one runs a 64-bit program: it still reports as the i386 execve it was, once.
  const execs = syscalls(events).filter((e) => e.pid === child && (e.name === 'execve' || e.ret === null && e.name !== 'exit_group'));
  assert.deepEqual(execs.map((e) => [e.abi, e.name, e.ret, e.path, e.argv]), [['i386', 'execve', 0, '/bin/true', ['/bin/true', 'one', 'two words']]]);
  const exec = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === child);
  assert.deepEqual(exec?.argv, ['/bin/true', 'one', 'two words']);
  assert.ok(exec.seq < execs[0]!.seq, 'exec event, then the call that returned into it (as for x86_64)');
  // exit_group through int 0x80 never returns: reported at task exit, as i386, with ret null.
  const eg = syscalls(events).filter((e) => e.pid === result.pid && e.name === 'exit_group');
  assert.deepEqual(eg.map((e) => [e.abi, e.nr, e.args[0], e.ret]), [['i386', 252, 3, null]]);
});

// The same for i386 connects, direct (362) and through socketcall (102, call 3): the sockaddr in
// a file-backed page below 4 GiB that the process never touched; the socketcall argument array
// itself readable. Both take the peer from the socket.
const I386_CONNECT = `${PY_UNTOUCHED}
import socket, struct
MAP_32BIT, ANON_PRIVATE = 0x40, 0x22
code = bytes([0x53, 0x89, 0xf8, 0x89, 0xf3, 0x49, 0x89, 0xca, 0x89, 0xd1, 0x44, 0x89, 0xd2, 0x44, 0x89, 0xc6, 0xcd, 0x80, 0x5b, 0xc3])
cp = libc.mmap(None, 4096, 7, ANON_PRIVATE | MAP_32BIT, -1, 0)
ctypes.memmove(cp, code, len(code))
sc32 = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(cp)
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4)
port = srv.getsockname()[1]
sin = struct.pack('<HH4s8x', 2, socket.htons(port), bytes([127, 0, 0, 1]))
c = socket.socket()
print('direct', sc32(362, c.fileno(), untouched(sin, low=True), 16, 0, 0))
c2 = socket.socket()
argv = libc.mmap(None, 4096, 3, ANON_PRIVATE | MAP_32BIT, -1, 0)
ctypes.memmove(argv, struct.pack('<III', c2.fileno(), untouched(sin, low=True), 16), 12)
print('socketcall', sc32(102, 3, argv, 0, 0, 0), port)
print('pages', *pages)
`;

test('i386 connects (direct and through socketcall) whose address was unreadable at the call report the peer from the socket', { timeout: 30_000 }, async (t) => {
  const ia32 = ia32Syscalls();
  if (!ia32.ok) { t.skip(ia32.why); return; }
  let dir = '';
  const { events, result } = await capturePython('i386conn', I386_CONNECT, { args: (d) => { dir = join(d, 'w'); mkdirSync(dir); return [dir]; } });
  assert.equal(result.code, 0, result.stderr);
  const m = /direct 0\nsocketcall 0 (\d+)\npages ([\d ]+)\n/.exec(result.stdout);
  assert.ok(m, result.stdout);
  const pages = new Set(m[2]!.split(' ').map(Number));
  const calls = syscalls(events).filter((e) => e.name === 'connect' && pages.has(e.args[1]!));
  const peer = { family: 'inet', address: '127.0.0.1', port: Number(m[1]) };
  assert.deepEqual(calls.map((e) => [e.abi, e.via ?? null, e.ret, e.addr, e.addrFromKernel ?? false, e.readAtExit ?? false]), [
    ['i386', null, 0, peer, true, false],
    ['i386', 'socketcall', 0, peer, true, false],
  ]);
});
