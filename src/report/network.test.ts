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
