// The stream decoder on the probe's real output: chunk boundaries anywhere give the same events,
// and socket addresses of every family the kernel wrote decode right. Needs root and `make setup`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecEvent, SyscallEvent, TraceEvent } from '../events.js';
import { ProbeDecoder, REC_EXEC, REC_FIXED, userDev } from './decode.js';
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
