// The report's network section over a small recorded stream, replayed through the whole pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SockAddr, TraceEvent } from '../capture/events.js';
import { RecordingWriter } from '../capture/replay/index.js';
import { replay } from '../replay.js';

test('a connect the kernel made again after a signal is one connection, with the result of the call that completed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-net-'));
  try {
    const addr: SockAddr = { family: 'inet', address: '127.0.0.1', port: 4448 };
    const base = { ts: 1, pid: 1, tid: 1, comm: 'c', abi: 'x86_64' as const };
    const events: TraceEvent[] = [
      { ...base, type: 'exec', seq: 1, exe: '/usr/bin/c', argv: ['c'], uid: 0 },
      { ...base, type: 'syscall', seq: 2, nr: 41, name: 'socket', args: [2, 1, 0], ret: 3 },
      { ...base, type: 'syscall', seq: 3, nr: 42, name: 'connect', args: [3, 0, 16], ret: null, addr, signal: 'restarted' },
      { ...base, type: 'syscall', seq: 4, nr: 42, name: 'connect', args: [3, 0, 16], ret: -111, addr },
      { ...base, type: 'syscall', seq: 5, nr: 42, name: 'connect', args: [3, 0, 16], ret: -4, addr, signal: 'interrupted' },
    ];
    const rec = join(dir, 'events.jsonl.gz');
    const w = await RecordingWriter.create(rec, { backend: 'ebpf' });
    w.write(events);
    await w.close();
    const { report } = await replay({ file: rec, outDir: join(dir, 'out') });
    assert.deepEqual(report.network.map((n) => [n.op, n.port, n.result, n.count]).sort(), [['connect', 4448, 'ECONNREFUSED', 1], ['connect', 4448, 'EINTR', 1]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sendmmsg counts each sent message under its own destination, a recvmmsg each received one under its sender; messages with no address count under none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-net-'));
  try {
    const at = (port: number): SockAddr => ({ family: 'inet', address: '127.0.0.1', port });
    const base = { ts: 1, pid: 1, tid: 1, comm: 'c', abi: 'x86_64' as const };
    const events: TraceEvent[] = [
      { ...base, type: 'exec', seq: 1, exe: '/usr/bin/c', argv: ['c'], uid: 0 },
      { ...base, type: 'syscall', seq: 2, nr: 41, name: 'socket', args: [2, 2, 0], ret: 3 },
      { ...base, type: 'syscall', seq: 3, nr: 307, name: 'sendmmsg', args: [3, 0, 4, 0], ret: 4, addrs: [at(53), at(9), at(53), null] },
      { ...base, type: 'syscall', seq: 4, nr: 307, name: 'sendmmsg', args: [3, 0, 2, 0], ret: -1, addrs: [at(7)] },
      { ...base, type: 'syscall', seq: 5, nr: 299, name: 'recvmmsg', args: [3, 0, 8, 0, 0], ret: 3, addrs: [at(53), null, at(54)] },
    ];
    const rec = join(dir, 'events.jsonl.gz');
    const w = await RecordingWriter.create(rec, { backend: 'ebpf' });
    w.write(events);
    await w.close();
    const { report } = await replay({ file: rec, outDir: join(dir, 'out') });
    assert.deepEqual(report.network.map((n) => [n.op, n.proto, n.port, n.result, n.count]).sort(), [
      ['recvmmsg', 'udp', 53, 'ok', 1], ['recvmmsg', 'udp', 54, 'ok', 1],
      ['sendmmsg', 'udp', 53, 'ok', 2], ['sendmmsg', 'udp', 7, 'EPERM', 1], ['sendmmsg', 'udp', 9, 'ok', 1],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dual-stack socket\'s connect to an IPv4-mapped address is listed as the sample made it, named by the domain the sinkhole gave its IPv4 form, and is no hard-coded endpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-net-'));
  try {
    const base = { ts: 1, pid: 1, tid: 1, comm: 'java', abi: 'x86_64' as const };
    const events: TraceEvent[] = [
      { ...base, type: 'exec', seq: 1, exe: '/usr/bin/java', argv: ['java', '-jar', 'bot.jar'], uid: 0 },
      { ...base, type: 'syscall', seq: 2, nr: 41, name: 'socket', args: [10, 1, 0], ret: 3 },
      { ...base, type: 'syscall', seq: 3, nr: 42, name: 'connect', args: [3, 0, 28], ret: -115, addr: { family: 'inet6', address: '::ffff:198.18.0.1', port: 443 } },
      { ...base, type: 'syscall', seq: 4, nr: 41, name: 'socket', args: [10, 1, 0], ret: 4 },
      { ...base, type: 'syscall', seq: 5, nr: 42, name: 'connect', args: [4, 0, 28], ret: -115, addr: { family: 'inet6', address: '::ffff:203.0.113.7', port: 4444 } },
    ];
    const rec = join(dir, 'events.jsonl.gz');
    const w = await RecordingWriter.create(rec, { backend: 'ebpf' });
    w.write(events);
    await w.close(undefined, undefined, { queries: [{ name: 'c2.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR', count: 1 }], omitted: 0, malformed: 0 });
    const { report } = await replay({ file: rec, outDir: join(dir, 'out') });
    assert.deepEqual(report.network.map((n) => [n.family, n.address, n.port, n.domain]), [['inet6', '::ffff:198.18.0.1', 443, 'c2.example.test'], ['inet6', '::ffff:203.0.113.7', 4444, undefined]]);
    assert.deepEqual(report.indicators?.endpoints, ['[::ffff:203.0.113.7]:4444']);
    assert.match(report.findings.find((f) => f.rule === 'ST-C2-001')?.output ?? '', /->198\.18\.0\.1:443 domain=c2\.example\.test /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
